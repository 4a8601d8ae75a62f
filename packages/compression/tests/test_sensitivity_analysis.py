"""SensitivityAnalysis prunes one layer at a time with the v1 pruners' masks and restores it."""
import csv

import pytest
import torch
from torch import nn

from nni.compression.pytorch.utils.sensitivity_analysis import SensitivityAnalysis
from nni.retiarii.models import DigitsCNN, digits_cnn


def tiny_cnn() -> DigitsCNN:
    """conv1(1->10) -> conv2(10->8) -> fc(128->4), 8x8 inputs (the model zoo's digits CNN)."""
    return digits_cnn(4, widths=(10, 8), hidden=None, padding=0, pool=False)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return tiny_cnn()


def conv_weights(model):
    """Conv weights by layer name, seen through pruner wrappers (``conv1.module`` -> ``conv1``)."""
    return {name.replace(".module", ""): m.weight.detach().clone()
            for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def l1_total(model):
    return sum(float(w.abs().sum()) for w in conv_weights(model).values())


def test_l1_metrics_match_an_independent_computation(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    analyzer = SensitivityAnalysis(model, val_func=l1_total, sparsities=[0.25, 0.5, 0.75])
    result = analyzer.analysis(val_args=[model])
    assert list(result) == ["conv1", "conv2"]  # conv layers only, in model order
    total = l1_total(model)
    for name, row in result.items():
        w = conv_weights(model)[name]
        norms = torch.sort(w.reshape(w.size(0), -1).abs().sum(1)).values
        for s, metric in row.items():
            expected = total - float(norms[:int(w.size(0) * s)].sum())
            assert metric == pytest.approx(expected, rel=1e-5)
    # every layer gets its weights back and the model is not left wrapped
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [n for n, _ in model.named_children()] == ["conv1", "relu1", "conv2", "relu2", "fc"]


def test_default_sparsities_and_specified_layers(model):
    analyzer = SensitivityAnalysis(model, val_func=l1_total)
    assert analyzer.sparsities == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    result = analyzer.analysis(val_args=[model], specified_layers=["conv2"])
    assert list(result) == ["conv2"] and len(result["conv2"]) == 9


@pytest.mark.parametrize("mode,value,expected_len", [
    ("dropped", 0.3, None), ("minimize", None, None), ("maximize", None, 1), ("raised", 0.01, None),
])
def test_early_stop_modes(model, mode, value, expected_len):
    def pruned_share(model):  # share of conv1 filters that are zero: rises with sparsity
        w = conv_weights(model)["conv1"]
        return float((w.reshape(10, -1).abs().sum(1) == 0).float().mean())

    if mode == "minimize":  # metric falls with sparsity here
        val, value = (lambda m: 1 - pruned_share(m)), 0.65
    else:
        val = pruned_share if mode != "dropped" else (lambda m: 1 - pruned_share(m))
        value = 0.05 if mode == "maximize" else value
    analyzer = SensitivityAnalysis(model, val, sparsities=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                                   early_stop_mode=mode, early_stop_value=value)
    row = analyzer.analysis(val_args=[model], specified_layers=["conv1"])["conv1"]
    # shares at the tried sparsities: 0.1 .. 0.6 of 10 filters
    shares = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    if mode == "dropped":  # stops once 1 - share dropped by >= 0.3 from 1
        assert list(row) == [0.1, 0.2, 0.3]
    elif mode == "minimize":  # stops once 1 - share < 0.65
        assert list(row) == [0.1, 0.2, 0.3, 0.4]
    elif mode == "maximize":  # the first metric 0.1 > 0.05 already stops
        assert len(row) == expected_len
    else:  # raised by >= 0.01 at once
        assert list(row) == [0.1]
    assert all(row[s] == pytest.approx(v if mode in ("maximize", "raised") else 1 - v)
               for s, v in zip(row, shares))


def test_export_layout(model, tmp_path):
    analyzer = SensitivityAnalysis(model, val_func=l1_total, sparsities=[0.25, 0.5, 0.75],
                                   early_stop_mode="maximize", early_stop_value=-1)
    analyzer.analysis(val_args=[model], specified_layers=["conv1"])
    analyzer.early_stop_mode = None
    analyzer.analysis(val_args=[model], specified_layers=["conv2"])
    path = tmp_path / "sens.csv"
    analyzer.export(str(path))
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["layername", "0.25", "0.5", "0.75"]
    assert rows[1][0] == "conv1" and len(rows[1]) == 2  # early-stopped: shorter row
    assert rows[2][0] == "conv2" and len(rows[2]) == 4
    assert float(rows[2][3]) == pytest.approx(analyzer.sensitivities["conv2"][0.75])


@pytest.mark.parametrize("prune_type", ["fpgm", "l2"])
def test_already_pruned_filters_stay_pruned(model, prune_type):
    with torch.no_grad():
        model.conv1.weight[[1, 4, 7, 8, 9]] = 0  # half of conv1 pruned by an earlier round
    seen = []

    def val(m):
        w = conv_weights(m)["conv1"].reshape(10, -1)
        zero = (w.abs().sum(1) == 0)
        seen.append(zero.clone())
        return float(zero.sum())

    analyzer = SensitivityAnalysis(model, val, sparsities=[0.2, 0.6], prune_type=prune_type)
    analyzer.update_already_pruned("conv1", 0.5)
    row = analyzer.analysis(val_args=[model], specified_layers=["conv1"])["conv1"]
    # a try at s prunes 0.5 + s * 0.5 in total: int(10 * 0.6) = 6, int(10 * 0.8) = 8 filters
    assert row == {0.2: 6.0, 0.6: 8.0}
    assert all(z[[1, 4, 7, 8, 9]].all() for z in seen[1:])
    assert int((model.conv1.weight.detach().reshape(10, -1).abs().sum(1) == 0).sum()) == 5  # restored


def test_level_prunes_single_weights_of_a_linear_layer(model):
    def zeros(m):
        return float((m.fc.module.weight if hasattr(m.fc, "module") else m.fc.weight).eq(0).sum())

    analyzer = SensitivityAnalysis(model, zeros, sparsities=[0.5], prune_type="level")
    assert analyzer.analysis(val_args=[model], specified_layers=["fc"]) == {"fc": {0.5: 256.0}}


def test_load_state_dict_updates_the_model(model):
    analyzer = SensitivityAnalysis(model, l1_total, sparsities=[0.5])
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    analyzer.load_state_dict(state)
    assert float(model.conv1.weight.detach().abs().sum()) == 0


@pytest.mark.parametrize("kwargs,match", [
    ({"prune_type": "l3"}, "prune_type must be one of"),
    ({"early_stop_mode": "lower"}, "early_stop_mode must be None or one of"),
    ({"early_stop_mode": "dropped"}, "needs a number early_stop_value"),
    ({"sparsities": [0.5, 1.0]}, r"sparsities\[1\] must be a number in \(0, 1\)"),
])
def test_bad_arguments_are_one_line_errors(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SensitivityAnalysis(model, l1_total, **kwargs)


def test_bad_specified_layer(model):
    analyzer = SensitivityAnalysis(model, l1_total)
    with pytest.raises(ValueError, match=r"specified_layers\[0\] = 'fc' is a Linear; prune_type 'l1'"):
        analyzer.analysis(val_args=[model], specified_layers=["fc"])
    with pytest.raises(ValueError, match=r"specified_layers\[1\] = 'nope' names no layer"):
        analyzer.analysis(val_args=[model], specified_layers=["conv1", "nope"])
