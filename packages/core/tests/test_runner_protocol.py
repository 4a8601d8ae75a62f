"""The trial-runner protocol (framing, validation, dataclass round trips) and RunnerClient over a
real OS pipe pair against a peer that speaks the protocol line by line."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os

import pytest

from nni.runtime import runner_protocol as rp
from nni.runtime.runner_client import RunnerClient, RunnerConnectionLost, RunnerError, RunnerTimeout
from nni.runtime.training_service import (
    ExperimentContext,
    MetricEvent,
    RequestNeverSatisfiable,
    StateEvent,
    TrialJobDetail,
    TrialJobStatus,
    TrialSpec,
)

CTX = ExperimentContext("exp1", "/w/exp1", "python t.py", "/w/code", trial_gpu_number=1, max_trial_duration=30.0)


def test_encode_is_one_json_line_and_decode_keeps_every_field():
    line = rp.encode("submit", id=3, spec={"trial_id": "a\nb"}, future_field=[1])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    msg = rp.decode(line, rp.MANAGER_MESSAGES)
    assert msg == {"type": "submit", "id": 3, "spec": {"trial_id": "a\nb"}, "future_field": [1]}


@pytest.mark.parametrize(
    "line, expected",
    [
        (b"not json\n", "the line is not JSON"),
        (b"[1, 2]\n", "must be a JSON object"),
        (b'{"type": "launch", "id": 1}\n', "type: unknown message type 'launch'; allowed: cancel, hello, ping"),
        (b'{"id": 1}\n', "unknown message type None"),
        (b'{"type": "submit", "id": 1}\n', "submit: missing field(s) spec"),
        (b"\xff\xfe\n", "not UTF-8"),
    ],
)
def test_malformed_lines_give_one_line_errors(line, expected):
    with pytest.raises(rp.RunnerProtocolError) as info:
        rp.decode(line, rp.MANAGER_MESSAGES)
    text = str(info.value)
    assert expected in text and "\n" not in text


def test_runner_messages_are_not_manager_messages():
    with pytest.raises(rp.RunnerProtocolError, match="unknown message type 'ready'"):
        rp.decode(rp.encode("ready", reply_to=1, protocol_version=1, nni_version="x"), rp.MANAGER_MESSAGES)
    assert rp.decode(rp.encode("ready", reply_to=1, protocol_version=1, nni_version="x"))["type"] == "ready"


def test_version_check_names_both_versions_and_the_fix():
    rp.check_version(rp.PROTOCOL_VERSION)
    with pytest.raises(rp.RunnerProtocolError) as info:
        rp.check_version(99, "the runner on box1")
    text = str(info.value)
    assert text.startswith("protocol_version: the runner on box1 speaks runner protocol 99")
    assert f"speaks {rp.PROTOCOL_VERSION}" in text and "install the same nni-core" in text and "\n" not in text


def test_context_spec_and_detail_round_trip():
    assert rp.context_from_wire(json.loads(json.dumps(rp.context_to_wire(CTX)))) == CTX
    spec = TrialSpec("abcde", 4, '{"parameters": {}}', command="echo", env={"A": "1"}, gpu_number=2)
    assert rp.spec_from_wire(json.loads(json.dumps(rp.spec_to_wire(spec)))) == spec
    detail = TrialJobDetail("abcde", TrialJobStatus.RUNNING, 4, 1000, "/w/exp1/trials/abcde", start_time=1001, gpu_indices=[0])
    back = rp.detail_from_wire(json.loads(json.dumps(rp.detail_to_wire(detail))))
    assert back == detail and back.status is TrialJobStatus.RUNNING
    # a newer peer's unknown fields are ignored by the dataclasses, not an error
    assert rp.detail_from_wire({**rp.detail_to_wire(detail), "new_field": 1}) == detail


def test_events_round_trip_with_every_dataclass_field():
    state = StateEvent("abcde", TrialJobStatus.FAILED, 1234, "exit code 3", 3)
    line = rp.event_to_wire(state)
    msg = rp.decode(line, rp.RUNNER_MESSAGES)
    assert msg["type"] == "state" and msg["status"] == "FAILED"
    for f in dataclasses.fields(StateEvent):  # fields added to StateEvent later travel too
        assert f.name in msg
    assert rp.event_from_wire(msg) == state
    metric = MetricEvent("abcde", {"type": "FINAL", "sequence": 0, "value": "0.5", "parameter_id": 0, "trial_job_id": "abcde"}, 99)
    assert rp.event_from_wire(rp.decode(rp.event_to_wire(metric))) == metric
    # a field this side's StateEvent lacks stays in the message and does not break the event
    assert rp.event_from_wire({**msg, "from_the_future": True}) == state


# ----- RunnerClient over a real pipe pair -----


class ScriptedRunner:
    """The runner's end of two OS pipes, answering each request with a scripted function."""

    def __init__(self, answer):
        self.answer = answer
        self.received: list[dict] = []

    async def open(self, callables: bool = False) -> RunnerClient:
        loop = asyncio.get_running_loop()
        to_runner_r, to_runner_w = os.pipe()
        to_client_r, to_client_w = os.pipe()
        # client side
        c_reader = asyncio.StreamReader(limit=rp.MAX_LINE_BYTES)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(c_reader), os.fdopen(to_client_r, "rb", 0))
        t, p = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(to_runner_w, "wb", 0))
        c_writer = asyncio.StreamWriter(t, p, None, loop)
        # runner side
        self.reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self.reader), os.fdopen(to_runner_r, "rb", 0))
        t2, p2 = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(to_client_w, "wb", 0))
        self.writer = asyncio.StreamWriter(t2, p2, None, loop)
        self.task = loop.create_task(self.serve())
        if callables:  # how a transport without asyncio streams plugs in (e.g. a paramiko channel in a thread)
            return RunnerClient(c_reader.readline, c_writer.write, reply_timeout=2, name="runner on test")
        return RunnerClient(c_reader, c_writer, reply_timeout=2, name="runner on test")

    async def serve(self):
        while True:
            line = await self.reader.readline()
            if not line:
                self.writer.close()
                return
            msg = rp.decode(line, rp.MANAGER_MESSAGES)
            self.received.append(msg)
            for out in self.answer(msg):
                if out is None:  # hang up
                    self.writer.close()
                    return
                self.writer.write(out)
            await self.writer.drain()


def _happy(msg):
    kind, rid = msg["type"], msg["id"]
    if kind == "hello":
        yield b"SSH banner noise\n"  # not protocol: noted, skipped
        yield rp.encode("ready", reply_to=rid, protocol_version=rp.PROTOCOL_VERSION, nni_version="0.1.0", hostname="box",
                        gpus=[{"index": 0, "activeProcessNum": 0}], extra="kept")
    elif kind == "submit":
        spec = msg["spec"]
        if spec["gpu_number"] == 9:
            yield rp.encode("submitted", reply_to=rid, trial_id=spec["trial_id"], error="trialGpuNumber: 9 > 1",
                            error_type="RequestNeverSatisfiable")
            return
        detail = TrialJobDetail(spec["trial_id"], TrialJobStatus.WAITING, spec["sequence_id"], 5, "/w/t")
        yield rp.encode("submitted", reply_to=rid, trial_id=spec["trial_id"], detail=rp.detail_to_wire(detail))
        yield rp.event_to_wire(StateEvent(spec["trial_id"], TrialJobStatus.RUNNING, 6))
        yield rp.event_to_wire(MetricEvent(spec["trial_id"], {"type": "FINAL", "sequence": 0, "value": "1"}, 7))
    elif kind == "send_parameter":
        yield rp.encode("error", reply_to=rid, error="unknown trial 'nope'", error_type="KeyError")
    elif kind == "cancel":
        yield rp.encode("error", reply_to=rid, error="cancel: disk on fire", error_type="OSError")
    elif kind == "ping":
        yield rp.encode("error", error="line 7: not JSON")  # unsolicited
        yield rp.encode("pong", reply_to=rid, time=1)
    elif kind == "stop":
        yield rp.encode("stopped", reply_to=rid, reason="asked")
        yield None


@pytest.mark.parametrize("callables", [False, True], ids=["streams", "callables"])
def test_client_requests_replies_events_and_errors(callables):
    async def go():
        runner = ScriptedRunner(_happy)
        client = await runner.open(callables)
        info = await client.hello(CTX, {"useActiveGpu": True, "trialConcurrency": 3, "gpuIndices": "0"}, platform="remote")
        assert info.hostname == "box" and info.gpus == [{"index": 0, "activeProcessNum": 0}] and info.raw["extra"] == "kept"
        hello = runner.received[0]
        assert hello["config"] == {"useActiveGpu": True, "gpuIndices": "0"}  # only what the runner reads
        assert hello["platform"] == "remote" and rp.context_from_wire(hello["context"]) == CTX
        assert client.errors and "not JSON" in client.errors[0]

        detail = await client.submit(TrialSpec("abcde", 2, "{}"))
        assert detail.id == "abcde" and detail.status is TrialJobStatus.WAITING and detail.sequence_id == 2
        with pytest.raises(RequestNeverSatisfiable, match="trialGpuNumber: 9 > 1"):
            await client.submit(TrialSpec("big01", 3, "{}", gpu_number=9))
        with pytest.raises(KeyError):
            await client.send_parameter("nope", "{}")
        with pytest.raises(RunnerError, match="runner on test: cancel: disk on fire"):
            await client.cancel("abcde", early_stopped=True)
        assert runner.received[-1]["early_stopped"] is True and runner.received[-1]["status"] is None
        assert await client.ping() < 2
        assert client.errors[-1] == "line 7: not JSON"

        events = client.get_nowait()
        assert events == [StateEvent("abcde", TrialJobStatus.RUNNING, 6),
                          MetricEvent("abcde", {"type": "FINAL", "sequence": 0, "value": "1"}, 7)]
        await client.stop(timeout=5)
        assert client.closed.result() == "the runner stopped: asked"
        assert [e async for e in client.events()] == []  # the feed has ended
        with pytest.raises(RunnerConnectionLost):
            await client.submit(TrialSpec("late1", 4, "{}"))

    asyncio.run(go())


def test_client_times_out_and_notices_a_lost_stream():
    def hang_after_ping(msg):
        if msg["type"] == "ping":
            return  # no answer
        yield None  # anything else: the runner hangs up without "stopped"

    async def go():
        runner = ScriptedRunner(hang_after_ping)
        client = await runner.open()
        client.reply_timeout = 0.2
        with pytest.raises(RunnerTimeout, match=r"runner on test: no answer to ping within 0.2 s"):
            await client.ping()
        client.reply_timeout = 5
        with pytest.raises(RunnerConnectionLost, match="no answer to submit: the runner's stream ended without 'stopped'"):
            await client.submit(TrialSpec("abcde", 0, "{}"))
        reason = await asyncio.wait_for(client.closed, 2)
        assert "ended without 'stopped'" in reason
        await client.stop(timeout=2)  # a runner already gone: nothing to do

    asyncio.run(go())


def test_client_rejects_a_runner_of_another_protocol_version():
    def old_runner(msg):
        yield rp.encode("error", reply_to=msg["id"], error_type="RunnerProtocolError",
                        error="protocol_version: the manager speaks runner protocol 1 but this side (nni-core 0.0.1) speaks 0; "
                              "install the same nni-core version on the manager and the worker")

    async def go():
        client = await ScriptedRunner(old_runner).open()
        with pytest.raises(rp.RunnerProtocolError, match="^protocol_version: .* install the same nni-core"):
            await client.hello(CTX)

    asyncio.run(go())
