"""Conversions between the NAS-Bench-101 formats (adjacency matrix + labels) and NNI's arch dict,
and the graph-invariant hash that identifies isomorphic cells."""
from __future__ import annotations

import hashlib
import re
from typing import Sequence

from .constants import INPUT, LABEL2ID, OUTPUT

__all__ = ["nasbench_format_to_architecture_repr", "infer_num_vertices", "hash_module", "architecture_to_matrix"]

_KEY = re.compile(r"^(op|input)([1-9][0-9]*)$")


def _matrix_hash(matrix: Sequence[Sequence[int]], labeling: Sequence[int]) -> str:
    # The NAS-Bench-101 hash: every vertex starts from (out-degree, in-degree, label), then
    # repeatedly absorbs the sorted hashes of its in- and out-neighbours; the sorted final vertex
    # hashes are hashed once more. Isomorphic labelled graphs therefore get the same string.
    vertices = len(matrix)
    in_edges = [sum(matrix[u][v] for u in range(vertices)) for v in range(vertices)]
    out_edges = [sum(matrix[v]) for v in range(vertices)]
    hashes = [hashlib.md5(str((out_edges[v], in_edges[v], labeling[v])).encode("utf-8")).hexdigest()
              for v in range(vertices)]
    for _ in range(vertices):
        new_hashes = []
        for v in range(vertices):
            in_neighbors = [hashes[w] for w in range(vertices) if matrix[w][v]]
            out_neighbors = [hashes[w] for w in range(vertices) if matrix[v][w]]
            new_hashes.append(hashlib.md5(
                ("".join(sorted(in_neighbors)) + "|" + "".join(sorted(out_neighbors)) + "|" + hashes[v]).encode("utf-8")
            ).hexdigest())
        hashes = new_hashes
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def nasbench_format_to_architecture_repr(adjacency_matrix, labeling: Sequence[str]) -> tuple[int, dict]:
    """Convert an adjacency matrix and its labels into NNI's arch dict.

    Args:
        adjacency_matrix: N×N (list of lists or ``np.ndarray``), ``matrix[u][v] == 1`` for an edge u→v.
        labeling: N operator names, ``'input'`` first and ``'output'`` last.

    Returns:
        ``(num_vertices, arch)``, arch with keys ``op1 … op<N-2>`` and ``input1 … input<N-1>``.
    """
    matrix = [[int(x) for x in row] for row in adjacency_matrix]
    n = len(matrix)
    if any(len(row) != n for row in matrix) or len(labeling) != n:
        raise ValueError(f"adjacency_matrix must be {n}×{n} and labeling must have {n} labels, got {len(labeling)}")
    if n < 2 or labeling[0] != INPUT or labeling[-1] != OUTPUT:
        raise ValueError(f"labeling must start with {INPUT!r} and end with {OUTPUT!r}, got {list(labeling)}")
    arch: dict = {}
    for v in range(1, n):
        if v < n - 1:
            arch[f"op{v}"] = labeling[v]
        arch[f"input{v}"] = [u for u in range(v) if matrix[u][v]]
    return n, arch


def infer_num_vertices(architecture: dict) -> int:
    """The number of vertices of an arch dict, input and output included (1 + the largest ``input<i>``)."""
    ops, inputs = [], []
    for key in architecture:
        m = _KEY.match(str(key))
        if m is None:
            raise ValueError(f"arch: key {key!r} is not 'op<i>' or 'input<i>' (i >= 1)")
        (ops if m.group(1) == "op" else inputs).append(int(m.group(2)))
    if not inputs:
        raise ValueError("arch: no 'input<i>' key; the output vertex needs at least its inputs")
    n = max(inputs) + 1
    if sorted(inputs) != list(range(1, n)):
        raise ValueError(f"arch: input keys must be input1 … input{n - 1}, got {sorted(f'input{i}' for i in inputs)}")
    if sorted(ops) != list(range(1, n - 1)):
        raise ValueError(f"arch: op keys must be op1 … op{n - 2} for {n} vertices, got {sorted(f'op{i}' for i in ops)}")
    return n


def architecture_to_matrix(architecture: dict, vertices: int | None = None) -> tuple[list[list[int]], list[str]]:
    """The inverse of :func:`nasbench_format_to_architecture_repr`: ``(matrix, labeling)``."""
    n = infer_num_vertices(architecture) if vertices is None else vertices
    matrix = [[0] * n for _ in range(n)]
    labeling = [INPUT] + [architecture[f"op{v}"] for v in range(1, n - 1)] + [OUTPUT]
    for v in range(1, n):
        preds = architecture[f"input{v}"]
        if not isinstance(preds, (list, tuple)):
            raise ValueError(f"arch['input{v}']: expected a list of earlier vertices, got {preds!r}")
        for u in preds:
            if not isinstance(u, int) or not 0 <= u < v:
                raise ValueError(f"arch['input{v}']: {u!r} is not an earlier vertex (0 … {v - 1})")
            matrix[u][v] = 1
    for v in range(1, n - 1):
        if labeling[v] not in LABEL2ID:
            raise ValueError(f"arch['op{v}']: {labeling[v]!r} is not one of {', '.join(LABEL2ID)}")
    return matrix, labeling


def hash_module(architecture: dict, vertices: int) -> str:
    """Graph-invariant MD5 hash of an arch dict (the NAS-Bench-101 ``module_hash``).

    Args:
        architecture: arch dict in NNI format (see ``Nb101TrialConfig.arch``).
        vertices: its number of vertices (:func:`infer_num_vertices`).

    Returns:
        32 hex digits; two cells that are the same labelled DAG up to renumbering of the vertices
        get the same hash.
    """
    matrix, labeling = architecture_to_matrix(architecture, vertices)
    # The release labels input -1, output -2 and the operators by their index.
    labels = [-1] + [LABEL2ID[op] for op in labeling[1:-1]] + [-2]
    return _matrix_hash(matrix, labels)
