"""Auto-compression: the search-space generator, the decoding of sampled parameters, and the trial's
compress / fine-tune / evaluate step (in process, tiny CNN)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from nni.algorithms.compression.pytorch.auto_compress import (
    AbstractAutoCompressionModule, AutoCompressionEngine, AutoCompressionExperiment,
    AutoCompressionSearchSpaceGenerator, decode_parameters, get_compressor_class,
)
from nni.algorithms.compression.pytorch.auto_compress.constants import available_algorithms
from nni.algorithms.compression.pytorch.auto_compress.trial_entry import load_module_class
from nni.algorithms.compression.pytorch.pruning import L1FilterPruner, LevelPruner, TaylorFOWeightFilterPruner

# ----- the generator -------------------------------------------------------------------------


def test_dumps_exact_json_of_the_docs_example():
    generator = AutoCompressionSearchSpaceGenerator()
    generator.add_config('level', [{"sparsity": {"_type": "uniform", "_value": [0.01, 0.99]}, 'op_types': ['default']}])
    generator.add_config('qat', [{'quant_types': ['weight', 'output'], 'quant_bits': {'weight': 8, 'output': 8},
                                  'op_types': ['Conv2d', 'Linear']}])
    assert generator.dumps() == {"algorithm_name": {"_type": "choice", "_value": [
        {"_name": "level", "config_list::default::::sparsity": {"_type": "uniform", "_value": [0.01, 0.99]}},
        {"_name": "qat",
         "config_list::weight:output::Conv2d:Linear::::quant_bits::weight": {"_type": "choice", "_value": [8]},
         "config_list::weight:output::Conv2d:Linear::::quant_bits::output": {"_type": "choice", "_value": [8]}},
    ]}}


def test_dumps_op_names_exclude_and_algorithm_arguments():
    generator = AutoCompressionSearchSpaceGenerator()
    generator.add_config('l1', [
        {'sparsity': {'_type': 'choice', '_value': [0.25, 0.5]}, 'op_types': ['Conv2d']},
        {'exclude': True, 'op_names': ['conv2']},
    ], dependency_aware=False)
    space = generator.dumps()
    assert json.loads(json.dumps(space)) == space  # plain JSON
    assert space == {"algorithm_name": {"_type": "choice", "_value": [{
        "_name": "l1",
        "config_list::Conv2d::::sparsity": {"_type": "choice", "_value": [0.25, 0.5]},
        "config_list::::conv2::exclude": {"_type": "choice", "_value": [True]},
        "parameter::dependency_aware": {"_type": "choice", "_value": [False]},
    }]}}
    assert AutoCompressionSearchSpaceGenerator.loads(space).dumps() == space


@pytest.mark.parametrize("name, config_list, kwargs, message", [
    ("pruneall", [{'sparsity': 0.5, 'op_types': ['Conv2d']}], {}, "unknown compression algorithm 'pruneall'; allowed: pruners"),
    ("level", [], {}, "config_list must be a non-empty list"),
    ("level", [{'sparsity': 0.5}], {}, "config_list[0] needs 'op_types' or 'op_names'"),
    ("level", [{'op_types': ['Conv2d']}], {}, "config_list[0] has no setting besides op_types/op_names"),
    ("qat", [{'quant_bits': 8, 'op_types': ['Conv2d']}], {}, "config_list[0] needs 'quant_types'"),
    ("level", [{'sparsity': {'_type': 'uniform', '_value': [0.9]}, 'op_types': ['Conv2d']}], {}, "config_list[0]['sparsity']"),
    ("level", [{'sparsity': 0.5, 'op_types': ['Conv2d']}, {'sparsity': 0.2, 'op_types': ['Conv2d']}], {},
     "config_list[1] selects the same op_types/op_names as config_list[0]"),
    ("level", [{'sparsity': 0.5, 'op_names': ['a:b']}], {}, "config_list[0]['op_names'] items must be non-empty strings without ':'"),
    ("level", [{'sparsity': 0.5, 'op_types': 'Conv2d'}], {}, "config_list[0]['op_types'] must be a non-empty list"),
    ("level", [{'sparsity': 0.5, 'op_types': ['Conv2d']}], {'x': {'_type': 'randint', '_value': [3, 1]}}, "add_config('level'): x"),
])
def test_add_config_errors_are_one_line(name, config_list, kwargs, message):
    with pytest.raises(ValueError) as info:
        AutoCompressionSearchSpaceGenerator().add_config(name, config_list, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_each_algorithm_once_and_empty_space():
    generator = AutoCompressionSearchSpaceGenerator()
    with pytest.raises(ValueError, match="empty"):
        generator.dumps()
    generator.add_config('level', [{'sparsity': 0.5, 'op_types': ['default']}])
    with pytest.raises(ValueError, match="already added"):
        generator.add_config('level', [{'sparsity': 0.2, 'op_types': ['default']}])


# ----- decoding what the tuner sampled -------------------------------------------------------


def test_decode_sampled_parameters_into_config_list_in_order():
    sampled = {"algorithm_name": {
        "_name": "l1",
        "config_list::Conv2d::::sparsity": 0.5,
        "config_list::::conv2::exclude": True,
        "parameter::dependency_aware": False,
    }}
    name, config_list, kwargs = decode_parameters(sampled)
    assert name == "l1"
    assert config_list == [{'op_types': ['Conv2d'], 'sparsity': 0.5}, {'op_names': ['conv2'], 'exclude': True}]
    assert kwargs == {'dependency_aware': False}
    assert get_compressor_class(name) is L1FilterPruner


def test_decode_quantizer_keys():
    name, config_list, kwargs = decode_parameters({"_name": "dorefa",
                                                  "config_list::weight::Conv2d::conv1:conv2::quant_bits": 4})
    assert (name, kwargs) == ("dorefa", {})
    assert config_list == [{'quant_types': ['weight'], 'op_types': ['Conv2d'], 'op_names': ['conv1', 'conv2'], 'quant_bits': 4}]


def test_sampling_with_real_tuners_decodes_to_the_declared_config():
    from nni.algorithms.hpo.random_tuner import RandomTuner
    from nni.algorithms.hpo.tpe_tuner import TpeTuner

    generator = AutoCompressionSearchSpaceGenerator()
    generator.add_config('level', [{'sparsity': {'_type': 'uniform', '_value': [0.1, 0.9]}, 'op_types': ['default']}])
    generator.add_config('fpgm', [{'sparsity': {'_type': 'choice', '_value': [0.25, 0.5]}, 'op_types': ['Conv2d']},
                                  {'exclude': True, 'op_names': ['conv2']}])
    space = generator.dumps()
    for tuner in (TpeTuner('maximize'), RandomTuner(seed=3)):
        tuner.update_search_space(space)
        names = set()
        for i in range(12):
            params = json.loads(json.dumps(tuner.generate_parameters(i)))  # as the trial receives them
            name, config_list, kwargs = decode_parameters(params)
            names.add(name)
            if name == 'level':
                assert len(config_list) == 1 and config_list[0]['op_types'] == ['default']
                assert 0.1 <= config_list[0]['sparsity'] <= 0.9
            else:
                assert config_list[0]['sparsity'] in (0.25, 0.5) and config_list[1] == {'op_names': ['conv2'], 'exclude': True}
            tuner.receive_trial_result(i, params, float(i))
        assert names == {'level', 'fpgm'}


@pytest.mark.parametrize("params, message", [
    ({"algorithm_name": {"sparsity": 0.5}}, "expected the parameters of an auto-compression search space"),
    ({"_name": "l1", "config_list::Conv2d::sparsity": 0.5}, "parameter 'config_list::Conv2d::sparsity' of 'l1'"),
    ({"_name": "nope"}, "unknown compression algorithm 'nope'"),
])
def test_decode_errors(params, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        decode_parameters(params)


# ----- the trial's work ----------------------------------------------------------------------


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(128, 10))


_X = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
_Y = _model()(_X).argmax(1).detach()
CALLS: list = []


def _agreement(model: nn.Module) -> float:
    with torch.no_grad():
        return float((model(_X).argmax(1) == _Y).float().mean())


def _trainer(model, optimizer, criterion, epoch):
    CALLS.append(epoch)
    for i in range(2):
        optimizer.zero_grad()
        criterion(model(_X[i * 32:(i + 1) * 32]), _Y[i * 32:(i + 1) * 32]).backward()
        optimizer.step()


class OneShotModule(AbstractAutoCompressionModule):
    @classmethod
    def model(cls):
        return _model()

    @classmethod
    def evaluator(cls):
        return _agreement


class TrainingModule(OneShotModule):
    @classmethod
    def optimizer_factory(cls):
        return lambda params: torch.optim.SGD(params, lr=0.1)

    @classmethod
    def criterion(cls):
        return nn.CrossEntropyLoss()

    @classmethod
    def sparsifying_trainer(cls, compress_algorithm_name):
        return _trainer

    @classmethod
    def post_compress_finetuning_trainer(cls, compress_algorithm_name):
        return _trainer if compress_algorithm_name == 'level' else None

    @classmethod
    def post_compress_finetuning_epochs(cls, compress_algorithm_name):
        return 3


def test_one_shot_pruner_score_is_the_evaluator_on_the_pruned_model():
    name, config_list, kwargs = decode_parameters({"_name": "l1", "config_list::Conv2d::::sparsity": 0.5,
                                                   "config_list::::2::exclude": True})
    result = AutoCompressionEngine.compress_and_evaluate(OneShotModule, name, config_list, kwargs)
    assert isinstance(result.compressor, L1FilterPruner)
    masks = result.compressor.get_masks()
    assert set(masks) == {'0'}  # conv '2' excluded
    assert masks['0']['weight'].sum(dim=(1, 2, 3)).eq(0).sum() == 2  # half of 4 filters
    # the same pruning by hand gives the same score
    reference = _model()
    L1FilterPruner(reference, [{'sparsity': 0.5, 'op_types': ['Conv2d']}, {'exclude': True, 'op_names': ['2']}]).compress()
    assert result.score == _agreement(reference) < 1.0


def test_training_pruner_gets_module_trainer_and_search_space_arguments():
    CALLS.clear()
    result = AutoCompressionEngine.compress_and_evaluate(
        TrainingModule, 'taylorfo', [{'sparsity': 0.5, 'op_types': ['Conv2d']}], {'sparsifying_training_batches': 2})
    assert isinstance(result.compressor, TaylorFOWeightFilterPruner)
    assert CALLS == [0]  # one sparsifying epoch, no fine-tuning for 'taylorfo'
    for mask in result.compressor.get_masks().values():
        per_filter = mask['weight'].flatten(1).sum(1)
        assert per_filter.eq(0).sum() == len(per_filter) // 2


def test_post_compress_finetuning_keeps_pruned_weights_zero():
    CALLS.clear()
    unfinetuned = LevelPruner(_model(), [{'sparsity': 0.8, 'op_types': ['default']}])
    unfinetuned.compress()
    result = AutoCompressionEngine.compress_and_evaluate(TrainingModule, 'level', [{'sparsity': 0.8, 'op_types': ['default']}])
    assert CALLS == [0, 1, 2]
    for wrapper, reference in zip(result.compressor.get_modules_wrapper(), unfinetuned.get_modules_wrapper()):
        assert torch.equal(wrapper.weight_mask, reference.weight_mask)
        weight, kept = wrapper.module.weight.detach(), wrapper.weight_mask.bool()
        assert torch.count_nonzero(weight[~kept]) == 0  # still pruned after 6 optimizer steps
        assert not torch.allclose(weight[kept], reference.module.weight.detach()[kept])  # but trained
    assert result.score == _agreement(result.model)


def test_missing_module_methods_are_one_line_errors():
    with pytest.raises(ValueError, match=r"SlimPruner \('slim'\) needs 'optimizer': implement OneShotModule.optimizer_factory\(\)"):
        AutoCompressionEngine.compress_and_evaluate(OneShotModule, 'slim', [{'sparsity': 0.5, 'op_types': ['BatchNorm2d']}])
    with pytest.raises(ValueError, match=r"unknown argument 'scale' \(parameter::scale\); allowed: \['dependency_aware', 'dummy_input'\]"):
        AutoCompressionEngine.compress_and_evaluate(OneShotModule, 'l1', [{'sparsity': 0.5, 'op_types': ['Conv2d']}], {'scale': 1})
    with pytest.raises(ValueError, match="argument 'trainer' cannot come from the search space"):
        AutoCompressionEngine.compress_and_evaluate(TrainingModule, 'slim', [{'sparsity': 0.5, 'op_types': ['BatchNorm2d']}],
                                                    {'trainer': None})


def test_quantizer_names_resolve_from_the_quantization_package_when_installed():
    installed = importlib.util.find_spec("nni.algorithms.compression.pytorch.quantization") is not None
    if installed:
        assert get_compressor_class('naive').__name__ == 'NaiveQuantizer'
    else:
        with pytest.raises(ValueError, match=r"'naive' .* is not available in this installation; available: \['level'"):
            get_compressor_class('naive')
        assert 'naive' not in available_algorithms() and 'level' in available_algorithms()


def test_quantizer_trial_compresses_saves_and_scores(tmp_path):
    pytest.importorskip("nni.algorithms.compression.pytorch.quantization")
    name, config_list, kwargs = decode_parameters({
        "_name": "qat", "config_list::weight::Conv2d:Linear::::quant_bits::weight": 2})
    assert config_list == [{'quant_types': ['weight'], 'op_types': ['Conv2d', 'Linear'], 'quant_bits': {'weight': 2}}]
    result = AutoCompressionEngine.compress_and_evaluate(TrainingModule, name, config_list, kwargs)
    assert type(result.compressor).__name__ == 'QAT_Quantizer'
    assert result.compressor.optimizer is not None  # from the module's optimizer_factory
    assert result.score == _agreement(result.model) < _agreement(_model())  # 2-bit weights change predictions
    AutoCompressionEngine._save(result, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['calibration.pth', 'compression.json', 'model.pth']
    assert json.loads((tmp_path / 'compression.json').read_text())['config_list'] == config_list


# ----- the trial entry point and the experiment front ----------------------------------------

# torch is imported only where used: the subprocess below then starts fast
MODULE_SOURCE = textwrap.dedent("""\
    from nni.algorithms.compression.pytorch.auto_compress import AbstractAutoCompressionModule

    class TinyModule(AbstractAutoCompressionModule):
        @classmethod
        def model(cls):
            import torch
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 10))

        @classmethod
        def evaluator(cls):
            import torch
            return lambda model: float(model(torch.ones(1, 1, 8, 8)).sum())
""")


def test_trial_entry_loads_the_module_by_file_and_fails_in_one_line_without_a_tuner(tmp_path):
    (tmp_path / "tiny_module.py").write_text(MODULE_SOURCE)
    cls = load_module_class(str(tmp_path / "tiny_module.py"), "TinyModule")
    assert issubclass(cls, AbstractAutoCompressionModule) and cls.model()[0].out_channels == 4
    with pytest.raises(ValueError, match="has no AbstractAutoCompressionModule subclass named 'Nope'"):
        load_module_class(str(tmp_path / "tiny_module.py"), "Nope")
    # standalone (no experiment): no parameters -> a one-line error and exit code 1
    r = subprocess.run([sys.executable, "-m", "nni.algorithms.compression.pytorch.auto_compress.trial_entry",
                        "--module_file_name", "tiny_module.py", "--module_class_name", "TinyModule"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["Error: no parameters from the tuner: this entry point is run by "
                                             "AutoCompressionExperiment trials"]


def test_experiment_builds_the_trial_command_and_checks_its_inputs(tmp_path):
    (tmp_path / "tiny_module.py").write_text(MODULE_SOURCE)
    cls = load_module_class(str(tmp_path / "tiny_module.py"), "TinyModule")
    exp = AutoCompressionExperiment(cls, 'local')
    exp.config.trial_code_directory = tmp_path
    assert exp._trial_command() == ("python3 -m nni.algorithms.compression.pytorch.auto_compress.trial_entry "
                                    "--module_file_name tiny_module.py --module_class_name TinyModule")
    exp.config.trial_code_directory = tmp_path / "elsewhere"
    assert f"--module_file_name {tmp_path / 'tiny_module.py'} " in exp._trial_command()
    exp.config.tuner.name = 'TPE'
    exp.config.search_space = {'sparsity': {'_type': 'uniform', '_value': [0.1, 0.9]}}
    with pytest.raises(ValueError, match="search_space: an auto-compression search space has the one key 'algorithm_name'"):
        exp.start(port=1)
    exp.config.tuner.name = 'GridSearch'
    with pytest.raises(ValueError, match="tuner.name: auto compression supports TPE, Random, Anneal, Evolution"):
        exp.start(port=1)
    with pytest.raises(ValueError, match="auto_compress_module: none given"):
        AutoCompressionExperiment(None, 'local').start(port=1)  # what Experiment.view() / connect() build
    with pytest.raises(ValueError, match="must be a subclass of AbstractAutoCompressionModule"):
        AutoCompressionExperiment(object, 'local')
    with pytest.raises(ValueError, match=r"must implement \['evaluator'\]"):
        AutoCompressionExperiment(type("Half", (AbstractAutoCompressionModule,), {"model": classmethod(lambda c: None)}), 'local')
