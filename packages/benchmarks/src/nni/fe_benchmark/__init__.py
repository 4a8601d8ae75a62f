"""The feature-selector benchmark: NNI's FeatureGradientSelector and GBDTSelector against
scikit-learn's SelectKBest, RFE and random selection, on scikit-learn datasets with added noise.

Run it with ``python -m nni.fe_benchmark`` (``--quick`` for CI); see the package README. From Python::

    from nni.fe_benchmark import BenchmarkConfig, run_benchmark

    report = run_benchmark(BenchmarkConfig(datasets=["wine"], seeds=3, out=None))
    print(report["summary"]["wine"]["FeatureGradientSelector"]["logreg_mean"])
"""
from __future__ import annotations

from .bench import (
    DATASETS,
    DEFAULT_DATASETS,
    MODELS,
    SELECTORS,
    BenchmarkConfig,
    compare,
    load_dataset,
    load_report,
    markdown_table,
    plot_results,
    run_benchmark,
    write_outputs,
)

__all__ = ["BenchmarkConfig", "run_benchmark", "markdown_table", "plot_results", "write_outputs", "load_report",
           "load_dataset", "compare", "DATASETS", "DEFAULT_DATASETS", "SELECTORS", "MODELS"]
