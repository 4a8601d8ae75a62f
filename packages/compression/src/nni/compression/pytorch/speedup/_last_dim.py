"""Speedup of Linear layers applied to inputs with more than 2 dims (features on the last dim).

Multi-head attention computes ``q/k/v = Linear(x)`` on ``[batch, seq, hidden]``, splits the hidden
dim into heads with ``view``/``reshape``, moves dims with ``transpose``/``permute``, combines
heads with ``matmul`` and ``softmax`` and merges them back before the output ``Linear``. The
channel analysis of :mod:`.compressor` only follows dim 1, so these layers are handled here, with
the exact shapes of the traced dummy input and one boolean vector per dim of every tensor
(a set of whole slices):

1. *zero pass* (forward): slices known to be zero for any input (a Linear row with zero weights
   and bias, followed through reshapes, transposes, ``matmul``, zero-preserving ops).
2. *need pass* (backward): slices whose values reach the model output (a Linear input column is
   needed only if some needed, non-zero weight reads it; ``q @ k^T`` does not need the heads
   of ``q`` where ``k`` is zero, ``attn @ v`` not those where ``v`` is zero).
3. *keep pass* (fix point): kept slices start as the needed ones and are united wherever two
   tensors must agree (both sides of a reshape, the contracted dims of ``matmul``, the dims of
   element-wise ops, all of a ``softmax`` dim); unknown ops keep everything they touch.

A Linear on a >2-D input then keeps the rows / columns its output / input keep; every removed
slice is unneeded, so the outputs stay equal to the masked model's. A ``view``/``reshape``
that writes the size of a shrunk dim as a literal cannot follow and raises a one-line error
naming the node (write ``-1`` there, e.g. ``x.view(b, s, -1, head_dim)``).
"""
from __future__ import annotations

import operator

import torch
from torch import fx, nn

from ..utils import _graph as g

F = nn.functional
_IDENTITY_MODULES = (nn.Dropout, nn.Identity, nn.ReLU, nn.GELU, nn.Tanh, nn.SiLU, nn.LeakyReLU, nn.ELU,
                     nn.Hardtanh, nn.ReLU6)
# element-wise functions with f(0) == 0 (a zero slice stays zero)
_ZERO_PRESERVING = {F.relu, F.gelu, F.silu, F.leaky_relu, F.elu, F.hardtanh, F.relu6, F.dropout, torch.relu,
                    torch.tanh, F.tanh, operator.neg, torch.neg}
_ZERO_PRESERVING_METHODS = {"relu", "tanh", "contiguous", "clone", "detach", "neg", "float"}
_MATMUL = {torch.matmul, operator.matmul, torch.bmm}
_SOFTMAX = {F.softmax, torch.softmax}
_RESHAPE_METHODS = {"view", "reshape", "flatten"}
_RESHAPE_FUNCTIONS = {torch.reshape, torch.flatten}


def _full(shape, value: bool) -> list[torch.Tensor]:
    return [torch.full((s,), value, dtype=torch.bool) for s in shape]


def _outer(vectors: list[torch.Tensor], mode: str) -> torch.Tensor:
    """Flattened outer combination (``'and'`` / ``'or'``) of per-dim vectors."""
    flat = torch.ones(1, dtype=torch.bool) if mode == "and" else torch.zeros(1, dtype=torch.bool)
    for vec in vectors:
        flat = (flat[:, None] & vec[None, :]) if mode == "and" else (flat[:, None] | vec[None, :])
        flat = flat.reshape(-1)
    return flat


def _project(flat: torch.Tensor, sizes: list[int], reduce: str) -> list[torch.Tensor]:
    """Per-dim vectors of a flattened block: ``'any'`` / ``'all'`` over the other dims."""
    block = flat.reshape(sizes) if sizes else flat.reshape(())
    out = []
    for d in range(len(sizes)):
        other = [o for o in range(len(sizes)) if o != d]
        out.append(block.any(other) if reduce == "any" and other else block.all(other) if other else block.clone())
    return out


def _reshape_groups(a: tuple, b: tuple) -> list[tuple[list[int], list[int]]] | None:
    """Matches the dims of two shapes of equal numel into groups of equal product."""
    groups, i, j = [], 0, 0
    try:
        while i < len(a) or j < len(b):
            dims_a, dims_b, pa, pb = [], [], 1, 1
            if i < len(a):
                dims_a.append(i)
                pa *= a[i]
                i += 1
            if j < len(b):
                dims_b.append(j)
                pb *= b[j]
                j += 1
            while pa != pb:
                if pa < pb:
                    dims_a.append(i)
                    pa *= a[i]
                    i += 1
                else:
                    dims_b.append(j)
                    pb *= b[j]
                    j += 1
            groups.append((dims_a, dims_b))
    except IndexError:
        return None
    return groups


class LastDimAnalysis:
    """Zero, need and keep passes over a traced graph (see the module docstring)."""

    def __init__(self, gm: fx.GraphModule, modules: dict[str, nn.Module]):
        self.modules = modules
        self.nodes = list(gm.graph.nodes)
        self.shape = {n: g.shape_of(n) for n in self.nodes}
        self.kind = {n: self._kind(n) for n in self.nodes}
        self.linears = [n for n in self.nodes if self.kind[n] == "linear"]
        if not self.linears:
            return
        self.zero: dict[fx.Node, list[torch.Tensor]] = {}
        self._zero_pass()
        self.need: dict[fx.Node, list[torch.Tensor]] = {n: _full(s, False) for n, s in self.shape.items() if s}
        self._need_pass()
        self.keep = {n: [v.clone() for v in vecs] for n, vecs in self.need.items()}
        self._keep_pass()

    # -- classification --------------------------------------------------------------------------
    def _ins(self, node: fx.Node) -> list[fx.Node]:
        return [i for i in g.tensor_inputs(node) if self.shape.get(i)]

    def _kind(self, node: fx.Node) -> str:
        shape = self.shape[node]
        if node.op == "placeholder":
            return "input"
        if node.op == "output":
            return "output"
        if not shape:
            return "none"
        ins = self._ins(node)
        target = node.target
        if node.op == "call_module":
            mod = self.modules[target]
            if isinstance(mod, nn.Linear) and len(ins) == 1 and len(self.shape[ins[0]]) > 2:
                return "linear"
            if isinstance(mod, _IDENTITY_MODULES) and len(ins) == 1:
                return "zero_preserving"
            if isinstance(mod, nn.Softmax) and len(ins) == 1:
                return "softmax"
            return "other"
        if len(ins) == 1 and ((node.op == "call_function" and target in _ZERO_PRESERVING) or (
                node.op == "call_method" and target in _ZERO_PRESERVING_METHODS)):
            return "zero_preserving" if self.shape[ins[0]] == shape else "other"
        if (node.op == "call_function" and target in (torch.transpose, torch.permute)) or (
                node.op == "call_method" and target in ("transpose", "permute")):
            return "permute" if len(ins) == 1 else "other"
        if (node.op == "call_function" and target in _RESHAPE_FUNCTIONS) or (
                node.op == "call_method" and target in _RESHAPE_METHODS):
            return "reshape" if len(ins) == 1 and _reshape_groups(self.shape[ins[0]], shape) else "other"
        if (node.op == "call_function" and target in _MATMUL) or (node.op == "call_method" and target == "matmul"):
            ok = len(ins) == 2 and all(len(self.shape[i]) >= 2 for i in ins) and len(shape) >= 2
            return "matmul" if ok else "other"
        if (node.op == "call_function" and target in _SOFTMAX) or (node.op == "call_method" and target == "softmax"):
            return "softmax" if len(ins) == 1 else "other"
        if (node.op == "call_function" and target in g.BINARY_FUNCTIONS) or (
                node.op == "call_method" and target in g.BINARY_METHODS):
            if len(ins) == 2 and all(self._aligned(i, node) is not None for i in ins):
                return "binary"
            if len(ins) == 1 and self.shape[ins[0]] == shape:
                name = getattr(target, "__name__", str(target)).strip("_")
                # x * c and x / c keep zeros; x + c and c / x do not
                divides = name in ("truediv", "div", "itruediv") and node.args[0] is ins[0]
                keeps_zero = name in ("mul", "imul") or divides
                return "scalar_zero" if keeps_zero else "scalar"
        return "other"

    def _aligned(self, inp: fx.Node, node: fx.Node) -> list[tuple[int, int]] | None:
        """Pairs (input dim, output dim) of equal size under right-aligned broadcasting."""
        a, b = self.shape[inp], self.shape[node]
        if len(a) > len(b):
            return None
        pairs = []
        for k in range(1, len(a) + 1):
            if a[-k] == b[-k]:
                pairs.append((len(a) - k, len(b) - k))
            elif a[-k] != 1:
                return None
        return pairs

    def _softmax_dim(self, node: fx.Node) -> int:
        if node.op == "call_module":
            dim = self.modules[node.target].dim
        else:
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        if not isinstance(dim, int):
            return -1
        return dim % len(self.shape[node])

    def _perm(self, node: fx.Node) -> list[int] | None:
        """Output dim d comes from input dim perm[d]."""
        rank = len(self.shape[node])
        args = list(node.args[1:])
        if node.target in ("transpose", torch.transpose):
            dims = args or [node.kwargs.get("dim0"), node.kwargs.get("dim1")]
            if len(dims) != 2 or not all(isinstance(d, int) for d in dims):
                return None
            perm = list(range(rank))
            a, b = dims[0] % rank, dims[1] % rank
            perm[a], perm[b] = perm[b], perm[a]
            return perm
        dims = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
        dims = dims or node.kwargs.get("dims", [])
        if len(dims) != rank or not all(isinstance(d, int) for d in dims):
            return None
        return [d % rank for d in dims]

    # -- zero pass ----------------------------------------------------------------------------
    def _zero_pass(self) -> None:
        for node in self.nodes:
            shape = self.shape[node]
            if not shape:
                continue
            kind, ins = self.kind[node], self._ins(node)
            zero = _full(shape, False)
            if kind == "linear":
                mod = self.modules[node.target]
                weight = mod.weight.detach().cpu()
                bias = mod.bias.detach().cpu() if mod.bias is not None else torch.zeros(weight.shape[0])
                live_in = ~self.zero[ins[0]][-1]
                zero[-1] = ~((weight[:, live_in] != 0).any(1)) & (bias == 0)
            elif kind in ("zero_preserving", "scalar_zero"):
                zero = [v.clone() for v in self.zero[ins[0]]]
            elif kind == "permute":
                perm = self._perm(node)
                if perm is not None:
                    zero = [self.zero[ins[0]][p].clone() for p in perm]
            elif kind == "reshape":
                src = self.zero[ins[0]]
                for dims_a, dims_b in _reshape_groups(self.shape[ins[0]], shape):
                    flat = _outer([src[d] for d in dims_a], "or")
                    for d, vec in zip(dims_b, _project(flat, [shape[d] for d in dims_b], "all")):
                        zero[d] = vec
            elif kind == "matmul":
                za, zb = self.zero[ins[0]], self.zero[ins[1]]
                zero[-2] = za[-2].clone()
                zero[-1] = zb[-1].clone()
                for inp, z in ((ins[0], za), (ins[1], zb)):
                    for d_in, d_out in self._batch_pairs(inp, node):
                        zero[d_out] = zero[d_out] | z[d_in]
            elif kind == "binary":
                name = getattr(node.target, "__name__", str(node.target)).strip("_")
                if name in ("mul", "imul"):
                    for inp in ins:
                        for d_in, d_out in self._aligned(inp, node):
                            zero[d_out] = zero[d_out] | self.zero[inp][d_in]
                elif name in ("add", "iadd", "sub", "isub"):
                    parts = [dict((o, self.zero[i][d]) for d, o in self._aligned(i, node)) for i in ins]
                    for d in range(len(shape)):
                        if all(d in p for p in parts):
                            zero[d] = parts[0][d] & parts[1][d]
            self.zero[node] = zero

    def _batch_pairs(self, inp: fx.Node, node: fx.Node) -> list[tuple[int, int]]:
        a, b = self.shape[inp], self.shape[node]
        pairs = []
        for k in range(3, len(a) + 1):
            if k <= len(b) and a[-k] == b[-k]:
                pairs.append((len(a) - k, len(b) - k))
        return pairs

    # -- need pass ----------------------------------------------------------------------------
    def _add_need(self, node: fx.Node, vecs: list[torch.Tensor]) -> None:
        cur = self.need[node]
        for d, vec in enumerate(vecs):
            cur[d] = cur[d] | vec

    def _need_pass(self) -> None:
        for node in reversed(self.nodes):
            kind, ins = self.kind[node], self._ins(node)
            if kind == "output" or (kind == "other" and ins):
                for i in ins:
                    self._add_need(i, _full(self.shape[i], True))
                continue
            if node not in self.need or not ins:
                continue
            need = self.need[node]
            if not all(v.any() for v in need):
                continue  # nothing of this tensor is needed
            if kind == "linear":
                mod = self.modules[node.target]
                reads = (mod.weight.detach().cpu() != 0)[need[-1]].any(0)
                self._add_need(ins[0], [v.clone() for v in need[:-1]] + [reads & ~self.zero[ins[0]][-1]])
            elif kind in ("zero_preserving", "scalar_zero", "scalar"):
                self._add_need(ins[0], [v.clone() for v in need])
            elif kind == "softmax":
                vecs = [v.clone() for v in need]
                dim = self._softmax_dim(node)
                vecs[dim] = torch.ones_like(vecs[dim])
                self._add_need(ins[0], vecs)
            elif kind == "permute":
                perm = self._perm(node)
                if perm is None:
                    self._add_need(ins[0], _full(self.shape[ins[0]], True))
                    continue
                vecs = [None] * len(perm)
                for d_out, d_in in enumerate(perm):
                    vecs[d_in] = need[d_out].clone()
                self._add_need(ins[0], vecs)
            elif kind == "reshape":
                in_shape = self.shape[ins[0]]
                vecs = [None] * len(in_shape)
                for dims_a, dims_b in _reshape_groups(in_shape, self.shape[node]):
                    flat = _outer([need[d] for d in dims_b], "and")
                    for d, vec in zip(dims_a, _project(flat, [in_shape[d] for d in dims_a], "any")):
                        vecs[d] = vec
                self._add_need(ins[0], vecs)
            elif kind == "matmul":
                self._need_matmul(node, ins)
            elif kind == "binary":
                name = getattr(node.target, "__name__", str(node.target)).strip("_")
                for inp, other in ((ins[0], ins[1]), (ins[1], ins[0])):
                    vecs = _full(self.shape[inp], False)
                    other_zero = {o: self.zero[other][d] for d, o in self._aligned(other, node)}
                    for d_in, d_out in self._aligned(inp, node):
                        vec = need[d_out]
                        if name in ("mul", "imul") and d_out in other_zero:
                            vec = vec & ~other_zero[d_out]
                        vecs[d_in] = vec.clone()
                    for d, size in enumerate(self.shape[inp]):
                        if size == 1 and self.shape[node][d - len(self.shape[inp])] != 1:
                            vecs[d] = torch.ones(1, dtype=torch.bool)  # broadcast: read by every slice
                    self._add_need(inp, vecs)

    def _need_matmul(self, node: fx.Node, ins: list[fx.Node]) -> None:
        need = self.need[node]
        (a, b), (za, zb) = ins, (self.zero[ins[0]], self.zero[ins[1]])
        for inp, z_other, other in ((a, zb, b), (b, za, a)):
            vecs = [torch.ones(s, dtype=torch.bool) for s in self.shape[inp]]
            out_batch = dict(self._batch_pairs(inp, node))
            other_batch = {o: d for d, o in self._batch_pairs(other, node)}
            for d_in, d_out in out_batch.items():
                vec = need[d_out].clone()
                if d_out in other_batch:
                    vec &= ~z_other[other_batch[d_out]]
                vecs[d_in] = vec
            if inp is a:
                vecs[-2] = need[-2].clone()
                # a[..., i, k] is read only where b[..., k, m] is non-zero for a needed m
                vecs[-1] = ~zb[-2] & torch.ones_like(vecs[-1]) if (need[-1] & ~zb[-1]).any() else \
                    torch.zeros_like(vecs[-1])
            else:
                vecs[-1] = need[-1].clone()
                vecs[-2] = ~za[-1] & torch.ones_like(vecs[-2]) if (need[-2] & ~za[-2]).any() else \
                    torch.zeros_like(vecs[-2])
            self._add_need(inp, vecs)

    # -- keep pass ----------------------------------------------------------------------------
    def _unite(self, x: fx.Node, dx: int, y: fx.Node, dy: int) -> bool:
        vx, vy = self.keep[x][dx], self.keep[y][dy]
        union = vx | vy
        if torch.equal(union, vx) and torch.equal(union, vy):
            return False
        self.keep[x][dx], self.keep[y][dy] = union, union.clone()
        return True

    def _set_all(self, node: fx.Node, dims=None) -> bool:
        changed = False
        for d in (range(len(self.keep[node])) if dims is None else dims):
            if not self.keep[node][d].all():
                self.keep[node][d] = torch.ones_like(self.keep[node][d])
                changed = True
        return changed

    def _keep_pass(self) -> None:
        for vecs in self.keep.values():
            for d, vec in enumerate(vecs):
                if not vec.any():
                    vec[0] = True  # a tensor never loses a whole dim
        for node in self.nodes:
            if node in self.keep and self.kind[node] in ("input", "other"):
                self._set_all(node)
        changed = True
        while changed:
            changed = False
            for node in self.nodes:
                changed |= self._keep_node(node)

    def _keep_node(self, node: fx.Node) -> bool:
        kind, ins = self.kind[node], self._ins(node)
        changed = False
        if kind == "none":
            return False  # size queries read no values; the final check catches misuse of shrunk sizes
        if kind in ("output", "other", "input"):
            for i in ins:
                changed |= self._set_all(i)
            if node in self.keep and kind != "output":
                changed |= self._set_all(node)
            return changed
        if kind == "linear":
            for d in range(len(self.shape[node]) - 1):
                changed |= self._unite(ins[0], d, node, d)
        elif kind in ("zero_preserving", "scalar_zero", "scalar", "softmax"):
            for d in range(len(self.shape[node])):
                changed |= self._unite(ins[0], d, node, d)
            if kind == "softmax":
                dim = self._softmax_dim(node)
                changed |= self._set_all(node, [dim]) | self._set_all(ins[0], [dim])
        elif kind == "permute":
            perm = self._perm(node)
            if perm is None:
                return self._set_all(node) | self._set_all(ins[0])
            for d_out, d_in in enumerate(perm):
                changed |= self._unite(ins[0], d_in, node, d_out)
        elif kind == "reshape":
            in_shape, out_shape = self.shape[ins[0]], self.shape[node]
            for dims_a, dims_b in _reshape_groups(in_shape, out_shape):
                flat = _outer([self.keep[ins[0]][d] for d in dims_a], "and") | _outer(
                    [self.keep[node][d] for d in dims_b], "and")
                for n, dims, sizes in ((ins[0], dims_a, in_shape), (node, dims_b, out_shape)):
                    for d, vec in zip(dims, _project(flat, [sizes[d] for d in dims], "any")):
                        if not torch.equal(vec | self.keep[n][d], self.keep[n][d]):
                            self.keep[n][d] = vec | self.keep[n][d]
                            changed = True
        elif kind == "matmul":
            a, b = ins
            changed |= self._unite(a, -2, node, -2) | self._unite(b, -1, node, -1) | self._unite(a, -1, b, -2)
            for inp in ins:
                for d_in, d_out in self._batch_pairs(inp, node):
                    changed |= self._unite(inp, d_in, node, d_out)
        elif kind == "binary":
            for inp in ins:
                for d_in, d_out in self._aligned(inp, node):
                    changed |= self._unite(inp, d_in, node, d_out)
        return changed

    # -- results ------------------------------------------------------------------------------
    def replacements(self) -> dict[str, nn.Module]:
        """Smaller Linear modules for the >2-D Linear layers that lose rows or columns."""
        result: dict[str, nn.Module] = {}
        if not self.linears:
            return result
        seen: dict[str, tuple] = {}
        for node in self.linears:
            keep_in, keep_out = self.keep[self._ins(node)[0]][-1], self.keep[node][-1]
            key = (keep_in.tolist(), keep_out.tolist())
            if seen.setdefault(node.target, key) != key:
                raise ValueError(f"ModelSpeedup: module {node.target!r} is called several times with different "
                                 "pruned features; give each call its own module")
            if keep_in.all() and keep_out.all():
                continue
            result[node.target] = _shrink_linear(self.modules[node.target], keep_in, keep_out)
        for node in self.nodes:
            if self.kind[node] == "reshape":
                self._check_literal_sizes(node)
        return result

    def _check_literal_sizes(self, node: fx.Node) -> None:
        if node.target in ("flatten", torch.flatten):
            return
        sizes = list(node.args[1:])
        if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
            sizes = list(sizes[0])
        sizes = sizes or list(node.kwargs.get("shape", ()))
        for d, vec in enumerate(self.keep[node]):
            if d < len(sizes) and not vec.all() and isinstance(sizes[d], int) and sizes[d] != -1:
                raise ValueError(f"ModelSpeedup: node {node.name!r} ({g.describe(node)}) writes the size of dim {d} "
                                 f"as the literal {sizes[d]} but pruning shrinks it to {int(vec.sum())}; write -1 "
                                 f"there (e.g. x.view(b, s, -1, head_dim))")


def _shrink_linear(mod: nn.Linear, keep_in: torch.Tensor, keep_out: torch.Tensor) -> nn.Linear:
    weight = mod.weight.detach()
    new = nn.Linear(int(keep_in.sum()), int(keep_out.sum()), bias=mod.bias is not None)
    new = new.to(device=weight.device, dtype=weight.dtype)
    k_in, k_out = keep_in.to(weight.device), keep_out.to(weight.device)
    with torch.no_grad():
        new.weight.copy_(weight[k_out][:, k_in])
        if mod.bias is not None:
            new.bias.copy_(mod.bias.detach()[k_out])
    new.train(mod.training)
    return new
