"""Generate the NAS-Bench-101 database from the official release.

Usage: ``python -m nni.nas.benchmarks.nasbench101.db_gen nasbench_full.tfrecord [--out FILE]``

The input is the official TFRecord file (``nasbench_full.tfrecord`` or ``nasbench_only108.tfrecord``),
read without TensorFlow: each record (8-byte little-endian length, 4-byte length CRC, data, 4-byte
data CRC; the CRCs are not checked) is the JSON list ``[module_hash, epochs, adjacency, operations,
metrics]``: ``adjacency`` the row-major 0/1 string of the N×N matrix, ``operations`` the
comma-separated labels from ``input`` to ``output``, ``metrics`` the base64 of a ``ModelMetrics``
protobuf (``evaluation_data`` = 1: repeated {``current_epoch`` = 1, ``training_time`` = 2,
``train_accuracy`` = 3, ``validation_accuracy`` = 4, ``test_accuracy`` = 5}; ``trainable_parameters``
= 2). Each record is one trial: its last ``evaluation_data`` gives the final stats, all of them the
intermediates. Accuracies are scaled from 0-1 to 0-100, parameters to millions. The hash stored is
the one :func:`.graph_util.hash_module` computes, so queries with ``isomorphism=True`` agree with it.
"""
from __future__ import annotations

import argparse
import base64
import json
import struct
from typing import BinaryIO, Iterator

from ..utils import canonical_json, progress, run_generator, write_database
from .graph_util import hash_module, nasbench_format_to_architecture_repr
from .model import DATABASE, MODELS

__all__ = ["read_tfrecord", "decode_model_metrics", "generate"]


def read_tfrecord(stream: BinaryIO) -> Iterator[bytes]:
    """The records of a TFRecord file."""
    while True:
        header = stream.read(12)
        if not header:
            return
        if len(header) < 12:
            raise ValueError("truncated TFRecord header")
        (length,) = struct.unpack("<Q", header[:8])
        data = stream.read(length)
        if len(data) < length or len(stream.read(4)) < 4:
            raise ValueError("truncated TFRecord record")
        yield data


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, object]]:
    """(field number, value) of a protobuf message: ints, doubles (as float) and bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            (value,), pos = struct.unpack("<d", buf[pos:pos + 8]), pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            (value,), pos = struct.unpack("<f", buf[pos:pos + 4]), pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


_EVAL_FIELDS = {1: "current_epoch", 2: "training_time", 3: "train_accuracy", 4: "validation_accuracy", 5: "test_accuracy"}


def decode_model_metrics(buf: bytes) -> dict:
    """Decode a NAS-Bench-101 ``ModelMetrics`` message into ``{'evaluation_data': [...], 'trainable_parameters', 'total_time'}``."""
    out: dict = {"evaluation_data": [], "trainable_parameters": 0, "total_time": 0.0}
    for number, value in _fields(buf):
        if number == 1:
            out["evaluation_data"].append({_EVAL_FIELDS[n]: v for n, v in _fields(value) if n in _EVAL_FIELDS})
        elif number == 2:
            out["trainable_parameters"] = value
        elif number == 3:
            out["total_time"] = value
    return out


def iter_trials(records: Iterator[bytes]) -> Iterator[tuple[dict, dict, list[dict]]]:
    """Yield ``(config, stats, intermediates)`` row dicts, one per record."""
    for i, record in enumerate(records):
        try:
            _hash, epochs, raw_adjacency, raw_operations, raw_metrics = json.loads(record.decode("utf-8"))
        except ValueError as err:
            raise ValueError(f"record {i}: not the NAS-Bench-101 JSON list [hash, epochs, adjacency, operations, metrics]: {err}") from None
        n = int(round(len(raw_adjacency) ** 0.5))
        if n * n != len(raw_adjacency):
            raise ValueError(f"record {i}: adjacency string of length {len(raw_adjacency)} is not a square matrix")
        matrix = [[int(raw_adjacency[r * n + c]) for c in range(n)] for r in range(n)]
        num_vertices, arch = nasbench_format_to_architecture_repr(matrix, raw_operations.split(","))
        metrics = decode_model_metrics(base64.b64decode(raw_metrics))
        if not metrics["evaluation_data"]:
            raise ValueError(f"record {i}: ModelMetrics has no evaluation_data")
        config = {"arch": arch, "num_vertices": num_vertices, "hash": hash_module(arch, num_vertices), "num_epochs": int(epochs)}
        inters = [{"current_epoch": int(round(e.get("current_epoch", 0.0))), "train_acc": e.get("train_accuracy", 0.0) * 100,
                   "valid_acc": e.get("validation_accuracy", 0.0) * 100, "test_acc": e.get("test_accuracy", 0.0) * 100,
                   "training_time": e.get("training_time", 0.0)} for e in metrics["evaluation_data"]]
        final = inters[-1]
        stats = {"train_acc": final["train_acc"], "valid_acc": final["valid_acc"], "test_acc": final["test_acc"],
                 "parameters": metrics["trainable_parameters"] / 1e6, "training_time": final["training_time"]}
        yield config, stats, inters


def generate(raw_path: str, out: str | None = None, quiet: bool = True) -> int:
    """Read the official TFRecord at ``raw_path`` and write the database; returns the number of trials."""
    with open(raw_path, "rb") as stream:
        return write_database(DATABASE, out, MODELS, progress(iter_trials(read_tfrecord(stream)), "NAS-Bench-101", quiet),
                              lambda config: (canonical_json(config["arch"]), config["num_epochs"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nni.nas.benchmarks.nasbench101.db_gen", description=__doc__.split("\n")[0])
    parser.add_argument("raw", help="nasbench_full.tfrecord or nasbench_only108.tfrecord")
    run_generator(parser, DATABASE, argv, lambda args: (generate(args.raw, args.out, quiet=args.quiet), ""))


if __name__ == "__main__":
    main()
