"""Feature-selector benchmark: NNI's selectors against scikit-learn's on noisy tabular data.

For each dataset and seed: append Gaussian noise columns, split train/test (stratified), fit each
selector on the training rows for the top ``k`` features, then train logistic regression and a
gradient-boosting classifier on those columns and score them on the test rows. Selector fit time,
the test accuracies and how many noise columns each selector kept are recorded.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

# dataset name -> (scikit-learn loader name, default k)
DATASETS = {
    "breast_cancer": ("load_breast_cancer", 5),
    "digits": ("load_digits", 10),
    "wine": ("load_wine", 3),
    "iris": ("load_iris", 2),
}
DEFAULT_DATASETS = ("breast_cancer", "digits", "wine")
SELECTORS = ("all", "random", "SelectKBest", "RFE", "GBDTSelector", "FeatureGradientSelector")
MODELS = ("logreg", "gboost")


@dataclass
class BenchmarkConfig:
    """What to run.

    Attributes:
        datasets: names from :data:`DATASETS`.
        selectors: names from :data:`SELECTORS` (``all`` = no selection).
        seeds: repetitions (noise columns, split and selector seeds ``0 .. seeds-1``).
        noise_ratio: Gaussian noise columns added per original column.
        k: features to select per dataset (default: :data:`DATASETS`' value).
        test_size: share of the rows held out for scoring.
        fgs_params: keyword arguments of FeatureGradientSelector (besides ``n_features``).
        gbdt_params: keyword arguments of GBDTSelector (besides ``topk``).
        models: downstream classifiers, of :data:`MODELS`.
        threads: torch / LightGBM threads (1 compares single-threaded, like scikit-learn).
        out: folder for ``results.json``, ``table.md`` and ``fe_benchmark.png`` (``None``: no files).
    """

    datasets: Sequence[str] = DEFAULT_DATASETS
    selectors: Sequence[str] = SELECTORS
    seeds: int = 10
    noise_ratio: float = 2.0
    k: dict = field(default_factory=dict)
    test_size: float = 0.3
    fgs_params: dict = field(default_factory=lambda: dict(n_epochs=30, batch_size=256, target_batch_size=256,
                                                         ordinal=False))
    gbdt_params: dict = field(default_factory=lambda: dict(lgb_params={"num_leaves": 15}, num_boost_round=100))
    models: Sequence[str] = MODELS
    threads: int = 1
    out: str | os.PathLike | None = "fe-benchmark-results"

    def check(self) -> None:
        for name in self.datasets:
            if name not in DATASETS:
                raise ValueError(f"--datasets: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
        for name in self.selectors:
            if name not in SELECTORS:
                raise ValueError(f"--selectors: unknown selector {name!r}; allowed: {', '.join(SELECTORS)}")
        for name in self.models:
            if name not in MODELS:
                raise ValueError(f"--models: unknown model {name!r}; allowed: {', '.join(MODELS)}")
        if not self.datasets or not self.selectors or not self.models:
            raise ValueError("--datasets / --selectors: give at least one")
        if self.seeds < 1:
            raise ValueError(f"--seeds: must be at least 1, got {self.seeds}")
        if not self.noise_ratio >= 0:
            raise ValueError(f"--noise-ratio: must be >= 0, got {self.noise_ratio}")
        if not 0 < self.test_size < 1:
            raise ValueError(f"--test-size: must be in (0, 1), got {self.test_size}")
        if self.threads < 1:
            raise ValueError(f"--threads: must be at least 1, got {self.threads}")
        for name, k in self.k.items():
            if name not in DATASETS or not isinstance(k, int) or k < 1:
                raise ValueError(f"--k: {name}={k!r} is invalid; allowed: DATASET=INTEGER>=1")


def load_dataset(name: str, seed: int, noise_ratio: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The dataset with ``round(noise_ratio * n_features)`` standard-normal columns appended (after
    the original ones); returns ``X, y, n_original_features``."""
    import sklearn.datasets

    X, y = getattr(sklearn.datasets, DATASETS[name][0])(return_X_y=True)
    n_noise = int(round(noise_ratio * X.shape[1]))
    noise = np.random.default_rng(10_000 + seed).standard_normal((X.shape[0], n_noise))
    return np.hstack([X, noise]), y, X.shape[1]


def make_selector(name: str, k: int, seed: int, config: BenchmarkConfig) -> Callable:
    """A function ``(X, y) -> selected column indices`` for the named selector."""
    if name == "all":
        return lambda X, y: np.arange(X.shape[1])
    if name == "random":
        return lambda X, y: np.sort(np.random.default_rng(seed).choice(X.shape[1], size=k, replace=False))
    if name == "SelectKBest":
        from sklearn.feature_selection import SelectKBest, f_classif

        return lambda X, y: SelectKBest(f_classif, k=k).fit(X, y).get_support(indices=True)
    if name == "RFE":
        from sklearn.feature_selection import RFE
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        def rfe(X, y):
            # RFE ranks by the coefficients, which need standardised columns to be comparable
            Xs = StandardScaler().fit_transform(X)
            return RFE(LogisticRegression(max_iter=2000), n_features_to_select=k, step=0.1).fit(Xs, y).get_support(
                indices=True)

        return rfe
    if name == "GBDTSelector":
        from nni.algorithms.feature_engineering.gbdt_selector import GBDTSelector

        params = dict(config.gbdt_params)
        params["lgb_params"] = {"num_threads": config.threads, **params.get("lgb_params", {})}
        return lambda X, y: GBDTSelector(topk=k, random_state=seed, **params).fit(X, y).get_selected_features()
    if name == "FeatureGradientSelector":
        from nni.algorithms.feature_engineering.gradient_selector import FeatureGradientSelector

        return lambda X, y: FeatureGradientSelector(n_features=k, random_state=seed, **config.fgs_params).fit(
            X, y).get_selected_features()
    raise ValueError(f"unknown selector {name!r}")


def make_model(name: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return HistGradientBoostingClassifier(max_iter=50, random_state=seed)


def run_benchmark(config: BenchmarkConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Run every (dataset, seed, selector) and return the report (rows and summary)."""
    from sklearn.model_selection import train_test_split

    config.check()
    threads_before = None
    try:
        import torch

        threads_before = torch.get_num_threads()
        torch.set_num_threads(config.threads)
    except ImportError:  # torch comes with nni-fe; without it FeatureGradientSelector fails on its own
        pass
    rows = []
    start = time.perf_counter()
    partial = None
    if config.out is not None:
        # one JSON line per finished run, so that an interrupted benchmark keeps what it measured
        Path(config.out).mkdir(parents=True, exist_ok=True)
        partial = Path(config.out) / "rows.jsonl"
        partial.write_text("", encoding="utf-8")
    from threadpoolctl import threadpool_limits

    # OpenMP / BLAS pools too (scikit-learn's gradient boosting, LightGBM): one thread each, so
    # that fit times compare and a shared machine's spare cores are not fought over
    limits = threadpool_limits(limits=config.threads)
    try:
        for dataset in config.datasets:
            k = config.k.get(dataset, DATASETS[dataset][1])
            for seed in range(config.seeds):
                X, y, n_original = load_dataset(dataset, seed, config.noise_ratio)
                X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=config.test_size, stratify=y,
                                                                    random_state=seed)
                for selector in config.selectors:
                    select = make_selector(selector, k, seed, config)
                    t0, c0 = time.perf_counter(), time.process_time()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        chosen = np.asarray(select(X_train, y_train), dtype=int)
                    # CPU time is the comparable figure on a shared machine (every library runs on
                    # one thread here); wall time is kept beside it
                    fit_seconds, fit_wall = time.process_time() - c0, time.perf_counter() - t0
                    row = {"dataset": dataset, "seed": seed, "selector": selector, "k": int(len(chosen)),
                           "fit_seconds": fit_seconds, "fit_wall_seconds": fit_wall, "noise_selected": int(np.sum(chosen >= n_original)),
                           "n_features": int(X.shape[1]), "n_original": n_original}
                    for model_name in config.models:
                        model = make_model(model_name, seed)
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            model.fit(X_train[:, chosen], y_train)
                        row[f"acc_{model_name}"] = float(model.score(X_test[:, chosen], y_test))
                    rows.append(row)
                    if partial is not None:
                        with partial.open("a", encoding="utf-8") as stream:
                            stream.write(json.dumps(row) + "\n")
                    if progress:
                        scores = " ".join(f"{m} {row['acc_' + m]:.4f}" for m in config.models)
                        progress(f"{dataset} seed {seed} {selector}: {scores} fit {fit_seconds:.3f}s")
    finally:
        limits.restore_original_limits()
        if threads_before is not None:
            import torch

            torch.set_num_threads(threads_before)
    report = {
        "meta": {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "python": platform.python_version(), "machine": platform.machine(),
                 "cpu_count": os.cpu_count(), "wall_seconds": round(time.perf_counter() - start, 1),
                 "config": {"datasets": list(config.datasets), "selectors": list(config.selectors),
                            "seeds": config.seeds, "noise_ratio": config.noise_ratio,
                            "k": {d: config.k.get(d, DATASETS[d][1]) for d in config.datasets},
                            "test_size": config.test_size, "fgs_params": config.fgs_params,
                            "gbdt_params": config.gbdt_params, "models": list(config.models),
                            "threads": config.threads}},
        "rows": rows,
        "summary": summarise(rows),
    }
    if config.out is not None:
        write_outputs(report, Path(config.out))
    return report


def summarise(rows: list[dict]) -> dict:
    """``summary[dataset][selector]`` = mean / std accuracies, median fit time, mean noise picked."""
    summary: dict = {}
    for row in rows:
        summary.setdefault(row["dataset"], {}).setdefault(row["selector"], []).append(row)
    out: dict = {}
    for dataset, per_selector in summary.items():
        out[dataset] = {}
        for selector, items in per_selector.items():
            entry = {"runs": len(items), "k": items[0]["k"],
                     "fit_seconds_median": float(np.median([r["fit_seconds"] for r in items])),
                     "noise_selected_mean": float(np.mean([r["noise_selected"] for r in items]))}
            for model_name in MODELS:
                if f"acc_{model_name}" not in items[0]:
                    continue
                accs = np.array([r[f"acc_{model_name}"] for r in items])
                entry[f"{model_name}_mean"] = float(accs.mean())
                entry[f"{model_name}_std"] = float(accs.std())
            out[dataset][selector] = entry
    return out


def compare(report: dict, selector: str, reference: str, model: str = "logreg") -> dict[str, bool]:
    """Per dataset: is ``selector``'s mean accuracy at least ``reference``'s (with ``model``)?"""
    return {dataset: entries[selector][f"{model}_mean"] >= entries[reference][f"{model}_mean"] - 1e-12
            for dataset, entries in report["summary"].items() if selector in entries and reference in entries}


def markdown_table(report: dict) -> str:
    """The summary as a markdown table: accuracy mean ± std per downstream model, fit time, noise kept."""
    meta = report["meta"]["config"]
    lines = [f"Feature selectors, {meta['seeds']} seeds, {meta['noise_ratio']}x Gaussian noise columns, "
             f"test share {meta['test_size']}, top-k per dataset {meta['k']}",
             "",
             "| dataset | selector | k | logreg acc | gboost acc | fit CPU time (median) | noise cols kept |",
             "|---|---|---|---|---|---|---|"]
    for dataset, entries in report["summary"].items():
        for selector, e in entries.items():
            accs = [f"{e[m + '_mean']:.4f} ± {e[m + '_std']:.4f}" if m + "_mean" in e else "—" for m in MODELS]
            lines.append(f"| {dataset} | {selector} | {e['k']} | {accs[0]} | {accs[1]} | "
                         f"{_seconds(e['fit_seconds_median'])} | {e['noise_selected_mean']:.1f} |")
    return "\n".join(lines) + "\n"


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def plot_results(report: dict, path: Path) -> None:
    """Bar charts: accuracy per dataset and selector (both models), and fit time (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    datasets = list(summary)
    selectors = [s for s in SELECTORS if any(s in summary[d] for d in datasets)]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    width = 0.8 / max(1, len(selectors))
    x = np.arange(len(datasets))
    for panel, (ax, metric) in enumerate(zip(axes, ["logreg", "gboost", "fit"])):
        for i, selector in enumerate(selectors):
            entries = [summary[d].get(selector) for d in datasets]
            if metric == "fit":
                values = [e["fit_seconds_median"] if e else np.nan for e in entries]
                ax.bar(x + i * width, values, width, label=selector)
            else:
                values = [e.get(f"{metric}_mean", np.nan) if e else np.nan for e in entries]
                errors = [e.get(f"{metric}_std", 0) if e else 0 for e in entries]
                ax.bar(x + i * width, values, width, yerr=errors, label=selector, capsize=2)
        ax.set_xticks(x + width * (len(selectors) - 1) / 2, datasets)
        if metric == "fit":
            ax.set_yscale("log")
            ax.set_title("selector fit CPU time (s, median)")
        else:
            finite = [summary[d][s][f"{metric}_mean"] for d in datasets for s in selectors
                      if f"{metric}_mean" in summary[d].get(s, {})]
            ax.set_ylim(max(0.0, min(finite, default=0.1) - 0.1), 1.0)
            ax.set_title(f"test accuracy, {'logistic regression' if metric == 'logreg' else 'gradient boosting'}")
        if panel == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(report: dict, out: Path) -> dict[str, Path]:
    """Write ``results.json``, ``table.md`` and ``fe_benchmark.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "table": out / "table.md", "png": out / "fe_benchmark.png"}
    paths["json"].write_text(json.dumps(report, indent=1), encoding="utf-8")
    paths["table"].write_text(markdown_table(report), encoding="utf-8")
    plot_results(report, paths["png"])
    return paths


def load_report(path: str | os.PathLike) -> dict:
    report = json.loads(Path(path).read_text(encoding="utf-8"))
    if "summary" not in report or "rows" not in report:
        raise ValueError("not a fe_benchmark results.json (no 'summary' / 'rows')")
    return report
