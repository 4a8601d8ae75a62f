"""Framework-specific model-space APIs: ``nni.retiarii.nn.pytorch``."""
