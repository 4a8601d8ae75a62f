"""Fixtures of the web UI browser suite: one real running experiment (started through
``nni.experiment.Experiment``, the engine's Python API) and Debian's chromium driven by
Playwright. Screenshots go to ``artifacts/webui/`` (gitignored)."""
from __future__ import annotations

import os
import shutil
import textwrap
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("NNI_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "webui"

TRIAL = textwrap.dedent('''
    import time
    import nni

    params = nni.get_next_parameter()
    seq = nni.get_sequence_id()
    if seq == 2:
        raise SystemExit("trial 2 fails on purpose, before any metric")   # FAILED, no metric at all
    steps = 400 if seq == 3 else 4                                        # trial 3 runs until killed
    for i in range(steps):
        time.sleep(0.8)
        nni.report_intermediate_result({"default": params["x"] * (i + 1) / steps, "loss": 1 - params["x"]})
    if seq == 4:
        nni.report_final_result({"default": float("nan"), "loss": 0.5})  # a metric that is not a number
    else:
        nni.report_final_result({"default": params["x"], "loss": 1 - params["x"]})
''')

SEARCH_SPACE = {
    "x": {"_type": "uniform", "_value": [0, 1]},
    "optimizer": {"_type": "choice", "_value": ["sgd", "adam"]},
    "lr": {"_type": "loguniform", "_value": [0.0001, 0.1]},
}


def _need_chromium() -> None:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A running local experiment: concurrency 2, Random tuner, trial 2 fails, trial 3 runs long."""
    _need_chromium()
    from nni.experiment import Experiment
    from nni.server.testing import free_port

    code = tmp_path_factory.mktemp("webui-trial")
    (code / "trial.py").write_text(TRIAL, encoding="utf-8")
    exp = Experiment("local")
    exp.config.experiment_name = "webui-e2e"
    exp.config.trial_command = "python3 trial.py"
    exp.config.trial_code_directory = str(code)
    exp.config.trial_concurrency = 2
    exp.config.max_trial_number = 200
    exp.config.search_space = SEARCH_SPACE
    exp.config.tuner.name = "Random"
    exp.start(free_port())
    client = exp._client
    deadline = time.time() + 90
    while time.time() < deadline:  # wait for a few results, the failed trial and the long one
        jobs = client.call("list_trial_jobs")
        status = {j["sequenceId"]: j["status"] for j in jobs}
        finished = {seq for seq, st in status.items() if st in ("SUCCEEDED", "FAILED")}
        if {0, 1, 2, 4} <= finished and status.get(3) == "RUNNING":
            break
        time.sleep(0.5)
    else:
        exp.stop()
        raise AssertionError(f"the experiment did not reach the expected state in 90 s: {status}")
    yield exp
    exp.stop()


@pytest.fixture(scope="module")
def browser():
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A Playwright page that records console errors and uncaught exceptions."""

    def __init__(self, page, base: str):
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def open(self, path: str):
        self.page.goto(self.base + path)
        self.page.wait_for_selector('body[data-ready="1"]', state="attached", timeout=30000)
        return self.page

    def assert_no_errors(self):
        assert self.errors == [], "\n".join(self.errors)


@pytest.fixture
def ui(browser, experiment):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = Page(context.new_page(), f"http://127.0.0.1:{experiment.port}/")
    # The printed URL carries the access token: the manager keeps it in an HttpOnly cookie and
    # redirects to the clean URL; every later page and API request of the UI carries the cookie.
    page.page.goto(experiment.url)
    assert page.page.url == page.base, page.page.url
    yield page
    context.close()
    page.assert_no_errors()
