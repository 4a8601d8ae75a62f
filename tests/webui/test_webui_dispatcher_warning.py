"""The overview shows a dispatcher that stopped answering (SIGSTOP) as a warning, and drops it
once the dispatcher reads its commands again (SIGCONT). Headless Chromium against a real
experiment started through ``nni.experiment.Experiment``."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TRIAL = "import time, nni\nnni.get_next_parameter()\ntime.sleep(0.2)\nnni.report_final_result(1)\n"


def _dispatcher_pid(manager_pid: int) -> int:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == manager_pid and b"--command_fds" in cmd:
            return int(stat.parent.name)
    raise AssertionError(f"no dispatcher under manager {manager_pid}")


def test_overview_shows_and_clears_the_dispatcher_warning(browser, tmp_path, monkeypatch):
    from nni.experiment import Experiment
    from nni.server.testing import free_port, wait_until

    monkeypatch.setenv("NNI_DISPATCHER_TIMEOUT", "1")
    (tmp_path / "trial.py").write_text(TRIAL, encoding="utf-8")
    exp = Experiment("local")
    exp.config.trial_command = "python3 trial.py"
    exp.config.trial_code_directory = str(tmp_path)
    exp.config.trial_concurrency = 1
    exp.config.max_trial_number = 1000
    exp.config.search_space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    exp.config.tuner.name = "Random"
    exp.start(free_port())
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    dispatcher = None
    try:
        dispatcher = _dispatcher_pid(exp._process.pid)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(exp.url)
        page.wait_for_selector('body[data-ready="1"]', state="attached", timeout=30000)
        assert page.locator('[data-testid="exp-warning"]').count() == 0

        os.kill(dispatcher, signal.SIGSTOP)
        wait_until(lambda: exp._client.call("get_status").get("warnings"), 20, "the warning in check-status")
        page.click('[data-testid="refresh"]')
        box = page.wait_for_selector('[data-testid="exp-warning"]', timeout=20000)
        assert "has not read its commands for more than 1 s" in box.inner_text()
        assert page.locator('[data-testid="exp-status"]').inner_text() == "RUNNING"
        assert page.locator('[data-testid="exp-error"]').count() == 0

        os.kill(dispatcher, signal.SIGCONT)
        wait_until(lambda: "warnings" not in exp._client.call("get_status"), 20, "the warning to clear")
        page.click('[data-testid="refresh"]')
        page.wait_for_selector('[data-testid="exp-warning"]', state="detached", timeout=20000)
        assert errors == []
    finally:
        if dispatcher is not None:
            try:
                os.kill(dispatcher, signal.SIGCONT)
            except ProcessLookupError:
                pass
        context.close()
        exp.stop()
