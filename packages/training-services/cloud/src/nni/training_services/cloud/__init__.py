"""Cloud training services: OpenPAI (``openpai``), Azure Machine Learning (``aml``), Alibaba
PAI-DLC (``dlc``) and DLTS (``dlts``).

Every platform submits jobs that start NNI's trial runner, which connects back to the manager
(:mod:`.base`); each platform module only knows how to submit, watch and cancel its jobs.
Import the platform modules directly (``nni.training_services.cloud.openpai`` ...); this package
imports nothing heavy.
"""
