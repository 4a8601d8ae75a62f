"""nnictl waits for a starting manager while it makes progress, and no longer."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from nni.tools.nnictl.errors import NnictlError
from nni.tools.nnictl.launcher import ManagerProcess, check_port


def fake_manager(tmp_path, code: str) -> ManagerProcess:
    """A ManagerProcess whose process is ``python -c code`` (stderr in the log folder)."""
    m = ManagerProcess.__new__(ManagerProcess)
    m.log_dir = tmp_path
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        m.port = s.getsockname()[1]  # nothing answers there
    m.url_prefix = ""
    m.stdout_path, m.stderr_path = tmp_path / "nnictl_stdout.log", tmp_path / "nnictl_stderr.log"
    with open(m.stderr_path, "wb") as err:
        m.proc = subprocess.Popen([sys.executable, "-c", code], stderr=err, start_new_session=True)
    return m


def test_gives_up_without_progress(tmp_path):
    m = fake_manager(tmp_path, "import time; time.sleep(60)")
    t0 = time.monotonic()
    with pytest.raises(NnictlError, match="made no progress for 1 s"):
        m.wait_ready(lambda s: True, stall_seconds=1)
    assert time.monotonic() - t0 < 10
    assert m.proc.wait(5) == -signal.SIGKILL  # killed, with its process group


def test_waits_while_the_log_grows_then_reports_the_exit(tmp_path, capsys):
    code = ("import sys, time\n"
            "log = open(sys.argv[0] if False else %r, 'a')\n"
            "for i in range(25):\n"
            "    log.write('working %%d\\n' %% i); log.flush(); time.sleep(0.1)\n"
            "sys.stderr.write('Error: trialCommand: boom\\n'); sys.exit(3)\n") % str(tmp_path / "nnimanager.log")
    m = fake_manager(tmp_path, code)
    with pytest.raises(NnictlError) as err:
        m.wait_ready(lambda s: True, stall_seconds=1)  # 2.5 s of work outlasts the 1 s stall limit
    assert str(err.value) == "the experiment manager exited with code 3: trialCommand: boom"
    printed = capsys.readouterr().err
    assert "Last lines of" in printed and "working 24" in printed


def test_port_checks():
    with pytest.raises(NnictlError, match="--port: 70000 is not a TCP port"):
        check_port(70000)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(NnictlError, match=rf"port {port} is already in use by .*; choose another port with --port"):
            check_port(port)
    check_port(port)
