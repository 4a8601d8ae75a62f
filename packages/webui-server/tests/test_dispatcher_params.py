"""The config reaches the dispatcher through a file, the search space through the pipe: a
config far over Linux's 128 KB argument limit starts a real dispatcher (issue 11 item 3)."""
from __future__ import annotations

import asyncio
import json
import os
import stat

from nni.runtime.protocol import CommandType
from nni.server.dispatcher_client import DispatcherClient
from nni.server.dispatcher_launch import PARAMS_FILE


def test_megabyte_config_and_space_reach_the_dispatcher(tmp_path):
    space = {"x": {"_type": "choice", "_value": [f"{i:07d}" + "." * 200 for i in range(5000)]}}  # ~1 MB
    config = {"experimentName": "n" * 1_000_000, "tuner": {"name": "Random"}, "searchSpace": space}
    got: list = []
    failures: list = []

    async def run() -> None:
        client = DispatcherClient(config, tmp_path / "log", lambda c, p: got.append((c, p)), failures.append)
        await client.start()
        client.send(CommandType.Initialize, json.dumps(space))
        client.send(CommandType.RequestTrialJobs, "2")
        for _ in range(300):
            if len([c for c, _ in got if c == CommandType.NewTrialJob]) == 2 or failures:
                break
            await asyncio.sleep(0.05)
        await client.terminate()

    asyncio.run(run())
    assert not failures, failures
    assert [c for c, _ in got] == [CommandType.Initialized, CommandType.NewTrialJob, CommandType.NewTrialJob]
    assert json.loads(got[1][1])["parameters"]["x"] in space["x"]["_value"]
    params_file = tmp_path / "log" / PARAMS_FILE
    written = json.loads(params_file.read_text())
    assert written["experimentName"] == config["experimentName"] and "searchSpace" not in written
    assert stat.S_IMODE(os.stat(params_file).st_mode) == 0o600
    assert not [p for p in (tmp_path / "log").iterdir() if p.name.endswith(".tmp")]


def test_bad_params_file_is_a_one_line_error(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "p.json"
    bad.write_text("[1, 2]")
    proc = subprocess.run([sys.executable, "-m", "nni", "--exp_params_file", str(bad)], capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert f"--exp_params_file: {bad} must hold a JSON object".encode() in proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "-m", "nni", "--exp_params_file", str(tmp_path / "missing.json")], capture_output=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and b"--exp_params_file: cannot read" in proc.stdout + proc.stderr
