"""The initial network of the NetworkMorphism search (the docs' default CIFAR network)."""
from __future__ import annotations

from .graph import Graph

__all__ = ["CnnGenerator"]


class CnnGenerator:
    """``model_len`` blocks of ReLU -> Conv (``model_width`` filters, 3x3) -> BatchNorm ->
    max-pooling 2 (skipped once the image is 1 pixel wide), then global average pooling,
    dropout 0.25, Dense(width) -> ReLU -> Dense(``n_output_node``).

    Args:
        n_output_node: number of classes.
        input_shape: ``(width, width, channels)``.
    """

    def __init__(self, n_output_node: int, input_shape: tuple[int, ...]):
        self.n_output_node = int(n_output_node)
        self.input_shape = tuple(int(x) for x in input_shape)
        self.dim = len(self.input_shape) - 1

    def generate(self, model_len: int = 3, model_width: int = 64) -> Graph:
        graph = Graph(self.input_shape)
        d = self.dim
        node = 0
        for _ in range(model_len):
            node = graph.add_layer("StubReLU", node)
            node = graph.add_layer(f"StubConv{d}d", node, input_channel=graph.node_list[node][-1], filters=model_width,
                                   kernel_size=3, stride=1, padding=1)
            node = graph.add_layer(f"StubBatchNormalization{d}d", node, num_features=model_width)
            if min(graph.node_list[node][:-1]) >= 2:
                node = graph.add_layer(f"StubPooling{d}d", node, kernel_size=2, stride=2, padding=0)
        node = graph.add_layer(f"StubGlobalPooling{d}d", node)
        node = graph.add_layer(f"StubDropout{d}d", node, rate=0.25)
        node = graph.add_layer("StubDense", node, input_units=model_width, units=model_width)
        node = graph.add_layer("StubReLU", node)
        graph.add_layer("StubDense", node, input_units=model_width, units=self.n_output_node)
        return graph
