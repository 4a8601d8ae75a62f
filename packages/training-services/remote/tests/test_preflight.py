"""preflight() against real sshd processes: what it finds, and one-line failures naming the machine."""
from __future__ import annotations

import asyncio
import importlib.metadata
import platform

import pytest

from nni.training_services.remote import RemoteMachineError, SshError, SshMachine, preflight


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def check(machine_dict, **kwargs):
    async def go():
        m = SshMachine(machine_dict)
        try:
            return await preflight(m, **kwargs)
        finally:
            await m.close()

    return run(go())


def test_finds_python_nni_runner_and_fake_gpus(key_server):
    info = check(key_server.machine())
    assert info.name == key_server.name
    assert info.python == str(key_server.bin_dir / "python3")  # the wrapper: the per-machine env hook
    assert info.python_version == platform.python_version()
    assert info.nni_version == importlib.metadata.version("nni-core")
    assert info.runner_module == "nni.training_services.local.runner"
    assert info.gpu_count == 2


def test_password_machine_without_gpus(password_server):
    info = check(password_server.machine())
    assert info.gpu_count == 0 and info.nni_version == importlib.metadata.version("nni-core")


def test_wrong_password_fails_preflight_in_one_line(password_server):
    with pytest.raises(SshError) as info:
        check(password_server.machine(password="wrong-pw-77"))
    msg = str(info.value)
    assert msg == f"{password_server.name}: authentication failed with password; check user and password"
    assert "wrong-pw-77" not in msg


def test_unknown_host_key_fails_preflight_in_one_line(key_server, nni_known_hosts):
    nni_known_hosts.unlink()
    with pytest.raises(SshError, match=rf"^{key_server.name}: unknown host key .*NNI_SSH_ACCEPT_NEW_HOST_KEYS=1"):
        check(key_server.machine())


def test_nni_version_mismatch(key_server):
    with pytest.raises(RemoteMachineError) as info:
        check(key_server.machine(), manager_version="99.4.1")
    msg = str(info.value)
    assert msg.startswith(f"{key_server.name}: nni-core {importlib.metadata.version('nni-core')} is installed for ")
    assert msg.endswith("but the manager runs 99.4.1; install the same major.minor version there")


def test_runner_module_missing(key_server):
    with pytest.raises(RemoteMachineError, match=rf"^{key_server.name}: the trial runner nni\.no_such_runner is not "
                                                 r"importable by .*; install nni-ts-local"):
        check(key_server.machine(), runner_module="nni.no_such_runner")


def test_nni_not_installed(key_server, tmp_path):
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    wrapper = bare / "python3"  # a Python without nni: -I ignores the venv's site-packages and PYTHONPATH
    wrapper.write_text(f"#!/bin/sh\nexec {key_server.bin_dir / 'python3'} -I -S \"$@\"\n")
    wrapper.chmod(0o755)
    with pytest.raises(RemoteMachineError) as info:
        check(key_server.machine(pythonPath=str(bare)))
    assert str(info.value).startswith(f"{key_server.name}: nni is not installed for ")
    assert "pythonPath" in str(info.value)


def test_python_that_does_not_run(key_server, tmp_path):
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    (broken / "python3").write_text(
        "#!/bin/sh\necho 'libpython3.11.so: cannot open shared object file' >&2\nexit 127\n")
    (broken / "python3").chmod(0o755)
    with pytest.raises(RemoteMachineError) as info:
        check(key_server.machine(pythonPath=str(broken)))
    assert str(info.value) == (f"{key_server.name}: {broken}/python3 does not run (libpython3.11.so: cannot open "
                               f"shared object file); set pythonPath to a working Python 3 environment")
