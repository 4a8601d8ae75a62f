"""SshMachine against real sshd processes on 127.0.0.1."""
from __future__ import annotations

import asyncio
import logging
import time

import pytest

from nni.training_services.remote import SshError, SshMachine
from nni.training_services.remote.testing import SshServer, free_port


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_connect_with_key_runs_commands_with_python_path_first(key_server):
    async def go():
        m = SshMachine(key_server.machine())
        await m.connect()
        assert m.connected and repr(m) == f"SshMachine({key_server.name})"
        rc, out, err = await m.run("id -un; echo $PATH; echo oops >&2; exit 3")
        await m.close()
        assert not m.connected
        return rc, out, err

    rc, out, err = run(go())
    assert rc == 3 and err == "oops\n"
    user, path = out.splitlines()
    assert user == "root" and path.startswith(str(key_server.bin_dir) + ":")  # the account is a uid-0 alias


def test_connect_with_password(password_server):
    async def go():
        m = SshMachine(password_server.machine())
        await m.connect()
        rc, out, _ = await m.run("echo $HOME")
        await m.close()
        return rc, out

    assert run(go()) == (0, f"{password_server.account.home}\n")


def test_wrong_password_is_one_line_without_the_password(password_server, caplog):
    caplog.set_level(logging.DEBUG)
    machine = password_server.machine(password="not-the-password-42")
    m = SshMachine(machine)
    with pytest.raises(SshError) as info:
        run(m.connect_with_retry(attempts=3, first_delay=0.01))
    msg = str(info.value)
    assert info.value.kind == "auth" and not info.value.retryable
    assert msg == f"{password_server.name}: authentication failed with password; check user and password"
    for secret in ("not-the-password-42", password_server.account.password):
        assert secret not in msg and secret not in repr(m) and secret not in caplog.text
        assert secret not in str(m.config)


def test_missing_key_file_names_the_field(key_server, tmp_path):
    m = SshMachine(key_server.machine(sshKeyFile=str(tmp_path / "nope")))
    with pytest.raises(SshError, match=rf"{key_server.name}: sshKeyFile .*nope does not exist"):
        run(m.connect())


def test_unknown_host_key_refused_then_accepted_and_recorded(key_server, nni_known_hosts, monkeypatch):
    nni_known_hosts.write_text("")  # forget the fixture's trust
    with pytest.raises(SshError) as info:
        run(SshMachine(key_server.machine()).connect())
    msg = str(info.value)
    assert info.value.kind == "host_key" and "\n" not in msg
    assert msg.startswith(f"{key_server.name}: unknown host key ssh-ed25519 ")
    assert "NNI_SSH_ACCEPT_NEW_HOST_KEYS=1" in msg

    monkeypatch.setenv("NNI_SSH_ACCEPT_NEW_HOST_KEYS", "1")
    run(SshMachine(key_server.machine()).connect())
    assert nni_known_hosts.read_text() == key_server.known_hosts_line()

    monkeypatch.delenv("NNI_SSH_ACCEPT_NEW_HOST_KEYS")
    run(SshMachine(key_server.machine()).connect())  # recorded: now known
    assert nni_known_hosts.read_text() == key_server.known_hosts_line()  # recorded once


def test_changed_host_key_is_refused_even_when_accepting(key_server, nni_known_hosts, tmp_path):
    other = SshServer(tmp_path / "other")  # only for its different host key
    other.stop()  # (never started: removes its account)
    line = other.known_hosts_line().replace(f"]:{other.port} ", f"]:{key_server.port} ")
    nni_known_hosts.write_text(line)
    with pytest.raises(SshError) as info:
        run(SshMachine(key_server.machine(), accept_new_host_key=True).connect())
    assert info.value.kind == "host_key_changed" and "host key changed" in str(info.value)


def test_refused_port_gives_up_after_the_attempt_limit():
    port = free_port()
    m = SshMachine({"host": "127.0.0.1", "port": port, "user": "bob", "password": "pw-secret-1"})
    start = time.monotonic()
    with pytest.raises(SshError) as info:
        run(m.connect_with_retry(attempts=3, first_delay=0.1, factor=2))
    assert time.monotonic() - start >= 0.3  # waited 0.1 + 0.2 between the tries
    assert str(info.value) == (f"bob@127.0.0.1:{port}: connection refused; check host and port and that sshd runs "
                               f"there (gave up after 3 attempts)")


def test_open_stream_echoes_through_cat_with_eof_both_ways(key_server):
    async def go():
        m = SshMachine(key_server.machine())
        await m.connect()
        reader, writer = await m.open_stream("echo started >&2; cat; echo done >&2; exit 7")
        writer.write(b"one\n")
        await writer.drain()
        first = await reader.readline()
        writer.write(b"two\nthree")
        writer.write_eof()  # cat sees EOF, prints the rest and exits
        await writer.drain()
        rest = await reader.read()
        status = await writer.exit_status()
        writer.close()
        await writer.wait_closed()
        await m.close()
        return first, rest, status, writer.stderr_tail()

    first, rest, status, stderr = run(go())
    assert (first, rest, status) == (b"one\n", b"two\nthree", 7)
    assert stderr == "started\ndone\n"


def test_stream_ends_and_reconnect_backs_off_when_sshd_is_killed_and_restarted(key_server):
    async def go():
        m = SshMachine(key_server.machine(), keepalive=1)
        await m.connect()
        reader, writer = await m.open_stream("cat")
        long_command = asyncio.create_task(m.run("sleep 30"))
        await asyncio.sleep(0.3)
        key_server.kill()
        with pytest.raises(SshError, match="connection dropped while running a command"):
            await asyncio.wait_for(long_command, 20)  # sshd and its sessions die: our stream must end, not hang
        assert await asyncio.wait_for(reader.read(), 20) == b""
        assert await writer.exit_status() == -1
        with pytest.raises(SshError) as info:
            await m.run("true")
        assert info.value.kind == "closed" and info.value.retryable

        async def restart_later():
            await asyncio.sleep(0.8)
            key_server.start()

        restarter = asyncio.create_task(restart_later())
        start = time.monotonic()
        await m.connect_with_retry(attempts=10, first_delay=0.2, factor=2, max_delay=1)
        waited = time.monotonic() - start
        await restarter
        rc, out, _ = await m.run("echo back")
        await m.close()
        return waited, rc, out

    waited, rc, out = run(go())
    assert waited >= 0.6 and (rc, out) == (0, "back\n")


def test_runner_speaks_over_an_ssh_stream(key_server):
    """R1's trial runner started on the remote over open_stream answers the protocol."""
    pytest.importorskip("nni.training_services.local.runner")
    from nni.runtime.runner_client import RunnerClient

    async def go():
        m = SshMachine(key_server.machine())
        await m.connect()
        reader, writer = await m.open_stream("python3 -m nni.training_services.local.runner")
        client = RunnerClient(reader, writer, name=f"runner on {m.name}")
        rtt = await client.ping()
        await client.stop(timeout=20)
        status = await writer.exit_status()
        await m.close()
        return rtt, status

    rtt, status = run(go())
    assert rtt >= 0 and status == 0
