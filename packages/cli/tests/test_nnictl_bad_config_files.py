"""``nnictl create`` with a hostile config file: one line naming the field or file (issue 11, item 4)."""
from __future__ import annotations

import subprocess
import sys

HEAD = (
    "trialCommand: python3 trial.py\ntrialCodeDirectory: .\ntrialConcurrency: 1\n"
    "tuner: {name: Random}\ntrainingService: {platform: local}\n"
)
SPACE = "searchSpace: {x: {_type: choice, _value: [1, 2]}}\n"


def test_nnictl_create_reports_bad_files_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    cases = {
        "workdir.yml": (HEAD + SPACE + "experimentWorkingDirectory: afile\n", "experimentWorkingDirectory:"),
        "dup.yml": (HEAD + SPACE + "tuner: {name: TPE}\n", "duplicate key 'tuner' (first at line 4)"),
        "utf8.yml": (None, "utf8.yml: not UTF-8 text"),
        "deep.yml": (HEAD + "searchSpace: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
    }
    for name, (text, expected) in cases.items():
        if text is None:
            (tmp_path / name).write_bytes(HEAD.encode() + b"experimentName: caf\xe9\n")
        else:
            (tmp_path / name).write_text(text)
        r = subprocess.run([sys.executable, "-m", "nni.tools.nnictl", "create", "--config", name, "--port", "1"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert expected in r.stderr and r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr, (name, r.stderr)
