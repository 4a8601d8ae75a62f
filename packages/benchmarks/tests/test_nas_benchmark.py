"""The multi-trial NAS benchmark: its space, its summary, and (slow) a --quick run through real experiments."""
from __future__ import annotations

import json

import pytest
import torch

from nni.nas_benchmark.__main__ import main
from nni.nas_benchmark.bench import NasBenchmarkConfig, load_runs, make_strategy, render_table, summarise
from nni.nas_benchmark.space import SPACE_SIZE, DigitsSearchSpace, process_start_time
from nni.retiarii import fixed_arch
from nni.retiarii.space import extract_mutables, search_space_size


def test_space_size_and_architectures_build():
    assert search_space_size(extract_mutables(DigitsSearchSpace())) == SPACE_SIZE == 675
    sizes = []
    for arch in ({'channels': 4, 'activation': 'sigmoid', 'block1': 'identity', 'block2': 'maxpool', 'hidden': 16},
                 {'channels': 16, 'activation': 'relu', 'block1': 'conv5', 'block2': 'conv5', 'hidden': 128}):
        with fixed_arch(arch, verbose=False):
            net = DigitsSearchSpace()
        assert net(torch.rand(3, 1, 8, 8)).shape == (3, 10)
        sizes.append(sum(p.numel() for p in net.parameters()))
    assert sizes[1] > 5 * sizes[0]


def test_config_and_strategy_errors_are_one_line():
    with pytest.raises(ValueError, match="strategies: unknown 'PPO'; allowed: RegularizedEvolution, TPE, Random"):
        NasBenchmarkConfig(strategies=['PPO'])
    with pytest.raises(ValueError, match='trials: expected an int >= 1, got 0'):
        NasBenchmarkConfig(trials=0)
    evolution = make_strategy('RegularizedEvolution', 1, NasBenchmarkConfig(trials=3))
    assert evolution.population_size == 3 and evolution.sample_size == 3  # capped by the trial count
    assert main(['--strategies', 'Random', '--trials', '0', '--out', 'unused']) == 2


def test_process_start_time_is_before_now():
    import time
    started = process_start_time()
    assert started != started or 0 <= time.time() - started < 24 * 3600


def _trial(acc, start, train_s, process_start, entry_s=1.0, setup_s=0.5, tail=0.2):
    fit_end = process_start + entry_s + setup_s + train_s
    return {'id': 'x', 'status': 'SUCCEEDED', 'start': start, 'end': fit_end + tail, 'default': acc, 'train_s': train_s,
            'setup_s': setup_s, 'entry_s': entry_s, 'process_start': process_start, 'fit_end': fit_end}


def test_summarise_medians_and_overhead():
    runs = [
        {'strategy': 'Random', 'seed': 0, 'trials': [_trial(0.5, 100, 10, 100.3), _trial(0.7, 120, 10, 119.5)]},
        {'strategy': 'Random', 'seed': 1, 'trials': [_trial(0.9, 100, 10, 100.0),
                                                     {'id': 'f', 'status': 'FAILED', 'start': 1, 'end': 2}]},
        {'strategy': 'TPE', 'seed': 0, 'trials': [_trial(0.8, 100, 10, 100.0)]},
    ]
    summary = summarise(runs)
    assert summary['strategies']['Random']['best_per_seed'] == [0.7, 0.9]
    assert summary['strategies']['Random']['median_best'] == pytest.approx(0.8)
    assert summary['strategies']['Random']['failed_trials'] == 1
    assert summary['strategies']['TPE']['median_best'] == 0.8
    timing = summary['timing_median']
    # wall = launch + 1.0 + 0.5 + 10 + 0.2; a process that started before the manager's stamp counts from there
    assert timing['train_s'] == 10 and timing['entry_s'] == 1.0 and timing['tail_s'] == pytest.approx(0.2)
    assert timing['launch_s'] == pytest.approx(0.0)
    assert timing['overhead'] == pytest.approx(0.17)
    table = render_table({'summary': summary, 'torch_import_s': 2.0})
    assert '| Random | 0.7000, 0.9000 | 0.8000 |' in table and 'overhead' in table


@pytest.mark.slow
def test_quick_benchmark_through_real_experiments(tmp_path, capsys):
    out = tmp_path / 'out'
    assert main(['--quick', '--out', str(out)]) == 0
    report = json.loads((out / 'results.json').read_text())
    runs = report['runs']
    assert [(r['strategy'], r['seed']) for r in runs] == [('RegularizedEvolution', 0), ('Random', 0)]
    for run in runs:
        assert len(run['trials']) == 3 and {t['status'] for t in run['trials']} == {'SUCCEEDED'}
        for t in run['trials']:
            assert 0 < t['default'] <= 1 and t['train_s'] > 0 and t['end'] > t['fit_end'] > t['process_start']
            assert set(t['sample']) == {'channels', 'activation', 'block1', 'block2', 'hidden'}
    summary = report['summary']
    assert summary['timed_trials'] == 6 and summary['timing_median']['overhead'] > 0
    assert set(summary['strategies']) == {'RegularizedEvolution', 'Random'}
    assert '| RegularizedEvolution |' in capsys.readouterr().out
    # an interrupted benchmark can be summarised from the experiments' stores
    reloaded = load_runs(str(out))
    assert [[t['default'] for t in r['trials']] for r in reloaded] == [[t['default'] for t in r['trials']] for r in runs]


# ---------------------------------------------------------------- offline comparison (nni.nas_benchmark.offline)
def _synthetic_table():
    from nni.nas_benchmark.space import CHOICES, architectures, arch_key
    # additive in the choices' positions: the best architecture takes the first candidate of every choice
    return {arch_key(s): 1.0 - 0.01 * sum(CHOICES[k].index(v) for k, v in s.items()) for s in architectures()}


def test_architectures_and_keys():
    from nni.nas_benchmark.space import architectures, arch_key
    archs = architectures()
    assert len(archs) == SPACE_SIZE and len({arch_key(s) for s in archs}) == SPACE_SIZE
    assert arch_key({'hidden': 16, 'block2': 'conv3', 'block1': 'conv3', 'activation': 'relu', 'channels': 4}) == \
        arch_key(archs[0])


def test_harvest_and_load_table(tmp_path):
    from nni.nas_benchmark import offline
    sample = {'channels': 8, 'activation': 'tanh', 'block1': 'maxpool', 'block2': 'avgpool', 'hidden': 64}
    results = tmp_path / 'results.json'
    results.write_text(json.dumps({'config': {'epochs': 10}, 'runs': [{'trials': [
        {'default': 0.93, 'sample': sample}, {'default': 0.93, 'sample': dict(sample)},
        {'status': 'FAILED', 'sample': dict(sample, hidden=16)}]}]}))
    table = tmp_path / 'table.jsonl'
    assert offline.harvest(str(table), [str(results)], epochs=10) == 1
    assert offline.harvest(str(table), [str(results)], epochs=10) == 0  # already there
    assert offline.harvest(str(tmp_path / 'other.jsonl'), [str(results)], epochs=5) == 0  # other epochs: not comparable
    assert list(offline.load_table(str(table)).values()) == [0.93]


def test_fill_table_trains_as_the_trials_do(tmp_path):
    from nni.nas_benchmark import offline
    data = str(tmp_path / 'data.pt')  # random images in the digits' format (no scikit-learn import): 3 short trainings
    g = torch.Generator().manual_seed(0)
    torch.save((torch.rand(128, 1, 8, 8, generator=g), torch.randint(10, (128,), generator=g),
                torch.rand(64, 1, 8, 8, generator=g), torch.randint(10, (64,), generator=g)), data)
    table = tmp_path / 'table.jsonl'
    assert offline.fill_table(str(table), data, epochs=1, limit=2) == 2
    accuracies = offline.load_table(str(table))
    assert len(accuracies) == 2 and all(0 < a <= 1 for a in accuracies.values())
    first = json.loads(table.read_text().splitlines()[0])
    assert offline._train_one((first[0], data, 1))[1] == first[1]  # deterministic per architecture
    assert offline.fill_table(str(table), data, epochs=1, limit=1) == 1  # resumes with the next missing one
    assert len(offline.load_table(str(table))) == 3


def test_simulate_and_compare_on_a_synthetic_table():
    from nni.nas_benchmark import offline
    import nni.retiarii.strategy as strategy
    table = _synthetic_table()
    accuracies = offline.simulate(strategy.Random(dedup=True, seed=0), table, trials=12)
    assert len(accuracies) == 12
    config = NasBenchmarkConfig(strategies=['RegularizedEvolution', 'Random'], trials=30)
    summary = offline.compare(config, table, seeds=3)
    evo, rnd = summary['strategies']['RegularizedEvolution'], summary['strategies']['Random']
    assert summary['table_best'] == 1.0 and len(evo['best_per_seed']) == 3
    assert evo['mean_accuracy'] > rnd['mean_accuracy'] + 0.01  # evolution climbs the additive landscape (0.95 vs 0.93)
    assert evo['wins_over_random'] in (0, 1)
    assert '| RegularizedEvolution |' in offline.render_comparison(summary)
    partial = dict(list(table.items())[:10])
    with pytest.raises(ValueError, match='the accuracy table has 10 of 675 architectures; fill it first'):
        offline.compare(config, partial, seeds=3)
