"""Benchmark of ModelSpeedup: masked vs sped-up models on CPU.

``python -m nni.compression_benchmark`` prints one JSON object per model (VGG-style CNN and a
ResNet-style net with residual adds) with the latency of the masked and of the sped-up model
(median of repeats, ``torch.set_num_threads(1)`` so the figures do not depend on the machine's
load), the FLOPs ratio from ``count_flops_params``, the largest output difference, and the
targets: latency <= 0.6x masked, FLOPs <= 0.3x.

``python -m nni.compression_benchmark.quantization``: int8 ONNX Runtime vs fp32 PyTorch on digits
(see :mod:`nni.compression_benchmark.quantization`).
"""
from .bench import bench_model, l1_filter_masks, make_resnet, make_vgg, run_all

__all__ = ["bench_model", "l1_filter_masks", "make_resnet", "make_vgg", "run_all"]
