"""Auto-compression: an NNI experiment that searches compression algorithms and their settings.

Example::

    from nni.algorithms.compression.pytorch.auto_compress import (
        AbstractAutoCompressionModule, AutoCompressionExperiment, AutoCompressionSearchSpaceGenerator)

    generator = AutoCompressionSearchSpaceGenerator()
    generator.add_config('level', [{'sparsity': {'_type': 'uniform', '_value': [0.01, 0.99]},
                                    'op_types': ['default']}])
    experiment = AutoCompressionExperiment(AutoCompressionModule, 'local')   # the module from its own file
    experiment.config.search_space = generator.dumps()
    ...
    experiment.run(8088)
"""
from .auto_compress_engine import AutoCompressionEngine, CompressionResult
from .constants import PRUNER_NAMES, QUANTIZER_NAMES, get_compressor_class
from .experiment import AutoCompressionExperiment
from .interface import AbstractAutoCompressionModule
from .search_space import AutoCompressionSearchSpaceGenerator, decode_parameters

__all__ = [
    "AbstractAutoCompressionModule", "AutoCompressionEngine", "AutoCompressionExperiment",
    "AutoCompressionSearchSpaceGenerator", "CompressionResult", "PRUNER_NAMES", "QUANTIZER_NAMES",
    "decode_parameters", "get_compressor_class",
]
