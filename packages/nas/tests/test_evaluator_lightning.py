"""Lightning evaluators: real training of tiny models on synthetic data, metrics checked
against an independent computation, ONNX export, custom LightningModules, serialization."""
import copy
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torch.nn.functional as F

import nni
import nni.retiarii.evaluator.pytorch.lightning as pl
import nni.runtime.platform.test as test_platform
from nni.retiarii.serializer import dump, get_trace, load

QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False}


@pytest.fixture
def metrics(monkeypatch, tmp_path):
    """Reported metrics (unittest trial platform); no trial output folder unless a test sets one."""
    monkeypatch.setenv("NNI_PLATFORM", "unittest")
    monkeypatch.delenv("NNI_OUTPUT_DIR", raising=False)
    monkeypatch.delenv("NNI_SYS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # anything Lightning writes by default stays in tmp_path
    test_platform.init_params({})

    def read(kind):
        return [record["value"] for record in test_platform.get_metrics() if record["type"] == kind]
    return read


def classification_data(n=96, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()  # 3 classes
    return torch.utils.data.TensorDataset(x, y)


def regression_data(n=96, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen)
    return torch.utils.data.TensorDataset(x, x @ torch.linspace(-1, 1, 6) + 0.1)


def mlp(out_features):
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, out_features))


def test_classification_reports_validation_accuracy(metrics):
    torch.manual_seed(0)
    train, val = classification_data(), classification_data(n=70, seed=2)
    evaluator = pl.Classification(train_dataloader=pl.DataLoader(train, batch_size=16, shuffle=True),
                                  val_dataloaders=pl.DataLoader(val, batch_size=32),  # uneven last batch
                                  learning_rate=0.05, export_onnx=False, max_epochs=2, **QUIET)
    model = mlp(3)
    before = copy.deepcopy(model.state_dict())
    module = evaluator.evaluate(model)
    assert module.model is model and any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        accuracy = (model(val.tensors[0]).argmax(-1) == val.tensors[1]).float().mean().item()
    intermediate, final = metrics("PERIODICAL"), metrics("FINAL")
    assert len(intermediate) == 2 and final == [pytest.approx(accuracy, abs=1e-6)]
    assert intermediate[-1] == final[0] and accuracy > 0.5


def test_regression_reports_validation_mse_for_n_by_1_predictions(metrics):
    torch.manual_seed(0)
    train, val = regression_data(), regression_data(n=50, seed=3)
    evaluator = pl.Regression(train_dataloader=pl.DataLoader(train, batch_size=16),
                              val_dataloaders=[pl.DataLoader(val, batch_size=20), pl.DataLoader(val, batch_size=50)],
                              learning_rate=0.01, export_onnx=False, max_epochs=2, limit_train_batches=4, **QUIET)
    model = mlp(1)  # (N, 1) predictions against (N,) targets
    evaluator.evaluate(model)
    with torch.no_grad():
        mse = F.mse_loss(model(val.tensors[0]).squeeze(1), val.tensors[1]).item()
    assert metrics("FINAL") == [pytest.approx(mse, rel=1e-5)]  # over both val loaders (same data twice)
    assert len(metrics("PERIODICAL")) == 2


def test_executes_twice_with_a_fresh_trainer_and_accepts_a_model_class(metrics):
    evaluator = pl.Classification(train_dataloader=pl.DataLoader(classification_data(n=32), batch_size=16),
                                  val_dataloaders=pl.DataLoader(classification_data(n=16), batch_size=16),
                                  export_onnx=False, max_epochs=1, **QUIET)
    first = evaluator.evaluate(lambda: mlp(3))
    second = evaluator.evaluate(lambda: mlp(3))
    assert first is not second and first.trainer is not second.trainer and first.model is not second.model
    assert len(metrics("FINAL")) == 2 and len(metrics("PERIODICAL")) == 2


def test_round_trip_through_dump_and_trainer_defaults(metrics):
    evaluator = pl.Classification(criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.SGD,
                                  learning_rate=0.1, weight_decay=1e-4,
                                  train_dataloader=pl.DataLoader(classification_data(n=32), batch_size=8),
                                  val_dataloaders=pl.DataLoader(classification_data(n=16), batch_size=8),
                                  export_onnx=False, max_epochs=1, logger=False)
    assert get_trace(evaluator).kwargs["optimizer"] is torch.optim.SGD
    trainer_kwargs = get_trace(evaluator.trainer).kwargs
    assert trainer_kwargs["enable_checkpointing"] is False and trainer_kwargs["max_epochs"] == 1
    again = load(dump(evaluator))
    assert type(again) is pl.Classification and again.export_onnx is False
    module = again.evaluate(mlp(3))
    assert isinstance(module.optimizers().optimizer, torch.optim.SGD)
    assert module.optimizers().optimizer.defaults["weight_decay"] == 1e-4
    assert len(metrics("FINAL")) == 1


def test_export_onnx_writes_a_model_onnxruntime_can_run(metrics, monkeypatch, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "trial-output"
    monkeypatch.setenv("NNI_OUTPUT_DIR", str(out))
    data = classification_data(n=32)
    evaluator = pl.Classification(train_dataloader=pl.DataLoader(data, batch_size=8),
                                  val_dataloaders=pl.DataLoader(data, batch_size=8), max_epochs=1, **QUIET)
    model = mlp(3)
    untrained = copy.deepcopy(model).eval()  # exported before training starts
    evaluator.evaluate(model)
    session = ort.InferenceSession(str(out / "model.onnx"))
    x = data.tensors[0][:8]
    (outputs,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(outputs), untrained(x), atol=1e-5)
    assert metrics("FINAL")


def test_export_onnx_is_skipped_outside_a_trial_and_on_exporter_failure(metrics, monkeypatch, tmp_path):
    data = classification_data(n=16)
    evaluator = pl.Classification(train_dataloader=pl.DataLoader(data, batch_size=8),
                                  val_dataloaders=pl.DataLoader(data, batch_size=8), max_epochs=1, **QUIET)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluator.evaluate(mlp(3))
    # no NNI_OUTPUT_DIR: skipped without a warning (Lightning's own, e.g. about `srun` on PATH, may come)
    assert not [w for w in caught if "export_onnx" in str(w.message) or "onnx" in str(w.message).lower()]
    assert not list(tmp_path.rglob("model.onnx"))

    class NoOnnx(torch.nn.Module):  # aten::histc has no ONNX export
        def __init__(self):
            super().__init__()
            self.net = mlp(3)

        def forward(self, x):
            return self.net(x) + 0 * torch.histc(x.detach(), bins=4).sum()

    monkeypatch.setenv("NNI_OUTPUT_DIR", str(tmp_path / "out"))
    with pytest.warns(UserWarning, match=r"export_onnx: could not export the model to .*model.onnx"):
        evaluator.evaluate(NoOnnx())
    assert not (tmp_path / "out" / "model.onnx").exists()
    assert len(metrics("FINAL")) == 2  # training went on both times


class AutoEncoder(pl.LightningModule):
    """The docs' custom LightningModule: the searched model is the encoder."""

    def __init__(self, code_size=3, lr=1e-2):
        super().__init__()
        self.save_hyperparameters()
        self.decoder = torch.nn.Linear(code_size, 6)
        self.lr = lr

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, _ = batch
        loss = F.mse_loss(self.decoder(self.model(x)), x)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, _ = batch
        self.log("val_loss", F.mse_loss(self.decoder(self.model(x)), x))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            nni.report_intermediate_result(self.trainer.callback_metrics["val_loss"].item())

    def teardown(self, stage):
        if stage == "fit":
            nni.report_final_result(self.trainer.callback_metrics["val_loss"].item())


def test_lightning_with_a_custom_module(metrics):
    data = classification_data(n=48)
    module = AutoEncoder(code_size=3)
    assert get_trace(module) == (AutoEncoder, (), {"code_size": 3}) and module.hparams.code_size == 3
    evaluator = pl.Lightning(module, pl.Trainer(max_epochs=2, **QUIET),
                             train_dataloader=pl.DataLoader(data, batch_size=16),
                             val_dataloaders=pl.DataLoader(data, batch_size=48))
    encoder = torch.nn.Linear(6, 3)
    fitted = load(dump(evaluator)).evaluate(encoder)
    assert isinstance(fitted, AutoEncoder) and fitted.model is encoder and fitted is not module
    with torch.no_grad():
        loss = F.mse_loss(fitted.decoder(encoder(data.tensors[0])), data.tensors[0]).item()
    assert metrics("FINAL") == [pytest.approx(loss, rel=1e-5)]
    assert len(metrics("PERIODICAL")) == 2 and metrics("PERIODICAL")[-1] == metrics("FINAL")[0]


def test_user_errors_are_one_line_and_name_the_argument():
    data = pl.DataLoader(classification_data(n=8), batch_size=4)
    cases = [
        (lambda: pl.Classification(criterion=torch.nn.CrossEntropyLoss(), train_dataloader=data, val_dataloaders=data),
         TypeError, "Classification: criterion must be a loss class such as nn.CrossEntropyLoss (not an instance)"),
        (lambda: pl.Regression(optimizer="adam", train_dataloader=data, val_dataloaders=data),
         TypeError, "Regression: optimizer must be an optimizer class such as torch.optim.Adam"),
        (lambda: pl.Classification(train_dataloader=data), ValueError, "Classification: val_dataloaders is required"),
        (lambda: pl.Classification(train_dataloader=[1, 2], val_dataloaders=data),
         TypeError, "Classification: train_dataloader must be a DataLoader or None (pl.DataLoader to be serializable), got list"),
        (lambda: pl.Lightning(AutoEncoder(), pl.Trainer(**QUIET)), ValueError, "Lightning: train_dataloader is required"),
        (lambda: pl.Lightning(torch.nn.Linear(2, 2), pl.Trainer(**QUIET), data),
         TypeError, "Lightning: lightning_module must inherit nni.retiarii.evaluator.pytorch.lightning.LightningModule"),
        (lambda: pl.Lightning(AutoEncoder(), pl.Trainer.__mro__[1](**QUIET), data),
         TypeError, "Lightning: trainer must be nni.retiarii.evaluator.pytorch.lightning.Trainer (pl.Trainer)"),
    ]
    for make, error, message in cases:
        with pytest.raises(error) as info:
            make()
        assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_no_validation_epoch_is_an_error_not_a_silent_trial(metrics):
    data = pl.DataLoader(classification_data(n=16), batch_size=8)
    evaluator = pl.Classification(train_dataloader=data, val_dataloaders=data, export_onnx=False,
                                  max_epochs=1, limit_val_batches=0, **QUIET)
    with pytest.raises(RuntimeError, match="Classification: no validation epoch ran"):
        evaluator.evaluate(mlp(3))
    assert metrics("FINAL") == []


_TRIAL = """
import sys, torch
from nni.retiarii import serializer
evaluator = serializer.load(open(sys.argv[1]).read())
evaluator._execute(torch.nn.Linear(6, 3))
"""


@pytest.mark.slow
def test_classification_runs_from_its_dump_in_a_trial_process(tmp_path):
    script = textwrap.dedent("""
        import sys, torch
        import nni.retiarii.evaluator.pytorch.lightning as pl
        from nni.retiarii import serializer
        data = torch.utils.data.TensorDataset(torch.randn(32, 6), torch.randint(0, 3, (32,)))
        evaluator = pl.Classification(train_dataloader=pl.DataLoader(data, batch_size=8),
                                      val_dataloaders=pl.DataLoader(data, batch_size=8), max_epochs=2)
        open(sys.argv[1], "w").write(serializer.dump(evaluator))
    """)
    (tmp_path / "experiment.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNI_")}
    subprocess.run([sys.executable, "experiment.py", "evaluator.json"], cwd=tmp_path, env=env, check=True, timeout=120)
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir()
    (trial_dir / "trial.py").write_text(_TRIAL)
    env["NNI_OUTPUT_DIR"] = str(trial_dir / "output")
    result = subprocess.run([sys.executable, "trial.py", str(tmp_path / "evaluator.json")], cwd=trial_dir, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("[nni standalone] Intermediate result:") == 2
    assert result.stdout.count("[nni standalone] Final result:") == 1
    assert (trial_dir / "output" / "model.onnx").is_file()
    assert not (trial_dir / "lightning_logs").exists()  # default_root_dir is the trial output folder
