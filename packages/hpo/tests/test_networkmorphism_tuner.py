"""NetworkMorphism: graph JSON in the docs' format, morphs that keep the model trainable, the
Bayesian search over architectures, classArgs errors, and the core contract suite (with the
parameter check replaced by "is a network graph": this tuner's configuration is a graph JSON,
not a sample of the search space)."""
from __future__ import annotations

import json
import random

import pytest

from nni.algorithms.hpo.networkmorphism_tuner import (
    Graph, NetworkMorphismTuner, graph_to_json, graph_to_torch_model, json_to_graph)
from nni.algorithms.hpo.networkmorphism_tuner.bayesian import EditDistanceGP, edit_distance
from nni.algorithms.hpo.networkmorphism_tuner.nn import CnnGenerator
from nni.testing import TunerContract
from nni.utils import check_class_args

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Outside an experiment the tuner writes its models to ./model_path."""
    monkeypatch.chdir(tmp_path)

# the docs' example (L1558-1645), abridged to the keys json_to_graph needs plus node_list
DOCS_LAYERS = [
    [0, ["StubReLU", 0, 1]], [1, ["StubConv2d", 1, 2, 3, 64, 3]], [2, ["StubBatchNormalization2d", 2, 3, 64]],
    [3, ["StubPooling2d", 3, 4, 2, 2, 0]], [4, ["StubReLU", 4, 5]], [5, ["StubConv2d", 5, 6, 64, 64, 3]],
    [6, ["StubBatchNormalization2d", 6, 7, 64]], [7, ["StubPooling2d", 7, 8, 2, 2, 0]], [8, ["StubReLU", 8, 9]],
    [9, ["StubConv2d", 9, 10, 64, 64, 3]], [10, ["StubBatchNormalization2d", 10, 11, 64]],
    [11, ["StubPooling2d", 11, 12, 2, 2, 0]], [12, ["StubGlobalPooling2d", 12, 13]],
    [13, ["StubDropout2d", 13, 14, 0.25]], [14, ["StubDense", 14, 15, 64, 64]], [15, ["StubReLU", 15, 16]],
    [16, ["StubDense", 16, 17, 64, 10]]]
DOCS_NODES = [[0, [32, 32, 3]], [1, [32, 32, 3]], [2, [32, 32, 64]], [3, [32, 32, 64]], [4, [16, 16, 64]],
              [5, [16, 16, 64]], [6, [16, 16, 64]], [7, [16, 16, 64]], [8, [8, 8, 64]], [9, [8, 8, 64]],
              [10, [8, 8, 64]], [11, [8, 8, 64]], [12, [4, 4, 64]], [13, [64]], [14, [64]], [15, [64]],
              [16, [64]], [17, [10]]]


def _small() -> Graph:
    return CnnGenerator(10, (8, 8, 1)).generate(3, 8)


def _train_step(graph: Graph, channels: int = 1, width: int = 8) -> tuple:
    model = graph_to_torch_model(json.dumps(graph_to_json(graph)))
    x = torch.randn(6, channels, width, width)
    out = model(x)
    loss = torch.nn.functional.cross_entropy(out, torch.randint(0, 10, (6,)))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    torch.optim.SGD(model.parameters(), lr=0.01).step()
    return tuple(out.shape)


def test_initial_network_is_the_docs_example():
    data = graph_to_json(CnnGenerator(10, (32, 32, 3)).generate(3, 64))
    assert data["node_list"] == DOCS_NODES
    # the docs omit the conv's stride and padding (1 and "same"); this writes them out
    assert [[i, spec[:6] if spec[0] == "StubConv2d" else spec] for i, spec in data["layer_list"]] == DOCS_LAYERS
    assert data["adj_list"]["0"] == [[1, 0]] and data["reverse_adj_list"]["17"] == [[16, 16]]
    assert data["layer_id_to_input_node_ids"]["5"] == [5] and data["layer_id_to_output_node_ids"]["5"] == [6]
    assert data["weighted"] is False and data["operation_history"] == []


def test_docs_json_builds_a_cifar_model():
    text = json.dumps({"input_shape": [32, 32, 3], "weighted": False, "operation_history": [],
                       "node_list": DOCS_NODES, "layer_list": DOCS_LAYERS})
    graph = json_to_graph(text)
    assert graph.node_list == [shape for _, shape in DOCS_NODES]
    out = graph.produce_torch_model()(torch.randn(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 10)


def test_json_round_trip_after_morphs():
    rng = random.Random(3)
    graph = _small()
    for _ in range(6):
        graph = graph.random_morph(rng)
    data = graph_to_json(graph)
    again = json_to_graph(json.dumps(data))
    assert graph_to_json(again) == data
    assert again.signature() == graph.signature()
    assert len(data["operation_history"]) == 6


@pytest.mark.parametrize("morph", ["deeper_conv", "deeper_dense", "wider_conv", "wider_dense", "skip_add", "skip_concat"])
def test_each_morph_keeps_the_model_trainable_with_the_same_output_shape(morph):
    graph = _small()
    before = _train_step(graph)
    blocks = graph._spatial_nodes()
    n_layers = len(graph.layer_list)
    if morph == "deeper_conv":
        graph.to_deeper_graph(blocks[1], 5)
    elif morph == "deeper_dense":
        graph.to_deeper_graph(graph.layer_list[-3].output)  # the hidden dense layer's output
    elif morph == "wider_conv":
        conv = next(i for i, lay in enumerate(graph.layer_list) if lay.kind == "StubConv")
        graph.to_wider_graph(conv, 4)
        assert graph.node_list[graph.layer_list[conv].output][-1] == 12
        assert graph.layer_list[conv + 1].args["num_features"] == 12  # its batch-norm follows
    elif morph == "wider_dense":
        graph.to_wider_graph(len(graph.layer_list) - 3, 5)
        assert graph.layer_list[-1].args["input_units"] == 13
    else:
        graph.to_skip_graph(blocks[0], blocks[2], "add" if morph == "skip_add" else "concat")
        kinds = [lay.kind for lay in graph.layer_list]
        assert ("StubAdd" if morph == "skip_add" else "StubConcatenate") in kinds
    assert len(graph.layer_list) > n_layers or morph.startswith("wider")
    assert _train_step(graph) == before == (6, 10)


def test_random_morph_chains_stay_trainable():
    rng = random.Random(0)
    graph = CnnGenerator(10, (8, 8, 3)).generate(2, 8)
    for _ in range(8):
        graph = graph.random_morph(rng)
        assert _train_step(graph, channels=3) == (6, 10)


def test_wider_conv_feeding_an_add_is_refused_and_leaves_the_graph_intact():
    graph = _small()
    blocks = graph._spatial_nodes()
    graph.to_skip_graph(blocks[0], blocks[1], "add")
    # the conv of the block the skip connection adds to (widening one before it would be fine)
    conv = next(i for i, lay in enumerate(graph.layer_list) if lay.kind == "StubConv" and lay.output == blocks[1] - 1)
    before = graph_to_json(graph)
    with pytest.raises(ValueError, match="add of tensors"):
        graph.to_wider_graph(conv, 4)
    assert graph_to_json(graph) == before


def test_bad_graph_json_is_one_line_error():
    with pytest.raises(ValueError, match="unknown layer type 'StubFoo'"):
        json_to_graph({"input_shape": [8, 8, 1], "layer_list": [[0, ["StubFoo", 0, 1]]]})
    with pytest.raises(ValueError, match="'input_shape' and 'layer_list'"):
        json_to_graph({"x": 1})


def test_edit_distance_and_gp():
    a = _small()
    b = a.copy()
    b.to_wider_graph(1, 8)
    c = b.copy()
    c.to_deeper_graph(c._spatial_nodes()[0])
    assert edit_distance(a, a) == 0
    assert 0 < edit_distance(a, b) < edit_distance(a, c)
    gp = EditDistanceGP()
    gp.fit([a, c], [1.0, 0.0])
    mean_b, std_b = gp.predict(b)
    mean_a, std_a = gp.predict(a)
    assert std_a < std_b  # a was observed
    assert mean_a > gp.predict(c)[0]


def _tuner(**kw) -> NetworkMorphismTuner:
    return NetworkMorphismTuner(input_width=8, input_channel=1, default_model_width=8, seed=0, **kw)


def test_tuner_sends_initial_then_unique_children_and_tracks_the_best(tmp_path):
    tuner = _tuner(path=str(tmp_path / "models"), optimize_mode="minimize")
    tuner.update_search_space({})
    seen = set()
    for pid in range(8):
        params = tuner.generate_parameters(pid)
        graph = json_to_graph(params)
        seen.add(graph.signature())
        if pid == 0:
            assert params["operation_history"] == []
        else:
            assert params["operation_history"], "a child must be a morph of an evaluated network"
        tuner.receive_trial_result(pid, params, {"default": 10.0 - pid if pid != 3 else 0.5})
    assert len(seen) == 8
    assert tuner.get_best_model_id() == 3 and tuner.get_metric_value_by_id(3) == 0.5
    assert (tmp_path / "models" / "best_model.txt").read_text().strip() == "best model: 3"
    assert json_to_graph((tmp_path / "models" / "3.json").read_text()).signature() == tuner.load_best_model().signature()


def test_tuner_prefers_children_of_the_best_network():
    tuner = _tuner(optimize_mode="maximize")
    tuner.update_search_space({})
    p0 = tuner.generate_parameters(0)
    tuner.receive_trial_result(0, p0, 0.1)
    p1 = tuner.generate_parameters(1)
    tuner.receive_trial_result(1, p1, 0.9)
    fathers = [tuner.generate()[0] for _ in range(5)]
    assert fathers.count(1) >= 3, fathers


def test_import_data_and_customized_trials():
    tuner = _tuner()
    tuner.update_search_space({})
    graph = _small().random_morph(random.Random(1))
    tuner.import_data([{"parameter": graph_to_json(graph), "value": 0.7}, {"parameter": {"x": 1}, "value": 0.2}])
    assert [h["metric_value"] for h in tuner.history] == [0.7]
    tuner.receive_trial_result("custom", json.loads(json.dumps(graph_to_json(_small()))), 0.3)
    assert len(tuner.history) == 2
    tuner.receive_trial_result("bad", {"lr": 0.1}, 0.3)  # not a graph: ignored
    assert len(tuner.history) == 2
    sent = [json_to_graph(tuner.generate_parameters(i)).signature() for i in range(3)]
    assert graph.signature() not in sent and _small().signature() not in sent


@pytest.mark.parametrize("args, message", [
    ({"task": "nlp"}, r"classArgs\.task.*'cv'"),
    ({"input_width": 0}, r"classArgs\.input_width.*int in \[1"),
    ({"n_output_node": "10"}, r"classArgs\.n_output_node"),
    ({"optimize_mode": "max"}, r"classArgs\.optimize_mode.*'maximize', 'minimize'"),
    ({"input_hight": 3}, r"classArgs\.input_hight is not a known argument"),
])
def test_class_args_errors(args, message):
    with pytest.raises(ValueError, match=message) as info:
        check_class_args(NetworkMorphismTuner.class_args_validator, args)
    assert "\n" not in str(info.value)
    check_class_args(NetworkMorphismTuner.class_args_validator,
                     {"optimize_mode": "minimize", "task": "cv", "input_width": 8, "input_channel": 1, "n_output_node": 3})


def test_search_space_is_checked_but_not_used():
    tuner = _tuner()
    with pytest.raises(ValueError, match="'x'"):
        tuner.update_search_space({"x": {"_type": "no_such_type", "_value": [1]}})
    tuner.update_search_space({"lr": {"_type": "uniform", "_value": [0.1, 0.2]}})
    assert set(tuner.generate_parameters(0)) >= {"input_shape", "layer_list", "node_list"}


def _is_network(space, params):
    graph = json_to_graph(params)
    assert graph.node_list[graph.output_node()] == [10]


class TestNetworkMorphismContract(TunerContract):
    # the search space is only validated; every test's parameters are checked to be a network
    supported_types = TunerContract.ALL_TYPES
    supports_nested_choice = True
    numeric_choice_only = True  # skips the tests that read search-space values from the parameters
    n_trials = 6

    @pytest.fixture(autouse=True)
    def _graph_check(self, monkeypatch):
        monkeypatch.setattr("nni.testing.contracts.check_parameters", _is_network)

    def make_tuner(self):
        return NetworkMorphismTuner(input_width=8, input_channel=1, default_model_width=4, default_model_len=2,
                                    seed=0, t_min=0.5)

    @pytest.mark.parametrize("type_name", ["uniform"])
    def test_degenerate_range_gives_its_value(self, type_name):
        pytest.skip("parameters are a network graph, not search-space values")


def test_tuner_imports_without_torch_and_building_gives_an_install_hint():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "from nni.algorithms.hpo.networkmorphism_tuner import NetworkMorphismTuner, graph_to_torch_model\n"
            "t = NetworkMorphismTuner(input_width=8, input_channel=1, default_model_width=4, path='m')\n"
            "p = t.generate_parameters(0)\n"
            "try:\n    graph_to_torch_model(p)\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "NetworkMorphism needs PyTorch to build models: pip install 'nni-hpo[torch]' (or pip install torch)"
