"""Network Morphism (builtin tuner ``NetworkMorphism``): CNN architecture search by morphing
networks, after Auto-Keras. See :mod:`.networkmorphism_tuner`.

``graph_to_torch_model`` needs torch and imports it on first use.
"""
from __future__ import annotations

from typing import Any

from .graph import Graph, graph_to_json, json_to_graph
from .networkmorphism_tuner import NetworkMorphismClassArgsValidator, NetworkMorphismTuner

__all__ = ["NetworkMorphismTuner", "NetworkMorphismClassArgsValidator", "Graph", "graph_to_json", "json_to_graph",
           "graph_to_torch_model"]


def graph_to_torch_model(graph: Any) -> Any:
    """A trainable ``torch.nn.Module`` of a :class:`Graph` or its JSON (torch imported now)."""
    from .torch_model import graph_to_torch_model as build

    return build(graph)
