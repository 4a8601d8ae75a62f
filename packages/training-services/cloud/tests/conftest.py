"""What every cloud test shares: fast polling, the stand-in services, and the two runs most tests
make (trials run to their end; a running trial whose job the cloud fails)."""
from __future__ import annotations

import asyncio

import pytest

from nni.runtime.training_service import TrialSpec
from nni.training_services.cloud.testing import (
    DlcStandIn,
    DltsStandIn,
    OpenpaiStandIn,
    collect,
    finished,
    parameter,
    wait_running,
)


@pytest.fixture(autouse=True)
def _fast_poll(monkeypatch):
    monkeypatch.setenv("NNI_CLOUD_POLL_INTERVAL", "0.2")


@pytest.fixture
def pai(tmp_path):
    """OpenPAI's v2 REST API on 127.0.0.1."""
    with OpenpaiStandIn(tmp_path / "pai") as server:
        yield server


@pytest.fixture
def dlc(tmp_path, monkeypatch):
    """PAI-DLC's signed ROA API on 127.0.0.1 (``NNI_DLC_ENDPOINT`` points at it)."""
    with DlcStandIn(tmp_path / "dlc") as server:
        monkeypatch.setenv("NNI_DLC_ENDPOINT", server.url)
        yield server


@pytest.fixture
def dlts(tmp_path, monkeypatch):
    """A DLTS dashboard's jobs API on 127.0.0.1, with the account settings in the environment."""
    with DltsStandIn(tmp_path / "dlts") as server:
        for key, value in (("DLTS_CLUSTER", server.cluster), ("DLTS_TEAM", "platform"), ("DLTS_EMAIL", server.email),
                           ("DLTS_PASSWORD", server.password)):
            monkeypatch.setenv(key, value)
        yield server


def _started(ts, body):
    """Run ``body()`` between ``ts.start()`` and ``ts.stop()``."""
    async def main():
        await ts.start()
        try:
            return await body()
        finally:
            await ts.stop()

    return asyncio.run(main())


@pytest.fixture
def run_trials():
    """``run_trials(ts, ids)``: start ``ts``, submit trial ``ids[i]`` with :func:`parameter` ``(i)``,
    wait until all ended, stop; returns ``(states, metrics)`` (see :func:`collect`)."""
    def run(ts, trial_ids):
        async def body():
            for i, trial_id in enumerate(trial_ids):
                await ts.submit(TrialSpec(trial_id, i, parameter(i)))
            return await collect(ts, finished(len(trial_ids)))

        return _started(ts, body)

    return run


@pytest.fixture
def lose_running_trial():
    """``lose_running_trial(ts, cloud, reason)``: a trial ``slow1`` runs until ``cloud`` (a stand-in)
    fails its job with ``reason``; returns the trial's last StateEvent."""
    def run(ts, cloud, reason):
        async def body():
            await ts.submit(TrialSpec("slow1", 0, parameter(0, sleep=30)))
            await wait_running(ts, "slow1")
            cloud.fail(cloud.running()[0], reason)
            return await collect(ts, finished(1))

        states, _ = _started(ts, body)
        return states["slow1"][-1]

    return run
