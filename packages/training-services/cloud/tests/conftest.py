"""Fast polling for every cloud service in these tests (jobs here start in milliseconds)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_poll(monkeypatch):
    monkeypatch.setenv("NNI_CLOUD_POLL_INTERVAL", "0.2")
