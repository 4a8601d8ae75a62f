"""Multi-trial NAS experiments: :mod:`nni.retiarii.experiment.pytorch` (``RetiariiExperiment``, ``RetiariiExeConfig``)."""
