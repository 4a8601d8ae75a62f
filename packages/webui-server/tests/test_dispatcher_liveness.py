"""DispatcherClient.stalled_for against a real dispatcher process (Random tuner): 0 while it
reads its commands, growing while it is frozen with SIGSTOP (even with nothing asked of it:
the client's pings stay unread), back to 0 after SIGCONT."""
from __future__ import annotations

import asyncio
import json
import os
import signal

from nni.runtime.protocol import CommandType
from nni.server.dispatcher_client import DispatcherClient

CONFIG = {
    "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
    "trialCommand": "true",
    "trialConcurrency": 1,
    "tuner": {"name": "Random"},
    "trainingService": {"platform": "local"},
}


async def _until(predicate, timeout: float = 10) -> bool:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


def test_stall_seen_while_frozen_and_cleared_after(tmp_path):
    async def go():
        commands: list = []
        failures: list = []
        client = DispatcherClient(CONFIG, tmp_path / "log", lambda c, p: commands.append(c), failures.append)
        await client.start()
        try:
            client.send(CommandType.Initialize, json.dumps(CONFIG["searchSpace"]))
            for _ in range(200):
                if CommandType.Initialized in commands:
                    break
                await asyncio.sleep(0.05)
            assert CommandType.Initialized in commands
            assert client.stalled_for() == 0  # idle: sends a ping
            assert await _until(lambda: client.unread_bytes() == 0)  # the ping was read
            assert client.stalled_for() == 0

            os.kill(client.process.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(0.1)
                client.stalled_for()  # sends a ping the frozen dispatcher cannot read
                await asyncio.sleep(0.1)
                first = client.stalled_for()
                await asyncio.sleep(0.6)
                later = client.stalled_for()
                assert client.unread_bytes() > 0
                assert later >= first + 0.5 and later > 0
            finally:
                os.kill(client.process.pid, signal.SIGCONT)
            assert await _until(lambda: client.unread_bytes() == 0)
            assert client.stalled_for() == 0
            client.send(CommandType.RequestTrialJobs, "1")  # it still works
            for _ in range(100):
                if CommandType.NewTrialJob in commands:
                    break
                await asyncio.sleep(0.05)
            assert CommandType.NewTrialJob in commands and failures == []
        finally:
            await client.terminate()
        assert client.stalled_for() == 0  # not alive: nothing to report

    asyncio.run(go())
