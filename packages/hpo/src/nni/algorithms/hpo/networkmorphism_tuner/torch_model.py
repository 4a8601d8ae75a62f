"""Turn a NetworkMorphism graph (or its JSON) into a trainable ``torch.nn.Module``.

Imported on first use only: nni-hpo itself does not need torch.
"""
from __future__ import annotations

from typing import Any

from .graph import Graph, json_to_graph

__all__ = ["graph_to_torch_model"]


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("NetworkMorphism needs PyTorch to build models: pip install 'nni-hpo[torch]' (or pip install torch)") from None
    return torch


def graph_to_torch_model(graph: Graph | str | dict) -> Any:
    """A ``torch.nn.Module`` computing ``graph``.

    The module takes channel-first batches, ``(N, C, H, W)`` for 2-d images (the graph's shapes
    are channel-last, as in the docs' JSON), and returns ``(N, n_output_node)`` logits (no
    softmax; use ``CrossEntropyLoss``). Pooling is max-pooling, global pooling is an average,
    dropout is element-wise. Weights get PyTorch's default initialisation.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(graph, Graph):
        graph = json_to_graph(graph)

    def module(layer) -> Any:
        kind, d, a = layer.kind, layer.dim, layer.args
        if kind == "StubConv":
            return getattr(nn, f"Conv{d}d")(int(a["input_channel"]), int(a["filters"]), int(a["kernel_size"]),
                                             stride=int(a["stride"]), padding=int(a["padding"]))
        if kind == "StubDense":
            return nn.Linear(int(a["input_units"]), int(a["units"]))
        if kind == "StubBatchNormalization":
            return getattr(nn, f"BatchNorm{d}d")(int(a["num_features"]))
        if kind == "StubDropout":
            return nn.Dropout(float(a["rate"]))
        if kind == "StubPooling":
            return getattr(nn, f"MaxPool{d}d")(int(a["kernel_size"]), stride=int(a["stride"]), padding=int(a["padding"]))
        if kind == "StubReLU":
            return nn.ReLU()
        if kind == "StubSoftmax":
            return nn.Softmax(dim=1)
        if kind == "StubFlatten":
            return nn.Flatten()
        return None  # merges and global pooling are computed in forward()

    class TorchModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.graph = graph
            self.order = graph.topological_layers()
            self.output_id = graph.output_node()
            self.layers = nn.ModuleList([module(layer) or nn.Identity() for layer in graph.layer_list])

        def forward(self, x):
            values = {0: x}
            for i in self.order:
                layer = self.graph.layer_list[i]
                ins = [values[n] for n in layer.inputs]
                if layer.kind == "StubAdd":
                    out = ins[0]
                    for t in ins[1:]:
                        out = out + t
                elif layer.kind == "StubConcatenate":
                    out = torch.cat(ins, dim=1)
                elif layer.kind == "StubGlobalPooling":
                    out = ins[0].flatten(2).mean(dim=2)
                else:
                    out = self.layers[i](ins[0])
                values[layer.output] = out
            return values[self.output_id]

    return TorchModel()
