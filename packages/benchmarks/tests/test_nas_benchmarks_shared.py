"""The plumbing the NAS benchmarks share (nni.nas.benchmarks.utils): table shape and naming, the atomic
database writer, the generators' input listing and command line."""
import argparse
import importlib

import pytest

from nni.nas.benchmarks.utils import json_files, run_generator, write_database

# The docs' public tables: import path, table name, the foreign-key column and its backref.
TABLES = [
    ("nasbench101", "Nb101"), ("nasbench201", "Nb201"), ("nds", "Nds"), ("nlp", "Nlp"),
]


@pytest.mark.parametrize("module,prefix", TABLES)
def test_tables_keep_their_names_links_and_database(module, prefix):
    package = importlib.import_module(f"nni.nas.benchmarks.{module}")
    model = importlib.import_module(f"nni.nas.benchmarks.{module}.model")
    config, stats, inter = (getattr(package, f"{prefix}{kind}") for kind in ("TrialConfig", "TrialStats", "IntermediateStats"))
    assert model.MODELS == [config, stats, inter]
    assert [m._meta.table_name for m in model.MODELS] == [f"{prefix.lower()}{k}" for k in ("trialconfig", "trialstats", "intermediatestats")]
    assert all(m._meta.database is model.DATABASE.db for m in model.MODELS)
    assert (stats.config.column_name, stats.config.rel_model, stats.config.backref) == ("config_id", config, "trial_stats")
    assert (inter.trial.column_name, inter.trial.rel_model, inter.trial.backref) == ("trial_id", stats, "intermediates")
    assert stats.config.index and inter.trial.index
    assert list(inter._meta.fields)[:3] == ["id", "trial", "current_epoch"]


def _nlp_trial(i, loss=1.0):
    config = {"arch": {"node_0_op": "linear", "node_0_input_0": "x"}, "dataset": "ptb" if i % 2 else "wikitext-2"}
    stats = {"train_loss": loss, "val_loss": loss, "test_loss": loss, "training_time": 1.0}
    return config, stats, [dict(stats, current_epoch=1)]


def test_write_database_shares_configs_by_key(tmp_path, monkeypatch):
    from nni.nas.benchmarks.nlp import query_nlp_trial_stats
    from nni.nas.benchmarks.nlp.model import DATABASE, MODELS, NlpTrialConfig
    out = tmp_path / "nlp.db"
    n = write_database(DATABASE, out, MODELS, (_nlp_trial(i, float(i)) for i in range(4)), lambda c: c["dataset"])
    assert n == 4 and out.is_file() and not (tmp_path / "nlp.db.tmp").exists()
    monkeypatch.setenv("NASBENCHMARK_DIR", str(tmp_path))
    try:
        DATABASE.connect()
        assert NlpTrialConfig.select().count() == 2  # two datasets -> two config rows
        rows = list(query_nlp_trial_stats(None, "ptb", reduction="mean"))
        assert len(rows) == 1 and rows[0]["train_loss"] == 2.0  # trials 1 and 3
    finally:
        DATABASE.close()


def test_write_database_failure_keeps_the_old_file(tmp_path):
    from nni.nas.benchmarks.nlp.model import DATABASE, MODELS
    out = tmp_path / "nlp.db"
    out.write_bytes(b"previous")

    def trials():
        yield _nlp_trial(0)
        raise ValueError("log 2: broken")

    with pytest.raises(ValueError, match="log 2: broken"):
        write_database(DATABASE, out, MODELS, trials(), lambda c: c["dataset"])
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nlp.db"]


def test_json_files_flat_recursive_and_missing(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.json", "a.json", "notes.txt", "sub/c.json"):
        (tmp_path / name).write_text("{}")
    single = tmp_path / "notes.txt"
    assert [p.name for p in json_files([str(tmp_path), str(single)])] == ["a.json", "b.json", "notes.txt"]
    assert [p.name for p in json_files([str(tmp_path)], recursive=True)] == ["a.json", "b.json", "c.json"]
    with pytest.raises(ValueError, match=r"^nowhere/: no such file or folder$"):
        json_files(["nowhere/"])


def test_run_generator_summary_and_one_line_error(tmp_path, capsys):
    from nni.nas.benchmarks.nlp.model import DATABASE
    seen = {}

    def ok(args):
        seen.update(vars(args))
        return 3, " (1 skipped)"

    run_generator(argparse.ArgumentParser(prog="gen"), DATABASE, ["--out", str(tmp_path / "x.db"), "--quiet"], ok)
    assert seen == {"out": str(tmp_path / "x.db"), "quiet": True}
    assert capsys.readouterr().out == f"3 trials written to {tmp_path / 'x.db'} (1 skipped)\n"

    def bad(args):
        raise ValueError("in.json: not a log")

    with pytest.raises(SystemExit) as exit_info:
        run_generator(argparse.ArgumentParser(prog="gen"), DATABASE, [], bad)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: in.json: not a log\n"
