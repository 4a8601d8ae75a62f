"""Runners that connect back to the manager (``--connect``), through a real TCP listener."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time

import pytest

from nni.runtime import runner_protocol as rp
from nni.runtime.runner_listener import TOKEN_ENV, HandshakeError, RunnerListener, connect_to_manager
from nni.runtime.training_service import ExperimentContext, MetricEvent, StateEvent, TrialJobStatus, TrialSpec
from nni.testing.training_service import collect_until_final


def _ctx(tmp_path, command):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    return ExperimentContext("expconn1", str(tmp_path / "exp"), command, str(code))


def _param(params):
    return json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": params, "parameter_index": 0})


async def _start_runner(listener, runner_id, token=None, extra=()):
    env = {**os.environ, **listener.runner_env(runner_id)}
    if token is not None:
        env[TOKEN_ENV] = token
    return await asyncio.create_subprocess_exec(
        *listener.runner_command(runner_id, python=sys.executable, extra=extra), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


def test_connected_runner_runs_trials_and_closing_the_socket_stops_them(tmp_path):
    ctx = _ctx(tmp_path, "python -c 'import nni; p = nni.get_next_parameter(); nni.report_intermediate_result(1); "
                         "nni.report_final_result(p[\"x\"] * 2)'")

    async def go():
        listener = RunnerListener("127.0.0.1")
        await listener.start()
        listener.expect("r1")
        assert "NNI_RUNNER_TOKEN" not in " ".join(listener.runner_command("r1"))  # never in argv
        proc = await _start_runner(listener, "r1")
        client = await listener.wait_runner("r1", timeout=30)
        info = await client.hello(ctx, platform="slurm")
        await client.submit(TrialSpec("t1", 0, _param({"x": 21})))
        events = await collect_until_final(client, {"t1"}, 30)
        await client.aclose()
        rc = await asyncio.wait_for(proc.wait(), 20)
        await listener.close()
        return info, events, rc, proc

    info, events, rc, proc = asyncio.run(go())
    assert info.protocol_version == rp.PROTOCOL_VERSION
    metrics = [e.record for e in events if isinstance(e, MetricEvent)]
    assert [m["type"] for m in metrics] == ["PERIODICAL", "FINAL"] and json.loads(metrics[-1]["value"]) == 42
    assert [e.status for e in events if isinstance(e, StateEvent)][-1] == TrialJobStatus.SUCCEEDED
    env_file = tmp_path / "exp" / "trials" / "t1"
    assert env_file.is_dir()
    assert rc == 0


def test_wrong_token_and_unknown_runner_are_refused_with_a_reason(tmp_path):
    async def go():
        listener = RunnerListener("127.0.0.1")
        await listener.start()
        listener.expect("r1")
        host, port = listener.address
        with pytest.raises(HandshakeError, match="wrong token"):
            await connect_to_manager(f"{host}:{port}", "r1", token="nope", retry_for=1)
        with pytest.raises(HandshakeError, match="not expected"):
            await connect_to_manager(f"{host}:{port}", "r9", token="x", retry_for=1)
        proc = await _start_runner(listener, "r1", token="bad")
        rc = await asyncio.wait_for(proc.wait(), 20)
        err = (await proc.stderr.read()).decode()
        # a stranger on the port that never handshakes does not block the real runner
        raw = socket.create_connection((host, port))
        reader, writer = await connect_to_manager(f"{host}:{port}", "r1", token=listener._tokens["r1"], retry_for=1)
        client = await listener.wait_runner("r1", timeout=5)
        with pytest.raises(HandshakeError, match="already connected"):
            await connect_to_manager(f"{host}:{port}", "r1", token=listener._tokens["r1"], retry_for=1)
        raw.close()
        writer.close()
        await listener.close()
        return rc, err, client

    rc, err, client = asyncio.run(go())
    assert rc == 3 and "wrong token" in err and err.count("\n") <= 2  # one line, no traceback
    assert client.name.startswith("runner r1")


def test_unreachable_manager_is_one_line_and_exit_3(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    import subprocess

    out = subprocess.run([sys.executable, "-m", rp.RUNNER_MODULE, "--connect", f"127.0.0.1:{port}", "--runner-id", "x",
                          "--connect-timeout", "1"],
                         env={**os.environ, TOKEN_ENV: "t"}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3 and "cannot reach the manager" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", rp.RUNNER_MODULE, "--connect", "127.0.0.1:1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--runner-id" in out.stderr
    assert time.monotonic() - t0 < 20


def test_dropping_the_connection_cancels_running_trials(tmp_path):
    ctx = _ctx(tmp_path, "python -c 'import time; time.sleep(600)'")

    async def go():
        listener = RunnerListener("127.0.0.1")
        await listener.start()
        listener.expect("r2")
        proc = await _start_runner(listener, "r2")
        client = await listener.wait_runner("r2", timeout=30)
        await client.hello(ctx, options={"kill_grace": 1})
        await client.submit(TrialSpec("s1", 0, _param({})))
        async for event in client.events():
            if isinstance(event, StateEvent) and event.status == TrialJobStatus.RUNNING:
                break
        t0 = time.monotonic()
        await client.aclose()  # the manager goes away
        rc = await asyncio.wait_for(proc.wait(), 20)
        await listener.close()
        return rc, time.monotonic() - t0

    rc, took = asyncio.run(go())
    assert rc == 0 and took < 10
