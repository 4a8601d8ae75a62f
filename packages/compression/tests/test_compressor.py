"""The compressor framework: config_list validation and selection, wrappers, masks through
optimizer steps, export / load round-trips."""
import pytest
import torch
from torch import nn

from nni.algorithms.compression.pytorch.pruning import L1FilterPruner, LevelPruner
from nni.compression.pytorch.compressor import LayerInfo, PrunerModuleWrapper
from nni.compression.pytorch.utils.config_validation import ConfigListError, validate_config_list


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 6, 3)
        self.fc1 = nn.Linear(6 * 6 * 6, 20)
        self.fc2 = nn.Linear(20, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TinyCNN()


def sparsity(t):
    return 1 - t.count_nonzero().item() / t.numel()


# -- config_list ---------------------------------------------------------------------------------
@pytest.mark.parametrize("config_list, fragment", [
    ({"sparsity": 0.5}, "config_list must be a list of dicts"),
    ([{"sparsity": 0.5}], "config_list[0] needs 'op_types' or 'op_names'"),
    ([{"sparsity": 1.0, "op_types": ["Conv2d"]}], "config_list[0]['sparsity'] must be in [0, 1)"),
    ([{"sparsity": -0.1, "op_types": ["Conv2d"]}], "config_list[0]['sparsity'] must be in [0, 1)"),
    ([{"sparsity": "half", "op_types": ["Conv2d"]}], "config_list[0]['sparsity'] must be a number"),
    ([{"op_types": ["Conv2d"]}], "config_list[0] needs 'sparsity'"),
    ([{"sparsity": 0.5, "op_types": "Conv2d"}], "config_list[0]['op_types'] must be a non-empty list of strings"),
    ([{"sparsity": 0.5, "op_types": ["Conv2d"]}, {"exclude": "yes", "op_names": ["fc1"]}],
     "config_list[1]['exclude'] must be True or False"),
    ([{"sparsity": 0.5, "op_types": ["Conv2d"], "sparcity": 0.1}], "config_list[0] has unknown key 'sparcity'"),
    ([{"sparsity": 0.5, "sparsity_per_layer": 0.5, "op_types": ["Conv2d"]}], "both 'sparsity' and 'sparsity_per_layer'"),
])
def test_config_list_errors_are_one_line(model, config_list, fragment):
    with pytest.raises(ValueError) as info:
        validate_config_list(model, config_list)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_config_list_canonical_form(model):
    original = [{"sparsity": 0.5, "op_types": ["default"]}, {"exclude": True, "op_names": ["fc2"]}]
    canonical = validate_config_list(model, original)
    assert canonical[0]["op_types"][:3] == ["Conv1d", "Conv2d", "Conv3d"] and "Linear" in canonical[0]["op_types"]
    assert canonical[1] == {"exclude": True, "op_names": ["fc2"]}
    assert original[0]["op_types"] == ["default"]  # the caller's list is not modified
    quant = validate_config_list(model, [{"quant_types": ["weight"], "quant_bits": {"weight": 8}, "op_types": ["Conv2d"]}],
                                 pruner=False)
    assert quant[0]["quant_bits"] == {"weight": 8}
    with pytest.raises(ConfigListError, match=r"config_list\[0\]\['quant_bits'\] has key 'output'"):
        validate_config_list(model, [{"quant_types": ["weight"], "quant_bits": {"output": 8}, "op_types": ["Conv2d"]}],
                             pruner=False)


def test_pruner_rejects_unsupported_layers_in_one_line(model):
    with pytest.raises(ValueError, match=r"config_list\[0\]\['op_types'\]: L1FilterPruner prunes only \['Conv2d'\]"):
        L1FilterPruner(model, [{"sparsity": 0.5, "op_types": ["Linear"]}])
    with pytest.raises(ValueError, match=r"layer 'fc1' \(Linear\) but L1FilterPruner prunes only"):
        L1FilterPruner(model, [{"sparsity": 0.5, "op_names": ["fc1"]}])
    with pytest.raises(ValueError, match=r"config_list\[0\] has key 'total_sparsity' that LevelPruner does not use"):
        LevelPruner(model, [{"total_sparsity": 0.5, "op_types": ["Conv2d"]}])


def test_last_matching_entry_wins_and_exclude(model):
    config_list = [
        {"sparsity": 0.8, "op_types": ["default"]},
        {"sparsity": 0.6, "op_names": ["conv2", "fc1"]},
        {"exclude": True, "op_names": ["fc2"]},
        {"exclude": False, "sparsity": 0.25, "op_names": ["conv1"]},
    ]
    pruner = LevelPruner(model, config_list)
    configs = {layer.name: config["sparsity"] for layer, config in pruner.get_modules_to_compress()}
    assert configs == {"conv1": 0.25, "conv2": 0.6, "fc1": 0.6}
    assert pruner.select_config(LayerInfo("bn1", model.bn1)) is None  # BatchNorm is not a 'default' type
    pruner.compress()
    for name, target in configs.items():
        weight = dict(model.named_modules())[name].module.weight
        assert sparsity(weight) == pytest.approx(int(weight.numel() * target) / weight.numel())
    assert sparsity(model.fc2.weight) == 0


def test_wrappers_keep_names_and_masks_are_buffers(model):
    pruner = LevelPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}])
    assert isinstance(model.conv1, PrunerModuleWrapper) and model.conv1.name == "conv1"
    assert [w.name for w in pruner.get_modules_wrapper()] == ["conv1", "conv2"]
    keys = model.state_dict().keys()
    assert {"conv1.module.weight", "conv1.weight_mask", "conv1.bias_mask"} <= set(keys)
    pruner.set_wrappers_attribute("flag", torch.zeros(2))
    assert "conv1.flag" in model.state_dict()


def test_masks_survive_optimizer_step(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
    pruner = L1FilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}])
    pruner.optimizer = optimizer
    pruner.patch_optimizer(pruner._apply_all_masks)
    pruner.compress()
    x, y = torch.randn(8, 1, 10, 10), torch.randint(0, 10, (8,))
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        # right after the step, before any forward, the pruned filters are still zero
        for wrapper in pruner.get_modules_wrapper():
            assert torch.equal(wrapper.module.weight * (1 - wrapper.weight_mask), torch.zeros_like(wrapper.weight_mask))
            assert sparsity(wrapper.module.bias) >= 0.5


def test_optimizer_given_to_pruner_is_hooked(model):
    from nni.algorithms.compression.pytorch.pruning import TaylorFOWeightFilterPruner

    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    x, y = torch.randn(8, 1, 10, 10), torch.randint(0, 10, (8,))

    def trainer(m, opt, criterion, epoch):
        opt.zero_grad()
        criterion(m(x), y).backward()
        opt.step()

    pruner = TaylorFOWeightFilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}], optimizer, trainer,
                                        nn.CrossEntropyLoss())
    pruner.compress()
    for _ in range(2):
        trainer(model, optimizer, nn.functional.cross_entropy, 0)
    assert sparsity(model.conv1.module.weight) == 0.5


def test_export_and_load_round_trip(model, tmp_path):
    reference = TinyCNN()
    reference.load_state_dict(model.state_dict())
    pruner = L1FilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}])
    pruner.compress()
    x = torch.randn(4, 1, 10, 10)
    expected = model(x)
    pruner.export_model(str(tmp_path / "model.pth"), str(tmp_path / "mask.pth"))
    assert isinstance(model.conv1, PrunerModuleWrapper)  # still wrapped after export

    state = torch.load(tmp_path / "model.pth")
    assert set(state) == set(reference.state_dict())
    reference.load_state_dict(state)
    assert torch.allclose(reference(x), expected, atol=1e-6)
    masks = torch.load(tmp_path / "mask.pth")
    assert set(masks) == {"conv1", "conv2"}
    assert masks["conv1"]["weight"].shape == model.conv1.module.weight.shape
    assert masks["conv1"]["bias"].shape == (8,)
    assert torch.equal(masks["conv2"]["weight"], pruner.mask_dict["conv2"])
    assert torch.equal((state["conv1.weight"] != 0).any(dim=(1, 2, 3)).float(), masks["conv1"]["bias"])

    # load_model_state_dict takes an unwrapped state dict into the wrapped model
    fresh = TinyCNN()
    pruner.load_model_state_dict(fresh.state_dict())
    assert torch.equal(model.conv1.module.weight, fresh.conv1.weight)
    assert isinstance(model.conv1, PrunerModuleWrapper)


def test_masks_without_bias():
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 2))
    pruner = LevelPruner(model, [{"sparsity": 0.5, "op_types": ["Linear"]}])
    pruner.compress()
    masks = pruner.get_masks()
    assert "bias" not in masks["0"] and "bias" in masks["2"]
    assert sparsity(masks["0"]["weight"]) == 0.5


def test_export_onnx(model, tmp_path):
    import importlib.util

    pruner = LevelPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}])
    pruner.compress()
    with pytest.raises(ValueError, match="onnx_path needs dummy_input"):
        pruner.export_model(str(tmp_path / "m.pth"), onnx_path=str(tmp_path / "m.onnx"))
    if importlib.util.find_spec("onnx") is None:
        with pytest.raises(RuntimeError, match=r"^export_model: ONNX export needs the '\w+' package"):
            pruner.export_model(str(tmp_path / "m.pth"), onnx_path=str(tmp_path / "m.onnx"),
                                dummy_input=torch.randn(1, 1, 10, 10))
    else:
        pruner.export_model(str(tmp_path / "m.pth"), onnx_path=str(tmp_path / "m.onnx"), input_shape=[1, 1, 10, 10])
        assert (tmp_path / "m.onnx").stat().st_size > 0
    assert isinstance(model.conv1, PrunerModuleWrapper)


def test_custom_pruner_as_in_the_docs(model):
    """The docs' customisation pattern: a masker plus calc_mask guarded by ``if_calculated``."""
    from nni.algorithms.compression.pytorch.pruning import WeightMasker
    from nni.compression.pytorch.compressor import Pruner

    class HalfMasker(WeightMasker):
        def calc_mask(self, sparsity, wrapper, wrapper_idx=None):
            mask = torch.ones_like(wrapper.module.weight)
            mask.view(-1)[: int(mask.numel() * sparsity)] = 0
            return {"weight_mask": mask}

    class MyPruner(Pruner):
        def __init__(self, model, config_list):
            super().__init__(model, config_list)
            self.set_wrappers_attribute("if_calculated", False)
            self.masker = HalfMasker(model, self)
            self.calls = 0

        def calc_mask(self, wrapper, wrapper_idx=None):
            self.calls += 1
            if wrapper.if_calculated:
                return None
            wrapper.if_calculated = True
            return self.masker.calc_mask(wrapper.config["sparsity"], wrapper, wrapper_idx)

    pruner = MyPruner(model, [{"sparsity": 0.25, "op_names": ["fc1"]}])
    pruner.compress()
    pruner.update_mask()  # already calculated: masks unchanged
    assert pruner.calls == 2
    assert sparsity(model.fc1.module.weight) == pytest.approx(0.25, abs=0.01)
    assert pruner.get_pruned_weights(dim=0) == {"fc1": pytest.approx(0.25)}


def test_activation_collector_add_and_remove(model):
    pruner = LevelPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}])
    seen = []
    collector_id = pruner.add_activation_collector(lambda wrapper, inputs, output: seen.append((wrapper.name, output.shape[1])))
    model(torch.randn(2, 1, 10, 10))
    assert seen == [("conv1", 8), ("conv2", 6)]
    pruner.remove_activation_collector(collector_id)
    model(torch.randn(2, 1, 10, 10))
    assert len(seen) == 2


def test_reset_rewraps_with_fresh_masks(model):
    checkpoint = {k: v.clone() for k, v in model.state_dict().items()}
    pruner = L1FilterPruner(model, [{"sparsity": 0.5, "op_types": ["Conv2d"]}])
    pruner.compress()
    assert sparsity(model.conv1.module.weight) == 0.5
    pruner.reset(checkpoint)
    assert isinstance(model.conv1, PrunerModuleWrapper) and torch.all(model.conv1.weight_mask == 1)
    assert torch.equal(model.conv1.module.weight, checkpoint["conv1.weight"])
    pruner.compress()
    assert sparsity(model.conv1.weight_mask) == 0.5
