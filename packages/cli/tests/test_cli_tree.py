"""Every command and option of the nnictl reference exists, answers --help, and completes."""
from __future__ import annotations

import subprocess
import sys

import pytest

from nni.tools.nnictl.__main__ import main
from nni.tools.nnictl.completion import completion_table
from nni.tools.nnictl.parser import build_parser, resolve_handler

REFERENCE = {
    "create": ["--config", "--port", "--debug", "--foreground", "--url_prefix"],
    "resume": ["--port", "--debug", "--foreground", "--experiment_dir"],
    "view": ["--port", "--experiment_dir"],
    "stop": ["--port", "--all"],
    "update searchspace": ["--filename"],
    "update concurrency": ["--value"],
    "update duration": ["--value"],
    "update trialnum": ["--value"],
    "trial ls": ["--head", "--tail", "--table"],
    "trial kill": ["--trial_id"],
    "top": ["--time"],
    "experiment show": [],
    "experiment status": [],
    "experiment list": ["--all"],
    "experiment delete": ["--all", "--yes"],
    "experiment export": ["--filename", "--type", "--intermediate"],
    "experiment import": ["--filename"],
    "experiment save": ["--path", "--saveCodeDir"],
    "experiment load": ["--path", "--codeDir", "--logDir", "--searchSpacePath"],
    "platform clean": ["--config"],
    "config show": [],
    "log stdout": ["--head", "--tail", "--path"],
    "log stderr": ["--head", "--tail", "--path"],
    "log trial": ["--trial_id"],
    "webui url": [],
    "tensorboard start": ["--port"],
    "tensorboard stop": [],
    "algo register": ["--meta"],
    "algo unregister": [],
    "algo show": [],
    "algo list": [],
    "ss_gen": ["--trial_command", "--trial_dir", "--file"],
}


@pytest.mark.parametrize("command", sorted(REFERENCE))
def test_reference_command_and_options_exist(command):
    words = completion_table()[command]
    for option in REFERENCE[command]:
        assert option in words, f"nnictl {command} lacks {option}"


@pytest.mark.parametrize("path", sorted(completion_table()))
def test_help_on_every_level(path, capsys):
    with pytest.raises(SystemExit) as done:
        main([*path.split(), "--help"] if path else ["--help"])
    assert done.value.code == 0
    assert "usage: nnictl" in capsys.readouterr().out


def test_every_handler_resolves():
    """A command whose handler module is missing would crash only when a user runs it."""

    def handlers(parser):
        import argparse

        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    h = child.get_default("handler")
                    if h:
                        yield h
                    yield from handlers(child)

    for spec in handlers(build_parser()):
        assert callable(resolve_handler(spec)), spec


def test_bad_option_exits_non_zero_with_usage():
    proc = subprocess.run([sys.executable, "-m", "nni.tools.nnictl", "update", "concurrency", "--value", "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid int value: 'x'" in proc.stderr and "Traceback" not in proc.stderr


def test_version_lists_distributions(capsys):
    from nni.runtime.distributions import installed_distributions

    assert main(["--version"]) == 0
    out = capsys.readouterr().out.splitlines()
    dists = installed_distributions()
    assert out[0] == dists["nni"]  # the bare meta-package version first, as v2.5 prints it
    assert out[1:] == [f"{name} {version}" for name, version in dists.items()]
    assert "nni-core 0.1.0" in out and "nni-cli 0.1.0" in out
    assert main(["-v"]) == 0 and capsys.readouterr().out.splitlines() == out


def test_bash_completion_script(tmp_path, capsys):
    script = tmp_path / "c.sh"
    assert main(["completion", "bash"]) == 0
    in_process = capsys.readouterr().out
    proc = subprocess.run([sys.executable, "-m", "nni.tools.nnictl", "completion", "bash"], capture_output=True, text=True, check=True)
    assert "_nnictl_complete" in in_process and proc.stdout == in_process
    script.write_text(proc.stdout + '\nCOMP_WORDS=(nnictl experiment exp); COMP_CWORD=2; _nnictl_complete; echo "${COMPREPLY[@]}"\n')
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["export"]
