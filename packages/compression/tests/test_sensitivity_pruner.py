"""SensitivityPruner prunes round by round, the insensitive layers more, to the configured sparsity."""
import pytest
import torch

from nni.algorithms.compression.pytorch.pruning import SensitivityPruner
from nni.compression.pytorch.utils.sensitivity_analysis import SensitivityAnalysis
from nni.retiarii.models import DigitsCNN, digits_cnn


def tiny_cnn() -> DigitsCNN:
    """conv1(1->8): 8 filters of 9 weights -> conv2(8->16): 16 filters of 72 weights -> fc(256->4) (zoo digits CNN)."""
    return digits_cnn(4, widths=(8, 16), hidden=None, padding=0, pool=False)


TOTAL = 8 * 9 + 16 * 72


@pytest.fixture
def model():
    torch.manual_seed(0)
    return tiny_cnn()


def zero_share(model, layer):
    """Share of the layer's filters that are zero, seen through pruner wrappers."""
    mod = dict(model.named_modules())[layer]
    w = getattr(mod, "module", mod).weight.detach()
    return float((w.reshape(w.size(0), -1).abs().sum(1) == 0).float().mean())


def evaluator(model):
    # conv1 is very sensitive, conv2 hardly at all
    return 1.0 - 1.0 * zero_share(model, "conv1") - 0.05 * zero_share(model, "conv2")


def test_reaches_the_configured_sparsity_pruning_the_insensitive_layer_more(model, tmp_path):
    finetuned = []
    pruner = SensitivityPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], evaluator,
                               finetuner=lambda m: finetuned.append(pruner.current_sparsity()),
                               sparsity_per_iter=0.2, checkpoint_dir=str(tmp_path / "ckpt"))
    assert pruner.compress(eval_args=[model], finetune_args=[model]) is model
    sparsity = pruner.current_sparsity()
    assert 0.5 <= sparsity < 0.5 + 72 / TOTAL          # at most one conv2 filter past the target
    # rounds of ~0.2 of the weights each: 0.2, 0.4, 0.5, each followed by fine-tuning
    assert len(finetuned) == 3
    assert finetuned[0] == pytest.approx(0.2, abs=72 / TOTAL) and finetuned[-1] == sparsity
    masks = pruner.get_masks()
    assert zero_share(model, "conv1") == 0 and zero_share(model, "conv2") > 0.5
    for entry in masks.values():  # filter masks: whole filters and their biases
        w = entry["weight"].reshape(entry["weight"].size(0), -1)
        assert ((w.sum(1) == 0) | (w.sum(1) == w.size(1))).all()
        assert torch.equal(entry["bias"], (w.sum(1) > 0).float())
    for k in range(3):
        for suffix in ("_model.pth", "_masks.pth", "_sensitivity.csv"):
            assert (tmp_path / "ckpt" / f"iter{k}{suffix}").is_file()
    assert SensitivityPruner.load_sensitivity(str(tmp_path / "ckpt" / "iter0_sensitivity.csv"))["conv1"][0.1] == 1.0


def test_normalize_splits_by_proportion_in_whole_filters(model):
    pruner = SensitivityPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], evaluator)
    # want 0.1 * 1224 = 122.4 weights: proportion 0.1 vs 0.9 of the unpruned weights gives conv1
    # 0.84 weights (0 filters) and conv2 121.6 (1.69 filters), rounded up to 2 conv2 filters
    assert pruner.normalize({"conv1": 0.1, "conv2": 0.9}, 0.1) == {"conv1": 0.0, "conv2": 2 / 16}
    # a layer with proportion 0 only takes what the others cannot: conv1 keeps one filter
    ratios = pruner.normalize({"conv1": 1.0}, 0.1)
    assert ratios["conv1"] == 7 / 8 and ratios["conv2"] == 1 / 16  # 63 + 72 >= 122.4
    with pytest.raises(ValueError, match="'fc', which is not a layer this pruner prunes"):
        pruner.normalize({"fc": 0.5}, 0.1)


def test_custom_proportion_and_resume_from_csv(model, tmp_path):
    analyzer = SensitivityAnalysis(model, evaluator, sparsities=[0.5])
    analyzer.analysis(val_args=[model])
    analyzer.export(str(tmp_path / "sens.csv"))
    seen = []

    def proportion(sensitivity):
        seen.append(sensitivity)
        return {"conv1": 1.0, "conv2": 0.0}

    pruner = SensitivityPruner(model, [{"sparsity": 0.05, "op_types": ["Conv2d"]}], evaluator,
                               sparsity_proportion_calc=proportion, sparsity_per_iter=0.5)
    pruner.compress(eval_args=[model], resume_sensitivity=str(tmp_path / "sens.csv"))
    assert seen == [{"conv1": {0.5: 0.5}, "conv2": {0.5: 0.975}}]
    # 0.05 * 1224 = 61.2 weights -> 7 of conv1's filters (63 weights), conv2 untouched
    assert zero_share(model, "conv1") == 7 / 8 and zero_share(model, "conv2") == 0


def test_level_base_algo_and_helpers(model):
    pruner = SensitivityPruner(model, [{"sparsity": 0.3, "op_types": ["Linear"]}], lambda m: 1.0,
                               base_algo="level", sparsity_per_iteration=0.3)
    assert pruner.create_cfg({"fc": 0.2}) == [{"sparsity": 0.2, "op_names": ["fc"], "op_types": ["Linear"]}]
    pruner.compress(eval_args=[model])
    # 0.3 * 1024 = 307.2 weights, rounded up to 308
    assert int(model.fc.module.weight.eq(0).sum()) == 308
    assert pruner.current_sparsity() == pytest.approx(308 / 1024)


@pytest.mark.parametrize("kwargs,match", [
    ({"base_algo": "slim"}, "base_algo must be one of"),
    ({"sparsity_per_iter": 0}, r"sparsity_per_iter must be a number in \(0.0, 1.0\]"),
    ({"acc_drop_threshold": -1}, "acc_drop_threshold must be a number"),
    ({"finetuner": 3}, "finetuner must be a function or None"),
])
def test_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SensitivityPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], evaluator, **kwargs)


def test_bad_config_and_csv(model, tmp_path):
    with pytest.raises(ValueError, match=r"config_list\[0\]\['op_types'\]: SensitivityPruner prunes only"):
        SensitivityPruner(model, [{"sparsity": 0.5, "op_types": ["Linear"]}], evaluator)
    bad = tmp_path / "bad.csv"
    bad.write_text("layer,0.1\nconv1,0.5\n")
    with pytest.raises(ValueError, match="does not start with the header"):
        SensitivityPruner.load_sensitivity(str(bad))
