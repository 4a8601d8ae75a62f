"""The contract every exported pruner (v1 and v2, one-shot, training, iterative, search) keeps.

One factory table builds each pruner with the minimal arguments it needs on a tiny model; every
case then goes through the same checks:

* masks exist for exactly the layers the config_list selects, 0/1 tensors shaped like the weight;
* the configured sparsity is reached (exactly where the pruner is deterministic about counts,
  within the documented tolerance for the search pruners; AMC: the FLOPs budget);
* filter pruners zero whole filters with their biases, head pruners whole heads, and the weights
  themselves are zero under a 0 mask;
* the pruned model still runs forward;
* v1: ``export_model`` / reload / ``load_model_state_dict`` round-trip; v2: the masks are applied
  to the returned model and ``export_model`` (one-shot) reloads;
* an invalid config_list is a one-line ``ValueError`` naming the entry's key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest
import torch
from torch import nn

from nni.algorithms.compression.pytorch import pruning as v1
from nni.algorithms.compression.v2.pytorch import pruning as v2
from nni.retiarii.models import DigitsCNN, digits_cnn


def net() -> DigitsCNN:
    """conv1(1->8)-bn1 -> conv2(8->16)-bn2 -> fc1(256->16) -> fc2(16->10), 8x8 inputs (the model zoo's digits CNN)."""
    return digits_cnn(10, widths=(8, 16), hidden=16, batch_norm=True, padding=0, pool=False)


HIDDEN, HEADS, HEAD_DIM = 8, 4, 2


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(HIDDEN, HIDDEN) for _ in range(4))
        self.head = nn.Linear(HIDDEN, 3)

    def forward(self, x):
        b, s, _ = x.shape
        q, k, v = (t.view(b, s, -1, HEAD_DIM).transpose(1, 2) for t in (self.q(x), self.k(x), self.v(x)))
        y = (torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v).transpose(1, 2).reshape(b, s, -1)
        return self.head((x + self.o(y)).mean(1))


X = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
Y = torch.arange(32) % 10
CONVS = ["conv1", "conv2"]
ALL_WEIGHTED = ["conv1", "conv2", "fc1", "fc2"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # tiny tensors: with several intra-op threads on a busy 2-core machine torch is ~40x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trainer_v1(model, optimizer, criterion, epoch):
    model.train()
    for i in range(0, 32, 16):
        optimizer.zero_grad()
        criterion(model(X[i:i + 16]), Y[i:i + 16]).backward()
        optimizer.step()


def trainer_v2(model, optimizer, criterion):
    trainer_v1(model, optimizer, criterion, None)


def weight_score(model) -> float:
    """A cheap evaluator: larger when more weight magnitude is kept."""
    return float(sum(p.detach().abs().sum() for n, p in model.named_parameters() if n.endswith("weight")))


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.01)


CE = nn.CrossEntropyLoss()


@dataclass
class Case:
    """One pruner: how to build and run it and what it promises."""
    id: str
    build: Callable  # (model, config_list, tmp_path) -> pruner
    config: list
    selected: list
    check: str  # 'level' | 'filter' | 'bn' | 'overall' | 'overall_filter' | 'head' | 'flops'
    sparsity: float
    api: str = "v1"  # 'v1' | 'v2' | 'v2-scheduler'
    run: Callable | None = None  # (pruner, model) -> (model, masks); default per api
    model: Callable = net
    invalid: list = field(default_factory=lambda: [{"sparsity": 1.5, "op_types": ["Conv2d"]}])
    invalid_key: str = "sparsity"
    slow: bool = False


def conv_cfg(s=0.5):
    return [{"sparsity": s, "op_types": ["Conv2d"]}]


def run_lottery_v1(pruner, model):
    pruner.compress()
    for _ in pruner.get_prune_iterations():
        pruner.prune_iteration_start()
        trainer_v1(model, pruner.optimizer, CE, 0)
    return model, pruner.get_masks()


def run_sensitivity(pruner, model):
    pruner.compress(eval_args=[model])
    return model, pruner.get_masks()


def run_amc(pruner, model):
    pruner.compress()
    return model, pruner.get_masks()


def _evaluate_amc(loader, model):
    return 50.0 + 1e-6 * weight_score(model)


V2_NORM_CFG = [{"sparsity": 0.5, "op_types": ["Conv2d"]}, {"sparsity": 0.5, "op_names": ["fc1"]}]
TRANSFORMER_GROUP = [["q", "k", "v", "o"]]

CASES = [
    # ---- v1 one-shot
    Case("v1-Level", lambda m, c, t: v1.LevelPruner(m, c), [{"sparsity": 0.6, "op_types": ["default"]}], ALL_WEIGHTED,
         "level", 0.6, invalid=[{"sparsity": 1.5, "op_types": ["default"]}]),
    Case("v1-L1Filter", lambda m, c, t: v1.L1FilterPruner(m, c), conv_cfg(), CONVS, "filter", 0.5),
    Case("v1-L2Filter", lambda m, c, t: v1.L2FilterPruner(m, c), conv_cfg(), CONVS, "filter", 0.5),
    Case("v1-FPGM", lambda m, c, t: v1.FPGMPruner(m, c), conv_cfg(), CONVS, "filter", 0.5),
    # ---- v1 pruners that train
    Case("v1-Slim", lambda m, c, t: v1.SlimPruner(m, c, sgd(m), trainer_v1, CE, sparsifying_training_epochs=1),
         [{"sparsity": 0.5, "op_types": ["BatchNorm2d"]}], ["bn1", "bn2"], "bn", 0.5,
         invalid=[{"sparsity": 1.5, "op_types": ["BatchNorm2d"]}]),
    Case("v1-TaylorFOWeightFilter", lambda m, c, t: v1.TaylorFOWeightFilterPruner(m, c, sgd(m), trainer_v1, CE),
         conv_cfg(), CONVS, "filter", 0.5),
    Case("v1-ActivationAPoZRankFilter", lambda m, c, t: v1.ActivationAPoZRankFilterPruner(m, c, sgd(m), trainer_v1, CE),
         conv_cfg(), CONVS, "filter", 0.5),
    Case("v1-ActivationMeanRankFilter",
         lambda m, c, t: v1.ActivationMeanRankFilterPruner(m, c, sgd(m), trainer_v1, CE),
         conv_cfg(), CONVS, "filter", 0.5),
    Case("v1-AGP", lambda m, c, t: v1.AGPPruner(m, c, sgd(m), trainer_v1, CE, num_iterations=2,
                                                pruning_algorithm="l1"), conv_cfg(), CONVS, "filter", 0.5),
    Case("v1-ADMM", lambda m, c, t: v1.ADMMPruner(m, c, trainer_v1, num_iterations=1, epochs_per_iteration=1),
         conv_cfg(), CONVS, "filter", 0.5),
    Case("v1-LotteryTicket", lambda m, c, t: v1.LotteryTicketPruner(m, c, sgd(m)),
         [{"prune_iterations": 2, "sparsity": 0.7, "op_types": ["default"]}], ALL_WEIGHTED, "level", 0.7,
         run=run_lottery_v1, invalid=[{"prune_iterations": 2, "sparsity": 1.5, "op_types": ["default"]}]),
    # ---- v1 search pruners (overall sparsity of the selected weights)
    Case("v1-Sensitivity", lambda m, c, t: v1.SensitivityPruner(m, c, weight_score, sparsity_per_iter=0.3),
         conv_cfg(0.4), CONVS, "overall_filter", 0.4, run=run_sensitivity),
    Case("v1-NetAdapt", lambda m, c, t: v1.NetAdaptPruner(m, c, lambda model: None, weight_score,
                                                          sparsity_per_iteration=0.2, experiment_data_dir=str(t)),
         conv_cfg(0.4), CONVS, "overall_filter", 0.4),
    Case("v1-SimulatedAnnealing",
         lambda m, c, t: v1.SimulatedAnnealingPruner(m, c, weight_score, base_algo="level", start_temperature=10,
                                                     stop_temperature=5, experiment_data_dir=str(t)),
         conv_cfg(0.5), CONVS, "overall", 0.5),
    Case("v1-AutoCompress",
         lambda m, c, t: v1.AutoCompressPruner(m, c, trainer_v1, weight_score, dummy_input=X[:1], num_iterations=1,
                                               base_algo="level", start_temperature=10, stop_temperature=5,
                                               cool_down_rate=0.6, admm_num_iterations=1, admm_epochs_per_iteration=1,
                                               experiment_data_dir=str(t)),
         conv_cfg(0.5), CONVS, "overall", 0.5),
    Case("v1-AMC",
         lambda m, c, t: v1.AMCPruner(m, c, _evaluate_amc, [(X[:16], Y[:16])], flops_ratio=0.5, channel_round=2,
                                      warmup=2, train_episode=3, bsize=4, hidden1=8, hidden2=8,
                                      n_calibration_batches=1, n_points_per_layer=2, output_dir=str(t), seed=0),
         [{"op_types": ["Conv2d", "Linear"]}], ALL_WEIGHTED, "flops", 0.5, run=run_amc,
         invalid=[{"sparsity": 0.5, "op_types": ["Conv2d"]}]),
    Case("v1-TransformerHead",
         lambda m, c, t: v1.TransformerHeadPruner(m, c, head_hidden_dim=HEAD_DIM,
                                                  attention_name_groups=TRANSFORMER_GROUP),
         [{"sparsity": 0.5, "op_names": ["q", "k", "v", "o"]}], ["q", "k", "v", "o"], "head", 0.5,
         model=Attention, invalid=[{"sparsity": 1.5, "op_types": ["Linear"]}]),
    # ---- v2 one-shot
    Case("v2-Level", lambda m, c, t: v2.LevelPruner(m, c), [{"sparsity": 0.6, "op_types": ["default"]}], ALL_WEIGHTED,
         "level", 0.6, api="v2", invalid=[{"sparsity": 1.5, "op_types": ["default"]}]),
    Case("v2-L1Norm", lambda m, c, t: v2.L1NormPruner(m, c), V2_NORM_CFG, CONVS + ["fc1"], "filter", 0.5, api="v2"),
    Case("v2-L2Norm", lambda m, c, t: v2.L2NormPruner(m, c), V2_NORM_CFG, CONVS + ["fc1"], "filter", 0.5, api="v2"),
    Case("v2-FPGM", lambda m, c, t: v2.FPGMPruner(m, c), V2_NORM_CFG, CONVS + ["fc1"], "filter", 0.5, api="v2"),
    Case("v2-Slim", lambda m, c, t: v2.SlimPruner(m, c, trainer_v2, sgd(m), CE, training_epochs=1, mode="normal"),
         [{"sparsity": 0.5, "op_types": ["BatchNorm2d"]}], ["bn1", "bn2"], "bn", 0.5, api="v2",
         invalid=[{"sparsity": 1.5, "op_types": ["BatchNorm2d"]}]),
    Case("v2-ActivationAPoZRank",
         lambda m, c, t: v2.ActivationAPoZRankPruner(m, c, trainer_v2, sgd(m), CE, training_batches=1),
         conv_cfg(), CONVS, "filter", 0.5, api="v2"),
    Case("v2-ActivationMeanRank",
         lambda m, c, t: v2.ActivationMeanRankPruner(m, c, trainer_v2, sgd(m), CE, training_batches=1),
         conv_cfg(), CONVS, "filter", 0.5, api="v2"),
    Case("v2-TaylorFOWeight", lambda m, c, t: v2.TaylorFOWeightPruner(m, c, trainer_v2, sgd(m), CE, training_batches=1),
         conv_cfg(), CONVS, "filter", 0.5, api="v2"),
    Case("v2-ADMM", lambda m, c, t: v2.ADMMPruner(m, c, trainer_v2, sgd(m), CE, iterations=1, training_epochs=1),
         conv_cfg(), CONVS, "level", 0.5, api="v2"),
    # ---- v2 iterative (pruning scheduler)
    Case("v2-Linear", lambda m, c, t: v2.LinearPruner(m, c, "l1", total_iteration=2, log_dir=str(t)),
         conv_cfg(), CONVS, "filter", 0.5, api="v2-scheduler"),
    Case("v2-AGP", lambda m, c, t: v2.AGPPruner(m, c, "level", total_iteration=2, log_dir=str(t)),
         conv_cfg(0.6), CONVS, "level", 0.6, api="v2-scheduler"),
    Case("v2-LotteryTicket", lambda m, c, t: v2.LotteryTicketPruner(m, c, "level", total_iteration=2, log_dir=str(t)),
         conv_cfg(0.6), CONVS, "level", 0.6, api="v2-scheduler"),
    Case("v2-SimulatedAnnealing",
         lambda m, c, t: v2.SimulatedAnnealingPruner(m, c, "level", evaluator=weight_score, cool_down_rate=0.5,
                                                     log_dir=str(t)),
         conv_cfg(0.5), CONVS, "overall", 0.5, api="v2-scheduler"),
]

# every pruner the two packages export is in the table (base classes and the scheduler excepted)
EXEMPT = {"IterativePruner", "OneshotPruner", "Pruner", "PruningScheduler"}


def test_every_exported_pruner_has_a_case():
    ids = {case.id for case in CASES}
    for prefix, package in (("v1", v1), ("v2", v2)):
        for name in package.__all__:
            if name.endswith("Pruner") and name not in EXEMPT:
                assert f"{prefix}-{name[:-len('Pruner')]}" in ids, f"{prefix} {name} has no contract case"


def _params(cases):
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in cases]


def _module(model, name):
    mod = model.get_submodule(name)
    return getattr(mod, "module", mod)


def _run(case, tmp_path):
    torch.manual_seed(0)
    model = case.model()
    original = {n: p.detach().clone() for n, p in model.state_dict().items()}
    pruner = case.build(model, case.config, tmp_path)
    if case.run is not None:
        model, masks = case.run(pruner, model)
    elif case.api == "v1":
        model = pruner.compress()
        masks = pruner.get_masks()
    elif case.api == "v2":
        model, masks = pruner.compress()
    else:
        pruner.compress()
        _, model, masks, _, _ = pruner.get_best_result()
    return pruner, model, masks, original


def _kept_rows(mask):
    rows = mask.reshape(mask.shape[0], -1)
    assert torch.all((rows == 0).all(1) | (rows == 1).all(1)), "a filter is only partly masked"
    return rows[:, 0]


def _check_filters(model, name, entry):
    """Whole filters masked, the bias mask equal to the filter mask, the pruned biases zero; returns kept."""
    kept = _kept_rows(entry["weight"])
    if entry.get("bias") is not None:
        assert torch.equal(entry["bias"], kept), f"{name}: bias mask differs from the filter mask"
        assert torch.all(_module(model, name).bias.detach()[kept == 0] == 0)
    return kept


@pytest.mark.parametrize("case", _params(CASES))
def test_pruner_contract(case, tmp_path):
    pruner, model, masks, original = _run(case, tmp_path)

    # masks for exactly the selected layers, 0/1, shaped like the weights
    assert set(masks) == set(case.selected)
    for name, entry in masks.items():
        module = _module(model, name)
        assert entry["weight"].shape == module.weight.shape
        assert set(entry["weight"].unique().tolist()) <= {0.0, 1.0}
        if entry.get("bias") is not None:
            assert entry["bias"].shape == module.bias.shape
            assert set(entry["bias"].unique().tolist()) <= {0.0, 1.0}
        # the weights themselves are zero under the mask
        assert torch.all(module.weight.detach()[entry["weight"] == 0] == 0)

    # the configured sparsity, with the masks the pruner promises
    s = case.sparsity
    if case.check == "level":
        for name, entry in masks.items():
            assert int((entry["weight"] == 0).sum()) == int(entry["weight"].numel() * s + 1e-6), name
    elif case.check in ("filter", "bn"):
        for name, entry in masks.items():
            kept = _check_filters(model, name, entry) if case.check == "filter" else entry["weight"]
            assert int((kept == 0).sum()) == int(kept.numel() * s), name
            if entry.get("bias") is not None:
                assert torch.equal(entry["bias"], kept), f"{name}: bias mask differs from the channel mask"
    elif case.check in ("overall", "overall_filter"):
        pruned = sum(int((masks[n]["weight"] == 0).sum()) for n in case.selected)
        total = sum(masks[n]["weight"].numel() for n in case.selected)
        if case.check == "overall":
            assert pruned / total == pytest.approx(s, abs=0.01)
        else:  # whole filters: at most one filter (of the largest layer) past the target, never short of it
            largest = max(masks[n]["weight"][0].numel() for n in case.selected)
            assert s - 1e-9 <= pruned / total < s + largest / total
            for n in case.selected:
                _check_filters(model, n, masks[n])
    elif case.check == "head":
        for name, entry in masks.items():
            weight = entry["weight"] if name != "o" else entry["weight"].t()
            kept = _kept_rows(weight).reshape(HEADS, HEAD_DIM)
            assert torch.all((kept == 0).all(1) | (kept == 1).all(1))
            assert int((kept[:, 0] == 0).sum()) == int(HEADS * s)
    elif case.check == "flops":
        kept = {name: int(_check_filters(model, name, entry).sum()) for name, entry in masks.items()}
        assert pruner.flops(kept) <= s * pruner.original_flops
        assert kept["fc2"] == 10  # the output layer is never pruned

    # the pruned model still runs
    inputs = X[:4] if case.model is net else torch.randn(4, 5, HIDDEN)
    model.eval()
    with torch.no_grad():
        out = model(inputs)
    assert out.shape == (4, 10 if case.model is net else 3) and torch.isfinite(out).all()

    if case.api == "v1" or (case.api == "v2" and hasattr(pruner, "export_model")):
        pruner.export_model(str(tmp_path / "model.pth"), str(tmp_path / "mask.pth"))
        state = torch.load(tmp_path / "model.pth")
        fresh = case.model()
        fresh.load_state_dict(state)  # the original keys: the exported model is unwrapped
        saved = torch.load(tmp_path / "mask.pth")
        assert set(saved) == set(masks)
        for name, entry in saved.items():
            assert torch.equal(entry["weight"], masks[name]["weight"])
            weight = fresh.get_submodule(name).weight
            assert torch.all(weight[entry["weight"] == 0] == 0)
            assert torch.equal(weight, _module(model, name).weight.detach())
        if case.api == "v1":
            pruner.load_model_state_dict(state)
            for name in masks:
                assert torch.equal(_module(model, name).weight.detach(), fresh.get_submodule(name).weight)


@pytest.mark.parametrize("case", _params(CASES))
def test_invalid_config_list_is_a_one_line_error(case, tmp_path):
    with pytest.raises(ValueError) as info:
        case.build(case.model(), case.invalid, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert case.invalid_key in message and "config_list" in message
