"""Run the strategies through real RetiariiExperiments and summarise accuracy and per-trial overhead."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from nni.runtime.states import ACTIVE_STATES, ExperimentStatus

__all__ = ['NasBenchmarkConfig', 'STRATEGIES', 'make_strategy', 'run_search', 'run_benchmark', 'summarise',
           'render_table', 'torch_import_seconds', 'load_runs', 'report_from_dir']

STRATEGIES = ('RegularizedEvolution', 'TPE', 'Random')


@dataclass
class NasBenchmarkConfig:
    """Settings of one benchmark run (the defaults are the full benchmark)."""
    strategies: List[str] = field(default_factory=lambda: list(STRATEGIES))
    seeds: int = 3
    trials: int = 30
    concurrency: int = 2
    epochs: int = 10
    # RegularizedEvolution for a 30-trial budget: the docs' defaults (100 / 25) would never leave the random start;
    # 8 / 4 evolves 22 children with a tournament of half the population (chosen offline, see the README)
    population_size: int = 8
    sample_size: int = 4
    out: str = 'nas-benchmark-results'

    def __post_init__(self):
        for name in self.strategies:
            if name not in STRATEGIES:
                raise ValueError(f'strategies: unknown {name!r}; allowed: {", ".join(STRATEGIES)}')
        for name in ('seeds', 'trials', 'concurrency', 'epochs', 'population_size', 'sample_size'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{name}: expected an int >= 1, got {value!r}')


def make_strategy(name: str, seed: int, config: NasBenchmarkConfig):
    """A fresh strategy object: ``RegularizedEvolution`` (population / sample size from the config), ``TPE``, ``Random``."""
    import nni.retiarii.strategy as strategy
    if name == 'RegularizedEvolution':
        population = min(config.population_size, config.trials)
        return strategy.RegularizedEvolution(population_size=population, sample_size=min(config.sample_size, population),
                                             cycles=config.trials, seed=seed)
    if name == 'TPE':
        return strategy.TPEStrategy(seed=seed)
    if name == 'Random':
        return strategy.Random(dedup=True, seed=seed)
    raise ValueError(f'strategy: unknown {name!r}; allowed: {", ".join(STRATEGIES)}')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _quiet():
    with open(os.devnull, 'w') as devnull, contextlib.redirect_stdout(devnull):
        yield


def run_search(name: str, seed: int, config: NasBenchmarkConfig, data_path: str, workdir: Path) -> dict:
    """One search: a RetiariiExperiment on the local training service. Returns its trials and wall time."""
    from nni.retiarii.evaluator import FunctionalEvaluator
    from nni.retiarii.experiment.pytorch import RetiariiExeConfig, RetiariiExperiment

    from .space import DigitsSearchSpace, fit

    workdir.mkdir(parents=True, exist_ok=True)
    exe = RetiariiExeConfig('local', experiment_name=f'nas-bench-{name}-{seed}', trial_concurrency=config.concurrency,
                            max_trial_number=config.trials, trial_code_directory=str(workdir),
                            experiment_working_directory=str(workdir / 'experiments'))
    evaluator = FunctionalEvaluator(fit, data_path=data_path, epochs=config.epochs)
    exp = RetiariiExperiment(DigitsSearchSpace(), evaluator, [], make_strategy(name, seed, config))
    start = time.time()
    with _quiet():
        exp.run(exe, _free_port())
    wall = time.time() - start
    return {'strategy': name, 'seed': seed, 'wall_s': wall, 'status': exp.get_status(), 'trials': _trials_of(exp)}


def _trials_of(exp) -> List[dict]:
    trials = []
    for job in exp.list_trial_jobs():
        record = {'id': job.trialJobId, 'status': job.status, 'start': (job.startTime or 0) / 1000,
                  'end': (job.endTime or 0) / 1000}
        if job.finalMetricData:
            data = job.finalMetricData[0].data
            metric = json.loads(data) if isinstance(data, str) else data
            if isinstance(metric, str):  # the metric is JSON inside the JSON string
                metric = json.loads(metric)
            record.update(metric)
        if job.hyperParameters:
            params = job.hyperParameters[0].parameters
            record['sample'] = (json.loads(params) if isinstance(params, str) else params).get('sample')
        trials.append(record)
    trials.sort(key=lambda t: t['start'])
    return trials


def load_runs(out: str) -> List[dict]:
    """The finished searches found in an output folder, read back from their experiments' stores (for a benchmark
    that was interrupted: ``--from-dir``). A search whose experiment did not end DONE is left out."""
    from nni.experiment import Experiment

    runs = []
    for run_dir in sorted(Path(out).iterdir()):
        name, _, seed = run_dir.name.rpartition('-')
        if name not in STRATEGIES or not seed.isdigit() or not (run_dir / 'experiments').is_dir():
            continue
        for exp_dir in (run_dir / 'experiments').iterdir():
            exp = Experiment(None)
            exp.id, exp._exp_dir = exp_dir.name, exp_dir
            try:
                status = exp.get_status()
            except Exception:  # noqa: BLE001 - no store (an experiment that never started): skip it
                continue
            if status not in (ExperimentStatus.DONE, ExperimentStatus.STOPPED):
                continue
            trials = _trials_of(exp)
            if not trials or any(t['status'] in ACTIVE_STATES for t in trials):
                continue
            wall = max(t['end'] for t in trials) - min(t['start'] for t in trials)
            runs.append({'strategy': name, 'seed': int(seed), 'wall_s': wall, 'status': status, 'trials': trials})
    runs.sort(key=lambda r: (r['seed'], STRATEGIES.index(r['strategy'])))
    return runs


def report_from_dir(out: str, config: NasBenchmarkConfig) -> dict:
    """Summarise the finished searches in ``out`` (see :func:`load_runs`) and write ``results.json`` / ``table.md``."""
    from .space import SPACE_SIZE
    runs = load_runs(out)
    report = {'config': asdict(config), 'space_size': SPACE_SIZE, 'torch_import_s': torch_import_seconds(),
              'wall_s': sum(r['wall_s'] for r in runs), 'load_average': os.getloadavg(), 'runs': runs,
              'summary': summarise(runs)}
    (Path(out) / 'results.json').write_text(json.dumps(report, indent=1))
    (Path(out) / 'table.md').write_text(render_table(report) + '\n')
    return report


def _median(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def summarise(runs: List[dict]) -> dict:
    """Per strategy: best final accuracy per seed, its median over seeds, and the per-trial time breakdown."""
    per_strategy: Dict[str, dict] = {}
    timing = {'wall_s': [], 'train_s': [], 'overhead': [], 'launch_s': [], 'entry_s': [], 'setup_s': [], 'tail_s': []}
    for run in runs:
        done = [t for t in run['trials'] if isinstance(t.get('default'), (int, float))]
        entry = per_strategy.setdefault(run['strategy'], {'best': [], 'mean': [], 'trials': [], 'failed': 0})
        entry['best'].append(max((t['default'] for t in done), default=None))
        entry['mean'].append(statistics.fmean(t['default'] for t in done) if done else None)
        entry['trials'].append(len(run['trials']))
        entry['failed'] += len(run['trials']) - len(done)
        for t in done:
            # the manager stamps startTime when it hears the trial runs, which on a loaded machine can be after the
            # trial's process started: the trial starts at the earlier of the two
            begin = min(t['start'], t['process_start']) if t['process_start'] == t['process_start'] else t['start']
            wall = t['end'] - begin
            if t['start'] <= 0 or wall <= 0 or t['train_s'] <= 0:
                continue
            timing['wall_s'].append(wall)
            timing['train_s'].append(t['train_s'])
            timing['overhead'].append((wall - t['train_s']) / t['train_s'])
            timing['launch_s'].append(t['process_start'] - begin)
            timing['entry_s'].append(t['entry_s'])
            timing['setup_s'].append(t['setup_s'])
            timing['tail_s'].append(t['end'] - t['fit_end'])
    strategies = {}
    for name, entry in per_strategy.items():
        best = [b for b in entry['best'] if b is not None]
        strategies[name] = {'best_per_seed': entry['best'], 'median_best': _median(best),
                            'mean_accuracy_per_seed': entry['mean'], 'trials_per_seed': entry['trials'],
                            'failed_trials': entry['failed']}
    return {'strategies': strategies, 'timing_median': {k: _median(v) for k, v in timing.items()},
            'timed_trials': len(timing['overhead'])}


def torch_import_seconds(repeats: int = 3) -> float:
    """Median wall time of a fresh ``python -c 'import torch'`` on this machine (the fixed part of every trial)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, '-c', 'import torch'], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def render_table(report: dict) -> str:
    """The markdown tables of a report."""
    s, t = report['summary'], report['summary']['timing_median']
    lines = ['| strategy | best final accuracy per seed | median over seeds | mean trial accuracy per seed | failed trials |',
             '|---|---|---|---|---|']
    for name, row in s['strategies'].items():
        per_seed = ', '.join('-' if b is None else f'{b:.4f}' for b in row['best_per_seed'])
        means = ', '.join('-' if m is None else f'{m:.4f}' for m in row['mean_accuracy_per_seed'])
        median = '-' if row['median_best'] is None else f"{row['median_best']:.4f}"
        lines.append(f"| {name} | {per_seed} | {median} | {means} | {row['failed_trials']} |")

    def fmt(key):
        return '-' if t.get(key) is None else f'{t[key]:.2f}'
    lines += ['', f"Per trial, median over {s['timed_trials']} trials (seconds): wall {fmt('wall_s')} = launch "
              f"{fmt('launch_s')} + interpreter/imports/evaluator load {fmt('entry_s')} + data/model setup {fmt('setup_s')} "
              f"+ training {fmt('train_s')} + exit/report {fmt('tail_s')}; overhead (wall - training) / training = "
              f"{fmt('overhead')} (target <= 0.10). `python -c 'import torch'` alone: {report['torch_import_s']:.2f} s."]
    return '\n'.join(lines)


def run_benchmark(config: NasBenchmarkConfig, progress: bool = True) -> dict:
    """Run every strategy x seed, write ``results.json`` and ``table.md`` into ``config.out``, return the report."""
    from .space import SPACE_SIZE, write_digits

    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_path = write_digits(str(out / 'digits.pt'))
    runs = []
    started = time.time()
    for seed in range(config.seeds):  # seed-major: an interrupted run still compares every strategy
        for name in config.strategies:
            run = run_search(name, seed, config, data_path, out / f'{name}-{seed}')
            runs.append(run)
            (out / 'runs.partial.json').write_text(json.dumps(runs))
            if progress:
                done = [t['default'] for t in run['trials'] if isinstance(t.get('default'), (int, float))]
                print(f'{name} seed {seed}: {len(run["trials"])} trials, best {max(done, default=float("nan")):.4f}, '
                      f'{run["wall_s"]:.0f} s', file=sys.stderr, flush=True)
    report = {'config': asdict(config), 'space_size': SPACE_SIZE, 'torch_import_s': torch_import_seconds(),
              'wall_s': time.time() - started, 'load_average': os.getloadavg(), 'runs': runs}
    report['summary'] = summarise(runs)
    (out / 'results.json').write_text(json.dumps(report, indent=1))
    (out / 'table.md').write_text(render_table(report) + '\n')
    return report
