"""One real auto-compression experiment: local training service, a real manager process, TPE,
three trials on a tiny CNN; the best trial's reported score is the evaluator's on its compressed model."""
from __future__ import annotations

import json
import socket
import textwrap

import pytest
import torch

from nni.algorithms.compression.pytorch.auto_compress import (
    AutoCompressionEngine, AutoCompressionExperiment, AutoCompressionSearchSpaceGenerator,
)
from nni.algorithms.compression.pytorch.auto_compress.trial_entry import load_module_class

pytestmark = pytest.mark.slow

MODULE_SOURCE = textwrap.dedent("""\
    import torch
    from torch import nn
    from nni.algorithms.compression.pytorch.auto_compress import AbstractAutoCompressionModule

    torch.set_num_threads(1)
    X = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))

    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(128, 10))

    def agreement(model):
        # share of inputs on which the compressed model predicts what the original one does
        with torch.no_grad():
            return float((model(X).argmax(1) == build()(X).argmax(1)).float().mean())

    class TinyModule(AbstractAutoCompressionModule):
        @classmethod
        def model(cls):
            return build()

        @classmethod
        def evaluator(cls):
            return agreement
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_auto_compression_experiment_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path / "exps"))
    code = tmp_path / "code"
    code.mkdir()
    (code / "tiny_auto_compress_module.py").write_text(MODULE_SOURCE)
    module = load_module_class(str(code / "tiny_auto_compress_module.py"), "TinyModule")

    generator = AutoCompressionSearchSpaceGenerator()
    generator.add_config('level', [{'sparsity': {'_type': 'choice', '_value': [0.3, 0.9]}, 'op_types': ['default']}])
    generator.add_config('l1', [{'sparsity': {'_type': 'choice', '_value': [0.25, 0.5, 0.75]}, 'op_types': ['Conv2d']},
                                {'exclude': True, 'op_names': ['2']}])
    experiment = AutoCompressionExperiment(module, 'local')
    experiment.config.experiment_name = 'auto compression test'
    experiment.config.trial_concurrency = 1
    experiment.config.max_trial_number = 3
    experiment.config.search_space = generator.dumps()
    experiment.config.trial_code_directory = code
    experiment.config.experiment_working_directory = tmp_path / "exps"
    experiment.config.tuner.name = 'TPE'
    experiment.config.tuner.class_args['optimize_mode'] = 'maximize'
    try:
        assert experiment.run(_free_port()) is True
    finally:
        proc = experiment._process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    trials = experiment.list_trial_jobs()
    assert len(trials) == 3 and {t.status for t in trials} == {"SUCCEEDED"}, [t.stderrPath for t in trials]
    results = experiment.export_data()
    assert len(results) == 3
    top = experiment.export_top_models(top_k=3, export_dir=tmp_path / "best")
    assert [r["score"] for r in top] == sorted((r.value for r in results), reverse=True)
    best = top[0]
    # the reported score is the evaluator's on the model compressed as the trial was told
    redo = AutoCompressionEngine.compress_and_evaluate(module, best["algorithm_name"], best["config_list"], best["parameters"])
    assert redo.score == best["score"]
    # the trial saved the compressed model: its masks are the ones of the redone compression
    saved = tmp_path / "best" / f"1_{best['trial_id']}"
    info = json.loads((saved / "compression.json").read_text())
    assert (info["algorithm_name"], info["config_list"], info["score"]) == (best["algorithm_name"], best["config_list"], best["score"])
    masks = torch.load(saved / "mask.pth")
    expected = redo.compressor.get_masks()
    assert set(masks) == set(expected)
    for name in expected:
        assert torch.equal(masks[name]["weight"], expected[name]["weight"])
