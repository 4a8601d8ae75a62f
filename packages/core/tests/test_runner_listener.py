"""RunnerListener.start(): one error, naming the field, for an address that is not this machine's."""
from __future__ import annotations

import asyncio

import pytest

from nni.runtime.runner_listener import ListenError, RunnerListener


def _start(listener: RunnerListener) -> None:
    async def main():
        try:
            await listener.start()
        finally:
            await listener.close()

    asyncio.run(main())


@pytest.mark.parametrize("field", [None, "trainingService.nniManagerIp"])
def test_an_address_not_on_this_machine_is_one_line_naming_the_field(field):
    kwargs = {"field": field} if field else {}
    listener = RunnerListener("192.0.2.7", **kwargs)  # TEST-NET-1: never a local address
    with pytest.raises(ListenError) as info:
        _start(listener)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{field or 'nniManagerIp'}: cannot listen for trial runners on '192.0.2.7' ("), msg
    assert msg.endswith("give an address of this machine the jobs can reach")
    # a user error (ValueError) that callers catching OSError, as binding errors were, still catch
    assert isinstance(info.value, ValueError) and isinstance(info.value, OSError)


def test_a_local_address_listens_on_a_free_port():
    async def main():
        listener = RunnerListener("127.0.0.1")
        await listener.start()
        try:
            host, port = listener.address
            assert host == "127.0.0.1" and port > 0
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
        finally:
            await listener.close()

    asyncio.run(main())
