"""The benchmark execution engine: strategies answered from NAS-Bench-201 / -101 databases generated here
(NB201 from a small release in the official .pth format through ``db_gen``; NB101 through the database writer)."""
import itertools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nni.nas.benchmarks.nasbench201")

import nni.retiarii.nn.pytorch as nn
import nni.retiarii.strategy as strategy
from nni.experiment.config.base import ConfigError
from nni.nas.benchmarks.nasbench201 import query_nb201_trial_stats
from nni.nas.benchmarks.nasbench201.db_gen import generate
from nni.retiarii import fixed_arch, model_wrapper
from nni.retiarii.benchmark_spaces import NasBench101Space, NasBench201Space
from nni.retiarii.evaluator import FunctionalEvaluator
from nni.retiarii.execution.benchmark import (BenchmarkExecutionEngine, UnsupportedSpaceError,
                                              sample_to_nb101_arch)
from nni.retiarii.experiment.pytorch import RetiariiExeConfig, RetiariiExperiment
from nni.retiarii.graph import ModelStatus

EDGES = ["0_1", "0_2", "0_3", "1_2", "1_3", "2_3"]
OPS = ["skip_connect", "conv_3x3"]            # the searched subset: 2**6 = 64 cells, all in the database
OFFICIAL = {"skip_connect": "skip_connect", "conv_3x3": "nor_conv_3x3", "avg_pool_3x3": "avg_pool_3x3"}
SEEDS = [777, 888]


def _arch_str(arch):
    nodes = [[f"{OFFICIAL[arch[f'{i}_{j}']]}~{i}" for i in range(j)] for j in range(1, 4)]
    return "|" + "|+|".join("|".join(node) for node in nodes) + "|"


def _valid_acc(arch, seed, epoch, epochs):
    """The (synthetic) accuracy the raw release holds: more conv_3x3 edges are better, seeds differ."""
    final = 40.0 + 7.0 * sum(op == "conv_3x3" for op in arch.values()) + (seed - 777) / 100
    return final * (epoch + 1) / epochs


def _results(arch, dataset, seed, epochs):
    splits = ["x-valid", "ori-test"] if dataset == "cifar10-valid" else ["x-valid", "x-test", "ori-test"]
    shift = {"x-valid": 0.0, "x-test": 1.0, "ori-test": 2.0}
    return {"name": dataset, "seed": seed, "epochs": epochs,
            "train_acc1es": {e: 99.0 for e in range(epochs)}, "train_losses": {e: 0.1 for e in range(epochs)},
            "train_times": {e: 1.0 for e in range(epochs)}, "eval_names": splits,
            "eval_acc1es": {f"{s}@{e}": _valid_acc(arch, seed, e, epochs) + shift[s] for s in splits for e in range(epochs)},
            "eval_losses": {f"{s}@{e}": 1.0 for s in splits for e in range(epochs)},
            "eval_times": {f"{s}@{e}": 0.1 for s in splits for e in range(epochs)},
            "params": 0.5, "flop": 80.0, "latency": [0.01],
            "arch_config": {"name": "infer.tiny", "C": 16, "N": 5, "num_classes": 10}}


@pytest.fixture(scope="module")
def nb201_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb201")
    archs = [dict(zip(EDGES, ops)) for ops in itertools.product(OPS, repeat=6)]
    raw = {"meta_archs": [_arch_str(a) for a in archs], "total_archs": len(archs), "arch2infos": {}}
    for i, arch in enumerate(archs):
        raw["arch2infos"][i] = {
            "less": {"arch_str": _arch_str(arch),
                     "all_results": {("cifar100", s): _results(arch, "cifar100", s, 12) for s in SEEDS}},
            "full": {"arch_str": _arch_str(arch), "all_results": {("cifar10-valid", 777): _results(arch, "cifar10-valid", 777, 200)}},
        }
    path = tmp / "NAS-Bench-201-v1_1-096897.pth"
    torch.save(raw, path)
    generate(str(path), str(tmp / "db" / "nasbench201.db"))
    return tmp / "db"


@pytest.fixture
def nb201_dir(nb201_db, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(nb201_db))
    return nb201_db


@pytest.fixture(scope="module")
def space201():
    return NasBench201Space(num_channels=4, num_cells=1, op_candidates=OPS)


def _arch_of(model):
    return {e: model.sample[f"cell/{e}"] for e in EDGES}


def test_nb201_answers_equal_the_database_and_the_raw_release(nb201_dir, space201):
    with BenchmarkExecutionEngine("nasbench201", max_trial_number=10) as engine:
        strategy.Random(seed=0).run(*engine.preprocess(space201))
    assert len(engine.models) == 10
    for model in engine.models:
        assert model.status == ModelStatus.Trained
        arch = _arch_of(model)
        row, = query_nb201_trial_stats(arch, 200, "cifar10-valid", reduction="mean", include_intermediates=True)
        assert model.metric == row["valid_acc"]
        assert model.intermediate_metrics == [r["valid_acc"] for r in row["intermediates"]]
        expected = _valid_acc(arch, 777, 199, 200)
        assert model.metric == pytest.approx(expected)
        assert len(model.intermediate_metrics) == 200
        assert model.intermediate_metrics[99] == pytest.approx(expected / 2)


def test_nb201_dataset_metric_and_schedule(nb201_dir, space201):
    with BenchmarkExecutionEngine("nasbench201", dataset="cifar100", metric="test_acc", num_epochs=12,
                                  max_trial_number=3) as engine:
        strategy.Random(seed=1).run(*engine.preprocess(space201))
    for model in engine.models:
        expected = sum(_valid_acc(_arch_of(model), s, 11, 12) + 1.0 for s in SEEDS) / len(SEEDS)  # x-test, mean of the seeds
        assert model.metric == pytest.approx(expected)
        assert len(model.intermediate_metrics) == 12


def test_budget_is_honoured(nb201_dir, space201):
    with BenchmarkExecutionEngine("nasbench201", max_trial_number=7, concurrency=3) as engine:
        base, mutators = engine.preprocess(space201)
        assert engine.query_available_resource() == 3
        strategy.GridSearch(shuffle=False).run(base, mutators)
        assert len(engine.list_models()) == 7 and engine.budget_exhausted()
        assert engine.query_available_resource() == 0
        extra = base.fork()
        extra.sample = {f"cell/{e}": "conv_3x3" for e in EDGES}
        extra.freeze()
        engine.submit_models(extra)
    assert extra.status == ModelStatus.Failed and extra not in engine.list_models()


def test_evolution_finds_the_best_cell(nb201_dir, space201):
    with BenchmarkExecutionEngine("nasbench201", max_trial_number=60) as engine:
        strategy.RegularizedEvolution(population_size=8, sample_size=3, cycles=60, seed=0).run(*engine.preprocess(space201))
    best = max(engine.models, key=lambda m: m.metric)
    assert sum(op == "conv_3x3" for op in _arch_of(best).values()) >= 5


def test_architecture_missing_from_the_database_fails(nb201_dir):
    space = NasBench201Space(num_channels=4, num_cells=1, op_candidates=["conv_3x3", "avg_pool_3x3"])
    with BenchmarkExecutionEngine("nasbench201") as engine:
        base, _ = engine.preprocess(space)
        model = base.fork()
        model.sample = {f"cell/{e}": "avg_pool_3x3" for e in EDGES}
        model.freeze()
        engine.submit_models(model)
    assert model.status == ModelStatus.Failed
    assert "has no valid_acc" in engine.errors[model.model_id]


@model_wrapper
class _NotABenchmark(nn.Module):
    def __init__(self):
        super().__init__()
        self.op = nn.LayerChoice({"conv_3x3": nn.Conv2d(3, 3, 3, padding=1), "skip_connect": nn.Identity()}, label="op")

    def forward(self, x):
        return self.op(x)


@model_wrapper
class _ListCandidates(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.NasBench201Cell([lambda i, o: nn.Conv2d(i, o, 1), lambda i, o: nn.Identity()], 3, 3, label="c")

    def forward(self, x):
        return self.cell(x)


@pytest.mark.parametrize("space, benchmark, match", [
    (_NotABenchmark, "nasbench201", r"the choice 'op', which is not an edge of a NAS-Bench-201 cell; supported: "),
    (_ListCandidates, "nasbench201", r"choice 'c/0_1' has candidates \['0', '1'\] that are not NAS-Bench-201 operators"),
    (lambda: NasBench201Space(num_channels=4, num_cells=1), "nasbench101", r"'cell/0_1', which is not a choice of a NAS-Bench-101 cell"),
])
def test_unsupported_space_is_a_one_line_error(space, benchmark, match):
    engine = BenchmarkExecutionEngine(benchmark)
    with pytest.raises(UnsupportedSpaceError, match=match) as info:
        engine.preprocess(space())
    assert "\n" not in str(info.value)


def _fit(model_cls):
    raise AssertionError("the benchmark engine never trains")


def test_retiarii_experiment_runs_on_the_benchmark(nb201_dir, space201):
    exp = RetiariiExperiment(space201, FunctionalEvaluator(_fit), [], strategy.Random(seed=3))
    config = RetiariiExeConfig("local", trial_concurrency=2, max_trial_number=12,
                               execution_engine="benchmark", benchmark="nasbench201")
    assert exp.run(config) is True
    assert exp.get_status() == "DONE"
    models = exp.list_models()
    assert len(models) == 12 and all(m.status == ModelStatus.Trained for m in models)
    best = max(models, key=lambda m: m.metric)
    assert exp.export_top_models(top_k=1) == [dict(best.sample)]
    with fixed_arch(exp.export_top_models()[0]):     # the exported cell retrains as a plain network
        net = NasBench201Space(num_channels=4, num_cells=1, op_candidates=OPS)
    assert net(torch.zeros(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("fields, match", [
    ({}, r"^benchmark: required with executionEngine 'benchmark'"),
    ({"benchmark": "nasbench301"}, r"^benchmark: unknown 'nasbench301'; allowed: 'nasbench201', 'nasbench101'"),
    ({"benchmark": "nasbench201", "benchmark_dataset": "mnist"}, r"^benchmarkDataset: 'mnist' is not a NAS-Bench-201 dataset"),
    ({"benchmark": "nasbench101", "benchmark_epochs": 200}, r"^benchmarkEpochs: 200 is not a nasbench101 schedule"),
])
def test_config_errors_name_the_field(fields, match):
    config = RetiariiExeConfig("local", trial_concurrency=1, execution_engine="benchmark", **fields)
    with pytest.raises(ConfigError, match=match):
        config.validate_retiarii()


# ---------------------------------------------------------------------------------------- NAS-Bench-101

NB101_ARCH = {"op1": "conv3x3-bn-relu", "op2": "maxpool3x3", "input1": [0], "input2": [1], "input3": [0, 2]}


@pytest.fixture
def nb101_dir(tmp_path, monkeypatch):
    from nni.nas.benchmarks.nasbench101.graph_util import hash_module
    from nni.nas.benchmarks.nasbench101.model import (DATABASE, MODELS, Nb101IntermediateStats, Nb101TrialConfig,
                                                      Nb101TrialStats)
    from nni.nas.benchmarks.utils import TrialWriter, canonical_json, generating
    with generating(DATABASE, tmp_path / "nasbench101.db", MODELS):
        writer = TrialWriter(Nb101TrialConfig, Nb101TrialStats, Nb101IntermediateStats)
        config = {"arch": NB101_ARCH, "num_vertices": 4, "hash": hash_module(NB101_ARCH, 4), "num_epochs": 108}
        for valid in (80.0, 82.0, 84.0):   # three repeats
            inters = [{"current_epoch": e, "train_acc": 90.0, "valid_acc": valid * e / 108, "test_acc": 70.0,
                       "training_time": 10.0 * e} for e in (54, 108)]
            stats = {"train_acc": 90.0, "valid_acc": valid, "test_acc": 70.0, "parameters": 1.0, "training_time": 1080.0}
            writer.add((canonical_json(NB101_ARCH), 108), config, stats, inters)
        writer.flush()
    monkeypatch.setenv("NASBENCHMARK_DIR", str(tmp_path))
    yield tmp_path
    DATABASE.close()


def test_nb101_sample_is_pruned_renumbered_and_answered(nb101_dir):
    # 6 vertices; 2 and 4 feed nothing (pruned), leaving 0 -> 1 -> 3 -> 5 and 0 -> 5: NB101_ARCH renumbered
    sample = {"cell/num_nodes": 6, "cell/op1": "conv3x3-bn-relu", "cell/op2": "conv1x1-bn-relu", "cell/op3": "maxpool3x3",
              "cell/op4": "conv1x1-bn-relu", "cell/input1": [0], "cell/input2": [1], "cell/input3": [1],
              "cell/input4": [0], "cell/input5": [0, 3]}
    assert sample_to_nb101_arch(sample, "cell") == NB101_ARCH
    space = NasBench101Space(stem_out_channels=4, num_stacks=1, num_modules_per_stack=1)
    with BenchmarkExecutionEngine("nasbench101") as engine:
        base, mutators = engine.preprocess(space)
        assert engine.prefix == "cell" and len(mutators) == 12
        model = base.fork()
        model.sample = dict(sample, **{"cell/op5": "maxpool3x3", "cell/input6": [0]})
        model.freeze()
        too_big = base.fork()
        too_big.sample = {"cell/num_nodes": 7, **{f"cell/op{i}": "conv3x3-bn-relu" for i in range(1, 6)},
                          **{f"cell/input{i}": list(range(i)) for i in range(1, 7)}}
        too_big.freeze()
        engine.submit_models(model, too_big)
    assert model.status == ModelStatus.Trained
    assert model.metric == pytest.approx(82.0) and model.intermediate_metrics == pytest.approx([41.0, 82.0])
    assert too_big.status == ModelStatus.Failed and "at most 9" in engine.errors[too_big.model_id]


def test_example_release_is_in_the_official_format():
    import importlib.util
    from pathlib import Path

    from nni.nas.benchmarks.nasbench201.db_gen import parse_arch_str
    path = Path(__file__).resolve().parents[3] / "examples" / "nas" / "benchmark" / "strategy_comparison.py"
    if not path.exists():
        pytest.skip("the repository's examples are not beside this package")
    spec = importlib.util.spec_from_file_location("strategy_comparison", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    archs = [dict(zip(EDGES, ops)) for ops in itertools.product(example.OPS, repeat=6)][::97]
    assert all(parse_arch_str(example.arch_str(a)) == a for a in archs)
    disconnected = dict.fromkeys(EDGES, "none")
    deep = {"0_1": "conv_3x3", "1_2": "conv_3x3", "2_3": "conv_3x3", "0_3": "skip_connect", "0_2": "conv_3x3", "1_3": "conv_3x3"}
    assert example.synthetic_accuracy(disconnected) == 10.0 and example.synthetic_accuracy(deep) > 85
    accs = [example.synthetic_accuracy(a) for a in archs]
    assert all(10.0 <= a <= 94.0 for a in accs) and len(set(accs)) > len(accs) // 2
