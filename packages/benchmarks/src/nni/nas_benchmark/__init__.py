"""Multi-trial NAS benchmark: strategies on a small CNN space over scikit-learn's 8x8 digits.

``python -m nni.nas_benchmark [--quick]`` runs real :class:`~nni.retiarii.experiment.pytorch.RetiariiExperiment`
searches (local training service) with ``RegularizedEvolution``, ``TPEStrategy`` and ``Random`` and reports the
median final accuracy per strategy and the per-trial overhead over the model's own training time.

* :mod:`nni.nas_benchmark.space`: the model space and the trial function (imported by name in the trials).
* :mod:`nni.nas_benchmark.bench`: the runner and the report.
* :mod:`nni.nas_benchmark.offline`: the table of every architecture's accuracy and strategy comparisons on it.
"""
