"""Run the benchmark matrix (tasks x optimisers x seeds), summarise, and write the reports."""
from __future__ import annotations

import datetime as _dt
import json
import math
import multiprocessing
import os
import pickle
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .runners import History, Runner, make_runner
from .tasks import get_task


@dataclass
class BenchmarkConfig:
    """What to run.

    Attributes:
        tasks: task names (see :data:`nni.hpo_benchmark.TASK_NAMES`).
        tuners: NNI tuner names, peer names (``optuna-tpe`` ...) or :class:`Runner` objects.
        seeds: independent runs per (task, tuner); seeds are ``0 .. seeds-1``.
        trials: suggestions per run.
        checkpoints: trial counts at which best-so-far is summarised.
        latency_obs: observation counts at which suggestion latency is measured (may be empty).
        latency_repeats: suggestions timed per measurement (the median is kept).
        workers: processes; 1 runs everything in this process.
        out: folder for ``results.json``, ``curves.png`` and ``table.md`` (``None``: no files).
        progress: show a tqdm progress bar on stderr.
    """

    tasks: Sequence[str]
    tuners: Sequence[str | Runner]
    seeds: int = 10
    trials: int = 100
    checkpoints: Sequence[int] = (25, 50, 100)
    latency_obs: Sequence[int] = (100, 1000)
    latency_repeats: int = 5
    workers: int = 2
    out: str | os.PathLike | None = "hpo-benchmark-results"
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if not self.tasks:
            raise ValueError("--tasks: give at least one task")
        if not self.tuners:
            raise ValueError("--tuners: give at least one tuner")
        if self.seeds < 1:
            raise ValueError(f"--seeds: must be at least 1, got {self.seeds}")
        if self.trials < 1:
            raise ValueError(f"--trials: must be at least 1, got {self.trials}")
        if self.workers < 1:
            raise ValueError(f"--workers: must be at least 1, got {self.workers}")
        for n in self.latency_obs:
            if n < 1:
                raise ValueError(f"--latency-obs: counts must be positive, got {n}")
        for name in self.tasks:
            get_task(name)


# Jobs are plain tuples so that they pickle for worker processes.
def _run_job(job: tuple) -> tuple:
    kind, task_name, runner, arg, trials, repeats = job
    task = get_task(task_name)
    start = time.perf_counter()
    if kind == "run":
        hist = runner.optimize(task, trials, arg)
        return job[:4], {"history": hist, "seconds": time.perf_counter() - start}
    latency = runner.suggestion_latency(task, arg, seed=0, repeats=repeats)
    return job[:4], {"latency": latency, "seconds": time.perf_counter() - start}


def _job_key(job: tuple) -> tuple:
    kind, task_name, runner, arg = job[:4]
    return kind, task_name, runner.name, arg


def quartiles(values: Sequence[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3)}


def run_benchmark(config: BenchmarkConfig) -> dict:
    """Run everything in ``config``; returns the results (also written to ``config.out``)."""
    config.check()
    runners = [make_runner(t) for t in config.tuners]
    names = [r.name for r in runners]
    if len(set(names)) != len(names):
        raise ValueError(f"--tuners: each tuner may appear once, got {', '.join(names)}")
    checkpoints = sorted({c for c in config.checkpoints if c <= config.trials} | {config.trials})

    # A tuner that rejects a task's space is reported "n/a (reason)" for that task, not run.
    unsupported = {(t, r.name): why for t in config.tasks for r in runners
                   if (why := r.unsupported(get_task(t))) is not None}

    jobs: list[tuple] = []
    real_first = sorted(config.tasks, key=lambda t: get_task(t).synthetic)  # slow tasks start first
    for task_name in real_first:
        for runner in runners:
            if (task_name, runner.name) in unsupported:
                continue
            for n_obs in config.latency_obs:
                jobs.append(("latency", task_name, runner, n_obs, config.trials, config.latency_repeats))
            for seed in range(config.seeds):
                jobs.append(("run", task_name, runner, seed, config.trials, config.latency_repeats))

    results: dict[tuple, dict] = {}
    started = time.perf_counter()
    bar = _progress(len(jobs), config.progress)
    workers = config.workers if _picklable(runners) else 1
    try:
        if workers == 1:
            for job in jobs:
                key, res = _run_job(job)
                results[_job_key(job)] = res
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("spawn")  # no forked threads or library state
            with ctx.Pool(workers) as pool:
                for job, (key, res) in zip(jobs, pool.imap(_run_job, jobs)):
                    results[_job_key(job)] = res
                    bar.update(1)
    finally:
        bar.close()
    wall = time.perf_counter() - started

    report = _assemble(config, runners, checkpoints, results, wall, workers, unsupported)
    if config.out is not None:
        write_outputs(report, Path(config.out))
    return report


def _picklable(runners: list[Runner]) -> bool:
    try:
        pickle.dumps(runners)
        return True
    except Exception:  # noqa: BLE001 - lambdas, local classes: run in-process
        return False


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="hpo-benchmark", unit="job", file=sys.stderr, dynamic_ncols=True)


def is_na(entry: dict) -> bool:
    """Whether a summary or latency entry marks a tuner that could not search the task."""
    return "n/a" in entry


def _assemble(config, runners, checkpoints, results, wall, workers, unsupported) -> dict:
    tuner_names = [r.name for r in runners]
    out: dict[str, Any] = {
        "meta": {
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seeds": config.seeds, "trials": config.trials, "checkpoints": checkpoints,
            "latency_obs": list(config.latency_obs), "latency_repeats": config.latency_repeats,
            "workers": workers, "wall_seconds": round(wall, 1), "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "versions": _versions(),
            "tuner_sources": _tuner_sources(runners),
            **config.extra,
        },
        "tasks": {}, "tuners": tuner_names, "runs": {}, "summary": {}, "latency": {},
    }
    for task_name in config.tasks:
        task = get_task(task_name)
        out["tasks"][task_name] = {"description": task.description, "optimum": task.optimum,
                                   "metric": task.metric, "noise_sd": task.noise_sd,
                                   "search_space": task.search_space}
        out["runs"][task_name], out["summary"][task_name], out["latency"][task_name] = {}, {}, {}
        for name in tuner_names:
            if (task_name, name) in unsupported:
                why = unsupported[(task_name, name)]
                out["runs"][task_name][name] = []
                out["summary"][task_name][name] = {"n/a": why}
                out["latency"][task_name][name] = {"n/a": why}
                continue
            runs = []
            for seed in range(config.seeds):
                res = results[("run", task_name, name, seed)]
                hist: History = res["history"]
                runs.append({"seed": seed, "best_so_far": hist.best_so_far(config.trials),
                             "values": hist.values, "trials_done": len(hist.values),
                             "tuner_seconds": hist.tuner_seconds, "wall_seconds": res["seconds"]})
            out["runs"][task_name][name] = runs
            summary = {str(c): quartiles([r["best_so_far"][c - 1] for r in runs]) for c in checkpoints}
            summary["tuner_ms_per_trial"] = float(np.mean(
                [1000 * r["tuner_seconds"] / max(1, r["trials_done"]) for r in runs]))
            out["summary"][task_name][name] = summary
            out["latency"][task_name][name] = {
                str(n): results[("latency", task_name, name, n)]["latency"] for n in config.latency_obs
            }
    out["ranks"] = _mean_ranks(out, checkpoints[-1])
    return out


def _mean_ranks(report: dict, at: int) -> dict:
    """Mean over tasks of each tuner's rank by median best at ``at`` trials (1 = best)."""
    ranks: dict[str, list[float]] = {t: [] for t in report["tuners"]}
    for task_name, per_tuner in report["summary"].items():
        # ranks among the tuners that could search the task
        medians = {t: per_tuner[t][str(at)]["median"] for t in report["tuners"] if not is_na(per_tuner[t])}
        ordered = sorted(medians.values())
        for t, m in medians.items():  # ties share the mean of their ranks
            first = ordered.index(m) + 1
            last = len(ordered) - ordered[::-1].index(m)
            ranks[t].append((first + last) / 2)
    return {t: float(np.mean(r)) if r else math.nan for t, r in ranks.items()}


def _tuner_sources(runners: list[Runner]) -> dict:
    """Short hashes of each NNI tuner's source file and of its folder's ``*.py`` files (helpers
    such as a shared engine), to tell which revision was measured."""
    import hashlib
    import inspect

    from .runners import NniTunerRunner

    out = {}
    for runner in runners:
        if isinstance(runner, NniTunerRunner) and runner.factory is None:
            try:
                path = inspect.getsourcefile(type(runner.make_tuner(0)))
                folder = hashlib.sha256()
                for sibling in sorted(Path(path).parent.glob("*.py")):
                    folder.update(sibling.name.encode() + sibling.read_bytes())
                out[runner.name] = {"file": os.path.basename(path),
                                    "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12],
                                    "folder_sha256": folder.hexdigest()[:12]}
            except (OSError, TypeError):
                pass
    return out


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for dist in ("nni-core", "nni-hpo", "nni-benchmarks", "optuna", "hyperopt", "scikit-learn", "numpy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


# ------------------------------------------------------------------------------ outputs
def _fmt(x: float) -> str:
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    return f"{x:.4g}" if abs(x) >= 1e-3 else f"{x:.2e}"


def _na_reason(entry: dict) -> str:
    return f"n/a ({entry['n/a']})".replace("|", "/")  # a pipe would split the table cell


def markdown_table(report: dict) -> str:
    """The summary as markdown: best-so-far quartiles, mean ranks, suggestion latency.

    A tuner that rejected a task's search space shows ``n/a (reason)`` for that task and is
    left out of that task's ranks, head-to-head counts and latency.
    """
    checkpoints = report["meta"]["checkpoints"]
    tuners = report["tuners"]
    summary = report["summary"]
    lines = [
        f"Best-so-far objective (lower is better): median [q1, q3] over {report['meta']['seeds']} seeds; "
        f"{report['meta']['date']}.",
        "",
        "| task | tuner | " + " | ".join(f"best @{c}" for c in checkpoints) + " | tuner ms/trial |",
        "|---|---|" + "---|" * len(checkpoints) + "---|",
    ]
    for task_name, per_tuner in summary.items():
        optimum = report["tasks"][task_name]["optimum"]
        label = task_name + (f" (min {optimum:g})" if optimum is not None else "")
        for name in tuners:
            s = per_tuner[name]
            if is_na(s):
                lines.append(f"| {label} | {name} | {_na_reason(s)} |" + " - |" * len(checkpoints))
                continue
            cells = [f"{_fmt(s[str(c)]['median'])} [{_fmt(s[str(c)]['q1'])}, {_fmt(s[str(c)]['q3'])}]"
                     for c in checkpoints]
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + f" | {s['tuner_ms_per_trial']:.2f} |")
    ran = {name: sum(not is_na(per[name]) for per in summary.values()) for name in tuners}
    lines += ["", f"Mean rank by median best @{checkpoints[-1]} over the tasks each tuner could search "
                  f"(of {len(summary)}; 1 = best):", "", "| tuner | mean rank | tasks |", "|---|---|---|"]
    ranked = sorted(report["ranks"].items(), key=lambda kv: (math.isnan(kv[1]), kv[1]))
    for name, rank in ranked:
        lines.append(f"| {name} | {'n/a' if math.isnan(rank) else f'{rank:.2f}'} | {ran[name]} |")
    final = str(checkpoints[-1])
    lines += ["", f"Head to head: tasks where the row's median best @{final} is lower than the column's, "
                  "of the tasks both could search:", "",
              "| row \\ column | " + " | ".join(tuners) + " |", "|---|" + "---|" * len(tuners)]
    for a in tuners:
        cells = []
        for b in tuners:
            both = [per for per in summary.values() if not is_na(per[a]) and not is_na(per[b])]
            wins = sum(per[a][final]["median"] < per[b][final]["median"] for per in both)
            cells.append("-" if a == b else (f"{wins}/{len(both)}" if both else "n/a"))
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    for a, b in _compared_pairs(tuners):
        lines += ["", *pairwise_table(report, a, b)]
    obs = report["meta"]["latency_obs"]
    if obs:
        lines += ["", "Suggestion latency in ms (one suggestion after N observations; "
                      "median over the tasks the tuner could search, [min, max]):", "",
                  "| tuner | " + " | ".join(f"N={n}" for n in obs) + " |", "|---|" + "---|" * len(obs)]
        for name in tuners:
            cells = []
            for n in obs:
                ms = [1000 * lat[name][str(n)] for lat in report["latency"].values() if not is_na(lat[name])]
                cells.append(f"{np.median(ms):.2f} [{min(ms):.2f}, {max(ms):.2f}]" if ms else "n/a")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: Pairs compared seed by seed in the report, when both tuners ran: our TPE against the peers' TPEs.
COMPARED_PAIRS = (("TPE", "optuna-tpe"), ("TPE", "hyperopt-tpe"))


def _compared_pairs(tuners: Sequence[str]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in COMPARED_PAIRS if a in tuners and b in tuners]


def compare_runs(a: Sequence[float], b: Sequence[float], resamples: int = 4000, seed: int = 0) -> dict:
    """Is ``a`` (best-so-far values over seeds, lower is better) better than ``b``?

    ``diff``: median(a) - median(b); ``ci``: its 95 % bootstrap interval; ``p_a_better``: the
    probability that a random run of ``a`` ends lower than one of ``b`` (ties count half; the
    Mann-Whitney statistic); ``verdict``: which side the interval excludes 0 for, else ``"tie"``.
    """
    rng = np.random.default_rng(seed)
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diffs = (np.median(rng.choice(a_arr, (resamples, len(a_arr))), axis=1)
             - np.median(rng.choice(b_arr, (resamples, len(b_arr))), axis=1))
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    wins = (a_arr[:, None] < b_arr[None, :]).mean() + 0.5 * (a_arr[:, None] == b_arr[None, :]).mean()
    verdict = "a" if hi < 0 else ("b" if lo > 0 else "tie")
    return {"diff": float(np.median(a_arr) - np.median(b_arr)), "ci": [float(lo), float(hi)],
            "p_a_better": float(wins), "verdict": verdict}


def pairwise_table(report: dict, a: str, b: str) -> list[str]:
    """Markdown lines comparing tuners ``a`` and ``b`` task by task at every checkpoint."""
    checkpoints = report["meta"]["checkpoints"]
    lines = [f"{a} against {b}, seed by seed: median({a}) - median({b}) (lower: {a} better) with its 95 % "
             f"bootstrap interval, and P({a} better) for a random pair of runs; a side wins only when the "
             "interval excludes 0:", "",
             "| task | " + " | ".join(f"@{c}" for c in checkpoints) + " |", "|---|" + "---|" * len(checkpoints)]
    tally = {c: {"a": 0, "b": 0, "tie": 0} for c in checkpoints}
    for task_name, per_tuner in report["runs"].items():
        if not per_tuner.get(a) or not per_tuner.get(b):
            continue
        cells = []
        for c in checkpoints:
            res = compare_runs([r["best_so_far"][c - 1] for r in per_tuner[a]],
                               [r["best_so_far"][c - 1] for r in per_tuner[b]])
            tally[c][res["verdict"]] += 1
            mark = {"a": f" **{a}**", "b": f" **{b}**", "tie": ""}[res["verdict"]]
            cells.append(f"{_fmt(res['diff'])} [{_fmt(res['ci'][0])}, {_fmt(res['ci'][1])}] "
                         f"P={res['p_a_better']:.2f}{mark}")
        lines.append(f"| {task_name} | " + " | ".join(cells) + " |")
    lines.append("| **wins / ties / losses** | " + " | ".join(
        f"{t['a']} / {t['tie']} / {t['b']}" for t in (tally[c] for c in checkpoints)) + " |")
    return lines


def load_report(path: str | os.PathLike) -> dict:
    """A report written earlier (``results.json``), e.g. to render its table or plot again."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def plot_curves(report: dict, path: Path) -> None:
    """One panel per task: median best-so-far (regret when the optimum is known) with the IQR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(report["runs"])
    cols = min(3, len(tasks))
    rows = (len(tasks) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    from .runners import PEER_NAMES

    # one colour per tuner in every panel, also when an n/a tuner is missing from a panel
    cmap = plt.get_cmap("tab20" if len(report["tuners"]) > 10 else "tab10")
    colors = {name: cmap(i % cmap.N) for i, name in enumerate(report["tuners"])}
    legend: dict = {}
    for ax, task_name in zip(axes.flat, tasks):
        optimum = report["tasks"][task_name]["optimum"]
        positive = True
        low, high = np.inf, -np.inf
        for name in report["tuners"]:
            if not report["runs"][task_name][name]:  # n/a: the tuner rejected this task's space
                continue
            curves = np.array([r["best_so_far"] for r in report["runs"][task_name][name]], dtype=float)
            if optimum is not None:
                curves = np.maximum(curves - optimum, 1e-9)
            positive &= bool(np.all(curves > 0))
            q1, med, q3 = np.nanpercentile(curves, [25, 50, 75], axis=0)
            x = np.arange(1, curves.shape[1] + 1)
            style = "--" if name in PEER_NAMES else "-"  # peers dashed, NNI tuners solid
            (line,) = ax.plot(x, med, style, label=name, lw=1.4, color=colors[name])
            legend.setdefault(name, line)
            ax.fill_between(x, q1, q3, color=line.get_color(), alpha=0.12)
            low = min(low, float(np.nanmin(q1)))
            high = max(high, float(med[min(len(med) - 1, max(4, len(med) // 10))]))
        if positive and optimum is not None:  # regret spans decades; raw losses do not
            ax.set_yscale("log")
        if optimum is None and np.isfinite(low) and high > low:
            # no optimum to subtract: zoom past the first random trials, where tuners differ
            pad = 0.05 * (high - low)
            ax.set_ylim(low - pad, high + pad)
        ax.set_title(f"{task_name}")
        ax.set_xlabel("trial")
        ax.set_ylabel("best - optimum" if optimum is not None else report["tasks"][task_name]["metric"])
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    labels = [name for name in report["tuners"] if name in legend]
    handles = [legend[name] for name in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), frameon=False)
    fig.suptitle(f"median best-so-far, IQR shaded ({report['meta']['seeds']} seeds)")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(report: dict, out: Path) -> dict[str, Path]:
    """Write ``results.json``, ``curves.png`` and ``table.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "png": out / "curves.png", "table": out / "table.md"}
    paths["json"].write_text(json.dumps(report, indent=1, default=_json_default), encoding="utf-8")
    plot_curves(report, paths["png"])
    paths["table"].write_text(markdown_table(report), encoding="utf-8")
    return paths


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
