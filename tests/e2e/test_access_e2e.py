"""``Experiment.start()`` prints a URL carrying the access token and talks to its manager with
it; ``token=False`` serves loopback without one and is refused elsewhere (issue 11, items 5-6)."""
from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.slow

TRIAL = "import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n"
SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}


def _get(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_start_prints_a_token_url_and_token_false(make_experiment, free_port, capsys):
    exp = make_experiment(TRIAL, SPACE, trial_concurrency=1, max_trial_number=1)
    exp.config.tuner.name = "Random"
    exp.start(free_port)
    try:
        out = capsys.readouterr().out
        token = (exp._exp_dir / "access_token").read_text()
        assert re.search(rf"Web UI URLs: http://127\.0\.0\.1:{free_port}/\?token={token}$", out, re.M)
        assert _get(f"http://127.0.0.1:{free_port}/api/v1/nni/check-status") == 401
        assert exp.get_status() in ("INITIALIZED", "RUNNING", "DONE", "NO_MORE_TRIAL")
    finally:
        exp.stop()
    with pytest.raises(ValueError, match="token=False: a token is mandatory when binding 127.0.0.2"):
        exp.start(free_port, host="127.0.0.2", token=False)
    exp.start(free_port, token=False)
    try:
        assert f"Web UI URLs: http://127.0.0.1:{free_port}\n" in capsys.readouterr().out
        assert _get(f"http://127.0.0.1:{free_port}/api/v1/nni/check-status") == 200
    finally:
        exp.stop()
