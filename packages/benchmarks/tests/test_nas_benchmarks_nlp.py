"""NAS-Bench-NLP: training logs in the release's JSON format, written here, turned into the database by
``db_gen``, then queried as the docs' notebook does."""
import json
import math

import pytest

from nni.nas.benchmarks import BenchmarkDatabaseNotFoundError
from nni.nas.benchmarks.nlp import NlpTrialConfig, query_nlp_trial_stats
from nni.nas.benchmarks.nlp.db_gen import flatten_recipe, generate, main

ARCH1 = {'h_new_0_input_0': 'node_3', 'h_new_0_input_1': 'node_2', 'h_new_0_input_2': 'node_1', 'h_new_0_op': 'blend',
         'node_0_input_0': 'x', 'node_0_input_1': 'h_prev_0', 'node_0_op': 'linear', 'node_1_input_0': 'node_0',
         'node_1_op': 'activation_tanh', 'node_2_input_0': 'h_prev_0', 'node_2_input_1': 'node_1', 'node_2_input_2': 'x',
         'node_2_op': 'linear', 'node_3_input_0': 'node_2', 'node_3_op': 'activation_leaky_relu'}
ARCH2 = {"h_new_0_input_0": "node_0", "h_new_0_input_1": "node_1", "h_new_0_op": "elementwise_sum", "node_0_input_0": "x",
         "node_0_input_1": "h_prev_0", "node_0_op": "linear", "node_1_input_0": "node_0", "node_1_op": "activation_tanh"}
# the docs' wikitext-2 epochs 46-49 of arch2 and the ptb final record of arch1
DOC_EPOCHS = {46: (6.233430054978619, 6.4866799231542664, 146.5680329799652, 6.326836978687959),
              49: (6.227155079159031, 6.473414458249545, 145.51414465904236, 6.313294354607077)}
DOC_FINAL = {'test_loss': 4.680262297102549, 'train_loss': 4.132040537087838, 'training_time': 177.05208373069763,
             'val_loss': 4.707944253177966}


def recipe_of(arch):
    """The release's nested recipe of a flattened arch."""
    nodes = {}
    for key, value in sorted(arch.items()):
        if key.endswith('_op'):
            nodes.setdefault(key[:-3], {'input': []})['op'] = value
        else:
            node, _, k = key.partition('_input_')
            nodes.setdefault(node, {'input': []})['input'].append((int(k), value))
    return {n: {'op': s['op'], 'input': [v for _, v in sorted(s['input'])]} for n, s in nodes.items()}


def log(arch, dataset, epochs, status='OK', final=None, nan_epoch=None, as_text=True):
    train = [5.0 - e / 100 for e in range(epochs)]
    val = [5.5 - e / 100 for e in range(epochs)]
    test = [5.4 - e / 100 for e in range(epochs)]
    times = [150.0 - e / 10 for e in range(epochs)]
    for epoch, (te, tr, t, va) in (DOC_EPOCHS.items() if dataset == 'wikitext-2' and arch is ARCH2 else []):
        test[epoch - 1], train[epoch - 1], times[epoch - 1], val[epoch - 1] = te, tr, t, va
    if final:
        test[-1], train[-1], times[-1], val[-1] = final['test_loss'], final['train_loss'], final['training_time'], final['val_loss']
    if nan_epoch is not None:
        train[nan_epoch] = math.nan
    recipe = recipe_of(arch)
    return {'recepie': json.dumps(recipe) if as_text else recipe, 'dataset': dataset, 'status': status,
            'train_losses': train, 'val_losses': val, 'test_losses': test, 'wall_times': times, 'epochs': epochs}


@pytest.fixture(scope='module')
def nlp_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('nlp')
    logs = tmp / 'train_logs_single_run'
    (logs / 'sub').mkdir(parents=True)
    entries = [log(ARCH1, 'ptb', 50, final=DOC_FINAL), log(ARCH2, 'wikitext-2', 50, as_text=False),
               log(ARCH2, 'ptb', 3, nan_epoch=2), log(ARCH1, 'ptb', 50),  # a second run of (arch1, ptb)
               log(ARCH2, 'ptb', 0), log(ARCH1, 'wikitext-2', 10, status='FAILED')]
    for i, entry in enumerate(entries):
        (logs / ('sub' if i % 2 else '.') / f'log_{i}.json').write_text(json.dumps(entry))
    out = tmp / 'db'
    assert generate([str(logs)], str(out / 'nlp.db')) == (4, 2)
    return out


@pytest.fixture
def nlp_dir(nlp_db, monkeypatch):
    monkeypatch.setenv('NASBENCHMARK_DIR', str(nlp_db))
    return nlp_db


def test_flatten_recipe_is_the_docs_arch():
    assert flatten_recipe(recipe_of(ARCH1)) == ARCH1
    with pytest.raises(ValueError, match="recipe\\['node_0'\\]: expected"):
        flatten_recipe({'node_0': 'linear'})


def test_docs_query_ptb(nlp_dir):
    rows = list(query_nlp_trial_stats(arch=ARCH1, dataset='ptb'))
    assert len(rows) == 2
    first = rows[0]
    assert set(first) == {'config', 'id', 'test_loss', 'train_loss', 'training_time', 'val_loss'}
    assert {k: first[k] for k in DOC_FINAL} == DOC_FINAL
    assert first['config']['arch'] == ARCH1 and first['config']['dataset'] == 'ptb' and set(first['config']) == {'arch', 'dataset', 'id'}
    assert rows[1]['config']['id'] == first['config']['id']  # two runs, one config
    # key order does not matter
    reordered = dict(reversed(list(ARCH1.items())))
    assert [r['id'] for r in query_nlp_trial_stats(arch=reordered, dataset='ptb')] == [r['id'] for r in rows]


def test_docs_query_intermediates_wikitext2(nlp_dir):
    (row,) = list(query_nlp_trial_stats(arch=ARCH2, dataset='wikitext-2', include_intermediates=True))
    inters = row['intermediates']
    assert [r['current_epoch'] for r in inters] == list(range(1, 51))
    window = inters[45:49]
    assert [r['current_epoch'] for r in window] == [46, 47, 48, 49]
    assert set(window[0]) == {'current_epoch', 'id', 'test_loss', 'train_loss', 'training_time', 'val_loss'}
    for epoch, (test, train, time, val) in DOC_EPOCHS.items():
        rec = inters[epoch - 1]
        assert (rec['test_loss'], rec['train_loss'], rec['training_time'], rec['val_loss']) == (test, train, time, val)


def test_wildcards_nan_and_mean(nlp_dir):
    assert len(list(query_nlp_trial_stats(None, None))) == 4
    assert len(list(query_nlp_trial_stats(None, 'ptb'))) == 3
    assert {r['config']['dataset'] for r in query_nlp_trial_stats(ARCH2, None)} == {'ptb', 'wikitext-2'}
    (short,) = list(query_nlp_trial_stats(ARCH2, 'ptb', include_intermediates=True))
    assert short['train_loss'] is None and short['intermediates'][2]['train_loss'] is None  # NaN -> None
    (mean,) = list(query_nlp_trial_stats(ARCH1, 'ptb', reduction='mean', include_intermediates=True))
    assert mean['test_loss'] == pytest.approx((DOC_FINAL['test_loss'] + (5.4 - 49 / 100)) / 2)
    assert len(mean['intermediates']) == 50 and 'id' not in mean
    assert NlpTrialConfig.select().count() == 3


@pytest.mark.parametrize('kwargs, words', [
    ({'arch': {'node_0_op': 'linear', 'cell': 'x'}, 'dataset': None}, "key 'cell' is not a recipe key"),
    ({'arch': None, 'dataset': 'wiki'}, "dataset: 'wiki' is not one of 'ptb', 'wikitext-2'"),
    ({'arch': None, 'dataset': None, 'reduction': 'max'}, "reduction: 'max' is not supported"),
])
def test_bad_queries_are_one_line(nlp_dir, kwargs, words):
    with pytest.raises(ValueError) as info:
        list(query_nlp_trial_stats(**kwargs))
    assert words in str(info.value) and '\n' not in str(info.value)


def test_missing_database_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv('NASBENCHMARK_DIR', str(tmp_path))
    with pytest.raises(BenchmarkDatabaseNotFoundError, match='python -m nni.nas.benchmarks.nlp.db_gen'):
        query_nlp_trial_stats(None, None)


def test_db_gen_cli_rejects_a_file_that_is_not_a_log(tmp_path, capsys):
    bad = tmp_path / 'x.json'
    bad.write_text(json.dumps({'dataset': 'ptb'}))
    with pytest.raises(SystemExit) as info:
        main([str(bad), '--out', str(tmp_path / 'nlp.db'), '--quiet'])
    assert info.value.code == 2 and "no 'recepie'" in capsys.readouterr().err
    assert not (tmp_path / 'nlp.db').exists()
