"""TransformerHeadPruner (head masks, criteria, global sort, iterations) and ModelSpeedup of
head-pruned attention blocks (Linear layers on [batch, seq, hidden] inputs)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nni.algorithms.compression.pytorch.pruning import TransformerHeadPruner
from nni.compression.pytorch import ModelSpeedup, apply_compression_results

HIDDEN, HEADS, D = 16, 4, 4


class Attention(nn.Module):
    """Multi-head self-attention + feed-forward, written with separate Linear q/k/v/o."""

    def __init__(self, literal_heads=False, variant=False):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(HIDDEN, HIDDEN) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(HIDDEN, 32), nn.Linear(32, HIDDEN)
        self.ln = nn.LayerNorm(HIDDEN)
        self.softmax = nn.Softmax(dim=-1)
        self.literal_heads, self.variant = literal_heads, variant

    def split(self, t, b, s):
        heads = HEADS if self.literal_heads else -1
        if self.variant:
            return t.reshape(b, s, heads, D).permute(0, 2, 1, 3)
        return t.view(b, s, heads, D).transpose(1, 2)

    def forward(self, x, mask=None):
        b, s, _ = x.shape
        q, k, v = self.split(self.q(x), b, s), self.split(self.k(x), b, s), self.split(self.v(x), b, s)
        if self.variant:
            scores = torch.matmul(q / D ** 0.5, k.permute(0, 1, 3, 2)) + mask
            att = self.softmax(scores)
        else:
            att = torch.softmax(q @ k.transpose(-2, -1) / D ** 0.5, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().reshape(b, s, -1)
        x = self.ln(x + self.o(y))
        return x + self.fc2(torch.relu(self.fc1(x)))


class Net(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.layers = nn.ModuleList([Attention(**kwargs), Attention(**kwargs)])
        self.head = nn.Linear(HIDDEN, 3)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x.mean(1))


class MaskedNet(Net):
    def forward(self, x):
        pos = torch.arange(x.shape[1])
        mask = (pos == x.shape[1] - 1).float().mul(-1e4).view(1, 1, 1, -1)  # the last position is padding
        for layer in self.layers:
            x = layer(x, mask)
        return self.head(x.mean(1))


GROUPS = [[f"layers.{i}.{n}" for n in "qkvo"] for i in range(2)]
ALL = [{"sparsity": 0.5, "op_types": ["Linear"]}]


def make(seed=0, cls=Net, **kwargs):
    torch.manual_seed(seed)
    return cls(**kwargs).eval()


def head_norms(model, layer, p=1):
    mods = [getattr(model.layers[layer], n) for n in "qkv"]
    w = torch.cat([getattr(m, "module", m).weight.detach() for m in mods], 1).reshape(HEADS, -1)
    return w.abs().sum(1) if p == 1 else w.pow(2).sum(1).sqrt()


def check_head_masks(pruner, name_prefix, pruned):
    masks = pruner.get_masks()
    rows = torch.zeros(HIDDEN, dtype=torch.bool)
    for h in pruned:
        rows[h * D:(h + 1) * D] = True
    for n in "qkv":
        m = masks[f"{name_prefix}.{n}"]
        assert torch.equal(m["weight"], (~rows).float()[:, None].expand(HIDDEN, HIDDEN))
        assert torch.equal(m["bias"], (~rows).float())
    o = masks[f"{name_prefix}.o"]
    assert torch.equal(o["weight"], (~rows).float()[None, :].expand(HIDDEN, HIDDEN))
    assert torch.equal(o["bias"], torch.ones(HIDDEN))


@pytest.mark.parametrize("criterion,p", [("l1_weight", 1), ("l2_weight", 2)])
def test_weight_criteria_prune_lowest_heads_of_each_group(criterion, p):
    model = make()
    with torch.no_grad():  # make head 2 of layer 0 the weakest
        for n in "qkv":
            getattr(model.layers[0], n).weight[2 * D:3 * D] *= 0.01
    expected = [sorted(torch.argsort(head_norms(model, i, p), stable=True)[:2].tolist()) for i in range(2)]
    assert 2 in expected[0]
    pruner = TransformerHeadPruner(model, ALL, head_hidden_dim=D, attention_name_groups=GROUPS,
                                   ranking_criterion=criterion)
    pruner.compress()
    assert pruner.get_pruned_heads() == {"layers.0.o": expected[0], "layers.1.o": expected[1]}
    check_head_masks(pruner, "layers.0", expected[0])
    check_head_masks(pruner, "layers.1", expected[1])
    # feed-forward Linear layers matched by op_types are not in a group: left alone
    assert set(pruner.get_masks()) == {n for grp in GROUPS for n in grp}
    assert isinstance(model.layers[0].fc1, nn.Linear) and isinstance(model.head, nn.Linear)


def test_groups_found_from_traced_graph():
    for cls, kwargs in ((Net, {}), (MaskedNet, {"variant": True})):
        model = make(cls=cls, **kwargs)
        pruner = TransformerHeadPruner(model, ALL, head_hidden_dim=D, dummy_input=torch.randn(2, 5, HIDDEN))
        assert pruner.attention_name_groups == GROUPS
        pruner.compress()
        assert all(len(h) == 2 for h in pruner.get_pruned_heads().values())


def test_per_layer_sparsity_and_global_sort():
    model = make()
    config = [{"sparsity": 0.25, "op_names": GROUPS[0]}, {"sparsity": 0.75, "op_names": GROUPS[1]}]
    pruner = TransformerHeadPruner(model, config, head_hidden_dim=D, attention_name_groups=GROUPS)
    pruner.compress()
    assert [len(h) for h in pruner.get_pruned_heads().values()] == [1, 3]

    model = make()
    with torch.no_grad():
        for n in "qkv":
            getattr(model.layers[1], n).weight.mul_(0.01)
    pruner = TransformerHeadPruner(model, ALL, head_hidden_dim=D, attention_name_groups=GROUPS, global_sort=True)
    pruner.compress()
    heads = pruner.get_pruned_heads()
    # 4 of 8 heads globally; layer 1 is weakest but keeps one head
    assert len(heads["layers.1.o"]) == 3 and len(heads["layers.0.o"]) == 1
    assert heads["layers.0.o"] == [int(torch.argmin(head_norms(model, 0)))]


def test_activation_criteria_use_forward_runner():
    model = make()
    data = [torch.randn(4, 5, HIDDEN) for _ in range(2)]
    acts = [torch.zeros(HEADS), torch.zeros(HEADS)]
    reference = copy.deepcopy(model)
    hooks = [reference.layers[i].o.register_forward_pre_hook(
        lambda _m, inp, i=i: [acts[i].add_(inp[0].reshape(-1, HEADS, D).pow(2).sum((0, 2)))] and None)
        for i in range(2)]
    with torch.no_grad():
        for x in data:
            reference(x)
    for h in hooks:
        h.remove()
    calls = []

    def runner(m):
        calls.append(m)
        for x in data:
            m(x)

    pruner = TransformerHeadPruner(model, ALL, head_hidden_dim=D, attention_name_groups=GROUPS,
                                   ranking_criterion="l2_activation", forward_runner=runner)
    pruner.compress()
    assert calls == [model]
    # layer 0's heads are ranked on the unpruned model's activations
    assert pruner.get_pruned_heads()["layers.0.o"] == sorted(torch.argsort(acts[0])[:2].tolist())
    with pytest.raises(ValueError, match="forward_runner"):
        TransformerHeadPruner(make(), ALL, head_hidden_dim=D, attention_name_groups=GROUPS,
                              ranking_criterion="l1_activation")


def train_loop(record):
    data = [(torch.randn(4, 5, HIDDEN), torch.randint(0, 3, (4,)))]

    def trainer(model, optimizer, criterion, epoch):
        record.append(epoch)
        for x, y in data:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
    return trainer


def test_taylorfo_and_iterative_schedule():
    model = make()
    record = []
    pruner = TransformerHeadPruner(model, ALL, head_hidden_dim=D, attention_name_groups=GROUPS,
                                   ranking_criterion="taylorfo", num_iterations=2, epochs_per_iteration=2,
                                   optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                                   trainer=train_loop(record), criterion=nn.CrossEntropyLoss())
    seen = []
    original = pruner.update_mask

    def spy(fraction=1.0):
        original(fraction)
        seen.append({k: list(v) for k, v in pruner.get_pruned_heads().items()})
    pruner.update_mask = spy
    pruner.compress()
    # taylorfo trains with epoch=None before each pruning step, then 2 fine-tuning epochs between
    assert record == [None, 0, 1, None]
    assert [len(v) for v in seen[0].values()] == [1, 1]
    assert [len(v) for v in seen[1].values()] == [2, 2]
    for name in seen[0]:
        assert set(seen[0][name]) <= set(seen[1][name])  # pruned heads stay pruned
    for name, heads in seen[1].items():
        check_head_masks(pruner, name.rsplit(".", 1)[0], heads)
    # masked weights stay zero through optimizer steps
    assert (model.layers[0].q.module.weight[pruner.get_masks()["layers.0.q"]["weight"] == 0] == 0).all()


def test_config_errors():
    def build(config=ALL, **kw):
        kw.setdefault("attention_name_groups", GROUPS)
        return TransformerHeadPruner(make(), config, **{"head_hidden_dim": D, **kw})
    with pytest.raises(ValueError, match=r"config_list\[0\]\['op_types'\].*only \['Linear'\].*'Conv2d'"):
        build([{"sparsity": 0.5, "op_types": ["Conv2d"]}])
    with pytest.raises(ValueError, match=r"layers.0.*different sparsities"):
        build([{"sparsity": 0.5, "op_types": ["Linear"]}, {"sparsity": 0.25, "op_names": ["layers.0.o"]}])
    with pytest.raises(ValueError, match="global_sort=True needs one sparsity"):
        build([{"sparsity": 0.5, "op_names": GROUPS[0]}, {"sparsity": 0.25, "op_names": GROUPS[1]}],
              global_sort=True)
    with pytest.raises(ValueError, match="head_hidden_dim 3 does not divide"):
        build(head_hidden_dim=3)
    with pytest.raises(ValueError, match=r"attention_name_groups\[0\]: config_list selects only part"):
        build([{"sparsity": 0.5, "op_names": GROUPS[0][:3]}])
    with pytest.raises(ValueError, match=r"attention_name_groups\[1\]: 'layers.1.x' is no module"):
        build(attention_name_groups=[GROUPS[0], GROUPS[1][:3] + ["layers.1.x"]])
    with pytest.raises(ValueError, match="ranking_criterion must be one of"):
        build(ranking_criterion="l3")
    with pytest.raises(ValueError, match="num_iterations > 1 needs trainer"):
        build(num_iterations=2)
    with pytest.raises(ValueError, match="attention_name_groups.*or dummy_input"):
        build(attention_name_groups=None)


def prune_and_speedup(model, x, sparsity=0.5):
    pruner = TransformerHeadPruner(model, [{"sparsity": sparsity, "op_types": ["Linear"]}], head_hidden_dim=D,
                                   attention_name_groups=GROUPS)
    pruner.compress()
    masks = pruner.get_masks()
    pruner._unwrap_model()
    masked = copy.deepcopy(model)
    apply_compression_results(masked, masks)
    ModelSpeedup(model, x, masks).speedup_model()
    return masked, pruner


@pytest.mark.parametrize("cls,kwargs", [(Net, {}), (MaskedNet, {"variant": True})])
def test_speedup_of_head_pruned_blocks(cls, kwargs):
    model = make(cls=cls, **kwargs)
    x = torch.randn(3, 6, HIDDEN)
    masked, _ = prune_and_speedup(model, x)
    for layer in model.layers:
        assert [getattr(layer, n).out_features for n in "qkv"] == [HIDDEN // 2] * 3
        assert layer.o.in_features == HIDDEN // 2 and layer.o.out_features == HIDDEN
        assert layer.fc1.out_features == 32  # nothing pruned there
    x2 = torch.randn(2, 9, HIDDEN)  # another batch and sequence length
    for inp in (x, x2):
        assert torch.allclose(model(inp), masked(inp), atol=1e-5)


def test_speedup_with_partial_rows_and_literal_head_count():
    # rows of a head only partly masked: the head must stay whole (outputs still equal)
    model = make()
    x = torch.randn(2, 5, HIDDEN)
    masks = {f"layers.0.{n}": {"weight": torch.ones(HIDDEN, HIDDEN), "bias": torch.ones(HIDDEN)} for n in "qkv"}
    for n in "qkv":
        masks[f"layers.0.{n}"]["weight"][0:2] = 0
        masks[f"layers.0.{n}"]["bias"][0:2] = 0
    masked = copy.deepcopy(model)
    apply_compression_results(masked, masks)
    ModelSpeedup(model, x, masks).speedup_model()
    assert model.layers[0].q.out_features == HIDDEN
    assert torch.allclose(model(x), masked(x), atol=1e-5)

    model = make(literal_heads=True)
    with pytest.raises(ValueError, match=r"node 'view\w*'.*literal 4 but pruning shrinks it to 2; write -1"):
        prune_and_speedup(model, x)
    assert model.layers[0].q.out_features == HIDDEN  # untouched


class TokenMLP(nn.Module):
    """Feed-forward on [batch, seq, hidden] (the channel analysis' dim 1 is the sequence here)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(HIDDEN, 12), nn.Linear(12, 10), nn.Linear(10, 3)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.nn.functional.gelu(self.fc1(x)))))


def test_speedup_of_linear_layers_on_3d_inputs():
    torch.manual_seed(0)
    model = TokenMLP().eval()
    x = torch.randn(2, 7, HIDDEN)
    masks = {}
    for name, rows in (("fc1", [0, 5, 6]), ("fc2", [1, 9])):
        mod = getattr(model, name)
        w, b = torch.ones_like(mod.weight), torch.ones_like(mod.bias)
        w[rows], b[rows] = 0, 0
        masks[name] = {"weight": w, "bias": b}
    masked = copy.deepcopy(model)
    apply_compression_results(masked, masks)
    ModelSpeedup(model, x, masks).speedup_model()
    assert (model.fc1.out_features, model.fc2.in_features, model.fc2.out_features, model.fc3.in_features) == \
        (9, 9, 8, 8)
    assert model.fc3.out_features == 3
    assert torch.allclose(model(x), masked(x), atol=1e-5)


class SizeDerivedHeads(Attention):
    def split(self, t, b, s):
        return t.view(b, s, -1, t.size(-1) // HEADS).transpose(1, 2)  # head size from a shrunk dim


def test_speedup_restores_model_when_outputs_would_differ():
    torch.manual_seed(0)
    model = SizeDerivedHeads().eval()
    x = torch.randn(2, 5, HIDDEN)
    pruner = TransformerHeadPruner(model, ALL, head_hidden_dim=D, attention_name_groups=[list("qkvo")])
    pruner.compress()
    masks = pruner.get_masks()
    pruner._unwrap_model()
    expected = model(x)
    with pytest.raises(ValueError, match="output differs from the masked model's"):
        ModelSpeedup(model, x, masks).speedup_model()
    assert model.q.out_features == HIDDEN and torch.allclose(model(x), expected)


def test_export_then_speedup_from_files(tmp_path):
    model = make()
    x = torch.randn(2, 5, HIDDEN)
    pruner = TransformerHeadPruner(model, ALL, head_hidden_dim=D, attention_name_groups=GROUPS)
    pruner.compress()
    expected = model(x)
    pruner.export_model(str(tmp_path / "model.pth"), str(tmp_path / "mask.pth"))
    fresh = make(seed=1)
    fresh.load_state_dict(torch.load(tmp_path / "model.pth"))
    ModelSpeedup(fresh, x, str(tmp_path / "mask.pth")).speedup_model()
    assert fresh.layers[1].v.out_features == HIDDEN // 2
    assert torch.allclose(fresh(x), expected, atol=1e-5)
