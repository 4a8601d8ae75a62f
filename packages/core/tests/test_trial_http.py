import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nni.runtime.platform.http import metrics_route, parameter_route


class FakeManager(BaseHTTPRequestHandler):
    parameters = {}
    metrics = []
    auth = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.auth.append(self.headers.get("Authorization"))
        prefix = "/api/v1/nni"
        for index, record in self.parameters.items():
            if self.path == prefix + parameter_route("EXP1", "TR1", index):
                body = json.dumps(record).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        assert self.path == "/api/v1/nni" + metrics_route("EXP1", "TR1")
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.metrics.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def manager():
    FakeManager.parameters = {0: {"parameter_id": 4, "parameter_source": "algorithm", "parameters": {"lr": 0.5}, "parameter_index": 0}}
    FakeManager.metrics = []
    FakeManager.auth = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeManager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/nni"
    server.shutdown()


def test_http_channel(tmp_path, manager):
    script = tmp_path / "trial.py"
    script.write_text("import nni\np = nni.get_next_parameter()\nprint(p)\nnni.report_intermediate_result(p['lr'])\nnni.report_final_result({'default': 1.5})\n")
    env = dict(os.environ, NNI_PLATFORM="remote", NNI_EXP_ID="EXP1", NNI_TRIAL_JOB_ID="TR1", NNI_TRIAL_SEQ_ID="3",
               NNI_MANAGER_URL=manager, NNI_MANAGER_TOKEN="secret")
    env.pop("NNI_SYS_DIR", None)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "{'lr': 0.5}"
    assert FakeManager.metrics == [
        {"parameter_id": 4, "trial_job_id": "TR1", "type": "PERIODICAL", "sequence": 0, "value": "0.5"},
        {"parameter_id": 4, "trial_job_id": "TR1", "type": "FINAL", "sequence": 0, "value": '{"default": 1.5}'},
    ]
    assert set(FakeManager.auth) == {"Bearer secret"}


def test_http_channel_reads_the_token_file_of_its_experiment(tmp_path, manager):
    """Without NNI_MANAGER_TOKEN the trial finds the token in its experiment's folder."""
    from nni.runtime.access import write_token

    exp_dir = tmp_path / "EXP1"
    trial_dir = exp_dir / "trials" / "TR1"
    trial_dir.mkdir(parents=True)
    write_token(exp_dir, "from-file")
    script = tmp_path / "trial.py"
    script.write_text("import nni\np = nni.get_next_parameter()\nnni.report_final_result(p['lr'])\n")
    env = dict(os.environ, NNI_PLATFORM="remote", NNI_EXP_ID="EXP1", NNI_TRIAL_JOB_ID="TR1", NNI_TRIAL_SEQ_ID="3",
               NNI_MANAGER_URL=manager, NNI_SYS_DIR=str(trial_dir))
    env.pop("NNI_MANAGER_TOKEN", None)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert len(FakeManager.metrics) == 1
    assert set(FakeManager.auth) == {"Bearer from-file"}
