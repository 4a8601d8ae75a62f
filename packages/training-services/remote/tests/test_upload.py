"""Code upload (.nniignore, limits), download and remove: local rules and real transfers over sshd."""
from __future__ import annotations

import asyncio
import os

import pytest

from nni.training_services.remote import (
    CodeDirError, SshError, SshMachine, collect_code_files, download, remove, upload_code,
)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def make_code(root):
    files = {
        "main.py": "print('trial')\n",
        "pkg/model.py": "x = 1\n",
        "pkg/__pycache__/model.cpython-311.pyc": "junk",
        "data/big.bin": "0" * 1000,
        "data/keep.txt": "kept by negation\n",
        "logs/run.log": "log\n",
        "notes.tmp": "tmp\n",
        "sub/notes.tmp": "tmp\n",
        ".nniignore": "__pycache__/\ndata/*\n!data/keep.txt\n/logs\n*.tmp\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


EXPECTED = [".nniignore", "data/keep.txt", "main.py", "pkg/model.py"]


def test_nniignore_has_gitignore_semantics(tmp_path):
    code = make_code(tmp_path / "code")
    assert [p.as_posix() for p in collect_code_files(code)] == EXPECTED


def test_more_than_2000_files_is_refused_until_ignored(tmp_path):
    code = tmp_path / "code"
    (code / "many").mkdir(parents=True)
    for i in range(2001):
        (code / "many" / f"f{i}").touch()
    with pytest.raises(CodeDirError) as info:
        collect_code_files(code)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"trialCodeDirectory: {code} has more than 2000 files")
    assert "found 2001" in msg and str(code / ".nniignore") in msg
    (code / ".nniignore").write_text("many/f1*\n")
    assert len(collect_code_files(code)) == 2001 - 1111 + 1  # f1, f10.., f100.., f1000..f1999 ignored; +.nniignore


def test_size_limit(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "weights.bin").write_bytes(b"\0" * 3 * 2**20)
    with pytest.raises(CodeDirError, match=r"holds 3\.0 MB to upload; at most 2 MB .*\.nniignore"):
        collect_code_files(code, max_bytes=2 * 2**20)
    (code / ".nniignore").write_text("*.bin\n")
    assert [p.name for p in collect_code_files(code, max_bytes=2 * 2**20)] == [".nniignore"]


def test_missing_code_dir(tmp_path):
    with pytest.raises(CodeDirError, match=r"^trialCodeDirectory: .*nope is not a directory"):
        collect_code_files(tmp_path / "nope")


def test_upload_download_remove_over_ssh(key_server, tmp_path):
    code = make_code(tmp_path / "code")
    os.symlink("main.py", code / "link.py")
    remote_root = tmp_path / "remote" / "exp1"  # the sshd runs on this host: its files are ours to check

    async def go():
        m = SshMachine(key_server.machine())
        await m.connect()
        await m.run(f"mkdir -p {remote_root}/code && touch {remote_root}/code/stale.py")
        summary = await upload_code(m, code, f"{remote_root}/code")
        rc, listing, _ = await m.run(f"cd {remote_root}/code && find . -type f -o -type l | sort")
        assert (await m.run(f"readlink {remote_root}/code/link.py"))[1] == "main.py\n"  # links stay links
        # trial output back: a folder (merged into an existing one) and a single file
        await m.run(f"mkdir -p {remote_root}/trials/t1 && echo out > {remote_root}/trials/t1/stdout "
                    f"&& echo 'a b' > {remote_root}/trials/t1/trial.log")
        (tmp_path / "local" / "t1").mkdir(parents=True)
        (tmp_path / "local" / "t1" / "already").write_text("here")
        await download(m, f"{remote_root}/trials/t1", tmp_path / "local" / "t1")
        await download(m, f"{remote_root}/trials/t1/trial.log", tmp_path / "single.log")
        with pytest.raises(SshError, match=r"cannot download .*/missing \(no such file or folder\)"):
            await download(m, f"{remote_root}/missing", tmp_path / "missing")
        with pytest.raises(ValueError, match="too close to the root"):
            await remove(m, "/tmp")
        await remove(m, str(remote_root))
        gone = await m.run(f"test -e {remote_root}")
        await m.close()
        return summary, listing, gone[0]

    summary, listing, gone = run(go())
    assert sorted(p.removeprefix("./") for p in listing.split()) == sorted(EXPECTED + ["link.py"])
    assert summary.files == 5 and summary.bytes == sum((code / p).stat().st_size for p in EXPECTED)
    assert (tmp_path / "local" / "t1" / "stdout").read_text() == "out\n"
    assert (tmp_path / "local" / "t1" / "trial.log").read_text() == "a b\n"
    assert (tmp_path / "local" / "t1" / "already").read_text() == "here"
    assert (tmp_path / "single.log").read_text() == "a b\n"
    assert not (tmp_path / "missing").exists() and not list(tmp_path.glob(".*nni-download"))
    assert gone != 0 and not remote_root.exists()
