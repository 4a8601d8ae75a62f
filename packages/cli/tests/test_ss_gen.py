"""``nnictl ss_gen``: the search space of annotated trial code, and its one-line errors."""
from __future__ import annotations

import json

from nni.tools.nnictl.__main__ import main


def _run(capsys, *argv):
    rc = main(["ss_gen", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_ss_gen_writes_the_annotated_space(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "cnn.py").write_text(
        "'''@nni.variable(nni.choice(50, 250, 500), name=batch_size)'''\nbatch_size = 128\n"
        "'''@nni.function_choice(max_pool(h, 2), avg_pool(h, 2), name=max_pool)'''\nh = max_pool(h, 2)\n")
    (tmp_path / "main.py").write_text(
        "import nni\n'''@nni.variable(nni.uniform(0.1, 0.5), name=dropout_rate)'''\ndropout_rate = 0.5\n"
        "'''@nni.report_final_result(dropout_rate)'''\n")
    out = tmp_path / "space.json"
    rc, stdout, _ = _run(capsys, "--trial_command", "python3 main.py", "--trial_dir", str(tmp_path), "--file", str(out))
    assert rc == 0 and "Search space with 3 parameters written to" in stdout
    assert json.loads(out.read_text()) == {
        "main/dropout_rate/uniform": {"_type": "uniform", "_value": [0.1, 0.5]},
        "models.cnn/batch_size/choice": {"_type": "choice", "_value": [50, 250, 500]},
        "models.cnn/max_pool/function_choice": {"_type": "choice", "_value": ["max_pool(h, 2)", "avg_pool(h, 2)"]},
    }


def test_ss_gen_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "space.json")
    (tmp_path / "trial.py").write_text("x = 0\n'''@nni.variable(nni.quniform(0, 1), name=x)'''\nx = 1\n")
    rc, _, err = _run(capsys, "--trial_command", "python3 trial.py", "--trial_dir", str(tmp_path), "--file", out)
    assert (rc, err) == (1, "ERROR: trial.py:2: nni.quniform takes 3 arguments, got 2\n")
    (tmp_path / "trial.py").write_text("'''@nni.report_final_result(1)'''\n")
    rc, _, err = _run(capsys, "--trial_command", "python3 trial.py", "--trial_dir", str(tmp_path), "--file", out)
    assert rc == 1 and err.startswith("ERROR: --trial_dir: no search space annotation") and err.count("\n") == 1
    rc, _, err = _run(capsys, "--trial_command", "python3 trial.py", "--trial_dir", str(tmp_path / "nope"), "--file", out)
    assert rc == 1 and err.startswith("ERROR: --trial_dir: not a folder")
