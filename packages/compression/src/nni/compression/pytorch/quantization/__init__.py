"""Quantization helpers shared by the quantizers: global dtype / scheme settings
(:mod:`.settings`) and the fake-quantization arithmetic (:mod:`.literal`)."""
