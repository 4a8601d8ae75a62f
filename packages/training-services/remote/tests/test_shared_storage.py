"""sharedStorage on the remote platform against real OpenSSH servers on 127.0.0.1.

The fixtures' machines are this host, so a ``remoteMountPoint`` equal to ``localMountPoint``
shows the storage to them (NNI sees its marker and mounts nothing). Where it does not, fake
``mount`` / ``umount`` / ``sudo`` in the machine's ``pythonPath`` log their arguments and "mount"
the storage by linking the mount point to the shared folder. A real NFS server cannot run in this
container (see the README).
"""
from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import textwrap
from pathlib import Path

import pytest

from nni.runtime.experiment_profile import mask_secrets
from nni.runtime.training_service import ExperimentContext, MetricEvent, StateEvent, TrialJobStatus, TrialSpec
from nni.training_services.remote.service import RemoteTrainingService
from nni.training_services.remote.shared_storage import SharedStorageError, resolve_remote_point

TRIAL = textwrap.dedent(
    """\
    import os, nni
    p = nni.get_next_parameter()
    nni.report_intermediate_result(p["x"] / 2)
    nni.report_final_result(p["x"])
    print("platform", os.environ["NNI_PLATFORM"], "cwd", os.getcwd())
    """
)

# logs its arguments, then "mounts" by linking the mount point (its last argument) to the shared folder
FAKE_MOUNT = """#!/bin/sh
echo "mount $*" >> {log}
{fail}
for a in "$@"; do point="$a"; done
rmdir "$point" && ln -s {shared} "$point"
"""
FAKE_UMOUNT = """#!/bin/sh
echo "umount $*" >> {log}
rm -f "$1"
"""
FAKE_SUDO = """#!/bin/sh
echo "sudo $*" >> {log}
[ "$1" = -n ] && shift
exec "$@"
"""


@pytest.fixture
def experiment_id():
    eid = "ss" + secrets.token_hex(3)
    yield eid
    shutil.rmtree(Path.home() / "nni-experiments" / eid, ignore_errors=True)


def _code(tmp_path):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "trial.py").write_text(TRIAL)
    (code / ".nniignore").write_text("data/\n")
    (code / "data").mkdir(exist_ok=True)
    (code / "data" / "big.bin").write_bytes(b"x" * 1000)
    return code


def _storage(shared, remote, local_mounted="usermount"):
    return {"storageType": "NFS", "localMountPoint": str(shared), "remoteMountPoint": str(remote),
            "localMounted": local_mounted, "nfsServer": "nfs.example", "exportedDirectory": "/export/nni"}


def _context(tmp_path, code, eid, storage):
    return ExperimentContext(eid, str(tmp_path / "exp"), "python3 trial.py", str(code), shared_storage=storage)


def _param(i):
    return json.dumps({"parameter_id": i, "parameter_source": "algorithm", "parameters": {"x": i}})


def _fake_tools(server, shared, fail=""):
    log = server.workdir / "tools.log"
    for name, text in (("mount", FAKE_MOUNT), ("umount", FAKE_UMOUNT), ("sudo", FAKE_SUDO)):
        path = server.bin_dir / name
        path.write_text(text.format(log=log, shared=shared, fail=fail))
        path.chmod(0o755)
    return log


async def _run(ts, n):
    states, metrics = {}, {}

    async def collect():
        async for ev in ts.events():
            if isinstance(ev, StateEvent):
                states.setdefault(ev.trial_id, []).append(ev)
                if sum(1 for evs in states.values() if evs[-1].status.is_final) >= n:
                    return
            elif isinstance(ev, MetricEvent):
                metrics.setdefault(ev.trial_id, []).append(ev.record)

    await ts.start()
    try:
        for i in range(n):
            await ts.submit(TrialSpec(f"t{i:04d}", i, _param(i)))
        await asyncio.wait_for(collect(), 60)
    finally:
        await ts.stop()
    return states, metrics


def test_usermount_trials_of_two_machines_write_into_the_shared_folder(tmp_path, key_server, password_server, experiment_id):
    shared = tmp_path / "shared"
    shared.mkdir()
    code = _code(tmp_path)
    config = {"platform": "remote", "machineList": [key_server.machine(), password_server.machine()]}
    ts = RemoteTrainingService(config, _context(tmp_path, code, experiment_id, _storage(shared, shared)))
    logs = [_fake_tools(s, shared) for s in (key_server, password_server)]

    states, metrics = asyncio.run(_run(ts, 6))

    assert all(evs[-1].status == TrialJobStatus.SUCCEEDED for evs in states.values()), states
    assert all([r["type"] for r in metrics[f"t{i:04d}"]] == ["PERIODICAL", "FINAL"] for i in range(6)), metrics
    root = shared / "nni" / experiment_id
    assert (root / "code" / "trial.py").is_file() and not (root / "code" / "data").exists()  # .nniignore kept
    for d in ts.list_trial_jobs():
        trial_dir = root / "trials" / d.id
        assert d.working_directory == str(trial_dir)
        out = (trial_dir / "stdout").read_text()  # written there by the machine
        assert f"platform remote cwd {root / 'code'}" in out  # ran in the shared copy of the code
        # the experiment folder's copy (what nnictl log / the web UI read) is a local copy of it
        assert (tmp_path / "exp" / "trials" / d.id / "stdout").read_text() == out
    hosts = {d.url.split("@")[1].split("/")[0] for d in ts.list_trial_jobs()}
    assert len(hosts) == 2, hosts
    for server in (key_server, password_server):  # no per-machine code upload
        assert not list((server.account.home / "nni-experiments" / experiment_id).glob("envs/*/code"))
    assert not any(log.exists() for log in logs)  # visible through the marker: nothing mounted
    assert not list(root.glob(".nni-storage-*"))  # the marker is gone after stop


def test_a_machine_that_does_not_see_the_storage_mounts_it_and_unmounts_at_stop(tmp_path, key_server, password_server, experiment_id):
    shared = tmp_path / "shared"
    shared.mkdir()
    code = _code(tmp_path)
    # relative remoteMountPoint: under each login home; the key machine already sees the storage there
    (key_server.account.home / "nni-shared-storage").symlink_to(shared)
    key_log, pw_log = _fake_tools(key_server, shared), _fake_tools(password_server, shared)
    config = {"platform": "remote", "machineList": [key_server.machine(), password_server.machine()]}
    ts = RemoteTrainingService(config, _context(tmp_path, code, experiment_id, _storage(shared, "./nni-shared-storage")))

    states, _ = asyncio.run(_run(ts, 4))

    assert all(evs[-1].status == TrialJobStatus.SUCCEEDED for evs in states.values()), states
    point = f"{password_server.account.home}/nni-shared-storage"
    assert pw_log.read_text().splitlines() == [f"mount -t nfs nfs.example:/export/nni {point}", f"umount {point}"]
    assert not key_log.exists()
    assert not Path(point).exists()  # the fake umount removed the link
    urls = {d.url for d in ts.list_trial_jobs()}
    assert any(point in u for u in urls), urls  # trials ran under the mount point on that machine
    assert all((shared / "nni" / experiment_id / "trials" / d.id / "stdout").is_file() for d in ts.list_trial_jobs())


def test_a_failing_mount_is_one_line_naming_the_machine(tmp_path, key_server, experiment_id):
    shared = tmp_path / "shared"
    shared.mkdir()
    code = _code(tmp_path)
    _fake_tools(key_server, shared, fail='echo "mount.nfs: access denied by server while mounting" >&2; exit 32')
    config = {"platform": "remote", "machineList": [key_server.machine()]}
    ts = RemoteTrainingService(config, _context(tmp_path, code, experiment_id, _storage(shared, "nni-shared-storage")))
    with pytest.raises(Exception) as info:
        asyncio.run(ts.start())
    text = str(info.value)
    assert "\n" not in text and key_server.name in text
    assert "mount -t nfs nfs.example:/export/nni" in text and "access denied by server" in text and "passwordless sudo" in text


def test_non_reuse_mode_and_a_missing_usermount_folder_are_refused(tmp_path):
    code = _code(tmp_path)
    shared = tmp_path / "shared"
    ts = RemoteTrainingService({"platform": "remote", "reuseMode": False, "machineList": []},
                               _context(tmp_path, code, "abcd1234", _storage(shared, shared)))
    with pytest.raises(SharedStorageError, match=r"^sharedStorage: works only in reuse mode"):
        asyncio.run(ts.start())
    ts = RemoteTrainingService({"platform": "remote", "machineList": []}, _context(tmp_path, code, "abcd1234", _storage(shared, shared)))
    with pytest.raises(SharedStorageError) as info:
        asyncio.run(ts.start())
    assert str(info.value).startswith(f"sharedStorage.localMountPoint: {shared} does not exist")
    assert "\n" not in str(info.value)


def test_remote_mount_point_paths_and_secret_key():
    assert resolve_remote_point("./nni-shared-storage", "/home/bob") == "/home/bob/nni-shared-storage"
    assert resolve_remote_point("~/x", "/home/bob/") == "/home/bob/x"
    assert resolve_remote_point("/mnt/nni/", "/home/bob") == "/mnt/nni"
    masked = mask_secrets({"sharedStorage": {"storageType": "AzureBlob", "storageAccountKey": "k3y"}})
    assert masked["sharedStorage"]["storageAccountKey"] == "***"
