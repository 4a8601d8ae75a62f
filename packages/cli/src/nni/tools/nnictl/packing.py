"""``nnictl experiment save | load``: pack an experiment into one file and unpack it elsewhere.

A package is a ``.zip`` (default) or ``.tar.gz`` holding::

    <id>/manifest.json      id, name, platform, where it came from, whether code is included
    <id>/experiment/...     the experiment folder: db/nni.sqlite (a consistent copy, taken with
                            SQLite's backup API even while the manager runs), log/, trials/ ...
    <id>/code/...           the trial code folder (with --saveCodeDir)

``load`` unpacks the experiment folder into ``--logDir`` (default ``~/nni-experiments``),
points the store's paths (experiment folder, trial folders, code folder) at the new places,
writes the search space to ``--searchSpacePath`` and registers the experiment as STOPPED, so
``nnictl view <id>`` (or ``nnictl resume <id>``) works on the new machine.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Optional

from nni.runtime.states import ENDED_STATES, ExperimentStatus

from .errors import NnictlError
from .experiments import find, registry
from .launcher import info

MANIFEST = "manifest.json"
_SKIP = {"nni.sqlite", "nni.sqlite-wal", "nni.sqlite-shm", "nni.sqlite-journal"}


def _archive_path(path_arg: str, experiment_id: str) -> Path:
    path = Path(path_arg).expanduser()
    if path.name.endswith((".zip", ".tar.gz", ".tgz")):
        return path
    return path / f"nni-experiment-{experiment_id}.zip"


def _backup_db(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(str(dst))
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            if full.is_file() and not full.is_symlink():
                yield full


def experiment_save(args) -> int:
    from nni.server.store import store_path

    ref = find(args.id)
    exp_dir = ref.directory
    db = store_path(exp_dir)
    if not db.is_file():
        raise NnictlError(f"experiment {ref.id}: no store at {db}; nothing to save")
    store = ref.open_store()
    try:
        config = store.config()
    finally:
        store.close()
    code_dir = Path(config.get("trialCodeDirectory") or ".")
    if args.saveCodeDir and not code_dir.is_dir():
        raise NnictlError(f"--saveCodeDir: the experiment's code folder {code_dir} does not exist")
    archive = _archive_path(args.path, ref.id)
    archive.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": 1,
        "experimentId": ref.id,
        "experimentName": ref.name,
        "platform": ref.platform,
        "status": ref.status,
        "startTime": ref.start_time,
        "endTime": ref.end_time,
        "sourceDir": str(exp_dir.resolve()),
        "codeDir": str(code_dir.resolve()),
        "hasCode": bool(args.saveCodeDir),
        "savedAt": int(time.time() * 1000),
    }
    with tempfile.TemporaryDirectory(prefix="nnictl-save-") as tmp:
        db_copy = Path(tmp) / "nni.sqlite"
        _backup_db(db, db_copy)
        entries: list[tuple[Path, str]] = [(db_copy, f"{ref.id}/experiment/db/nni.sqlite")]
        for f in _files(exp_dir):
            rel = f.relative_to(exp_dir).as_posix()
            if rel.startswith("db/") and f.name in _SKIP:
                continue
            entries.append((f, f"{ref.id}/experiment/{rel}"))
        if args.saveCodeDir:
            for f in _files(code_dir):
                entries.append((f, f"{ref.id}/code/{f.relative_to(code_dir).as_posix()}"))
        manifest_file = Path(tmp) / MANIFEST
        manifest_file.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        entries.append((manifest_file, f"{ref.id}/{MANIFEST}"))
        partial = archive.with_name(archive.name + ".partial")
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for src, name in entries:
                    zf.write(src, name)
        else:
            with tarfile.open(partial, "w:gz") as tf:
                for src, name in entries:
                    tf.add(src, name, recursive=False)
        os.replace(partial, archive)
    info(f"Saved experiment {ref.id} ({len(entries) - 1} files{', code included' if args.saveCodeDir else ''}) to {archive}")
    return 0


def _safe_members(names: list[str]) -> None:
    for name in names:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts:
            raise NnictlError(f"--path: the package holds an unsafe path {name!r}; not loading it")


def _extract(archive: Path, dest: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _safe_members(zf.namelist())
            zf.extractall(dest)
        return
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            _safe_members([m.name for m in members])
            for m in members:
                if not (m.isfile() or m.isdir()):
                    raise NnictlError(f"--path: the package holds a link or device {m.name!r}; not loading it")
            tf.extractall(dest)
    except tarfile.TarError as err:
        raise NnictlError(f"--path: {archive} is not a .zip or .tar.gz package ({err})") from None


def _retarget(db: Path, new_dir: Path, old_dir: Optional[str], config: dict) -> None:
    """Point the store at the experiment's new folder (and its trials at theirs)."""
    from nni.server.store import ExperimentStore

    store = ExperimentStore(db)
    try:
        store.update_experiment(log_dir=str(new_dir))
        store.update_config(config)
        if old_dir:
            old = old_dir.rstrip("/")
            store.db.execute_sql(
                "UPDATE trial SET working_directory = ? || substr(working_directory, ?) WHERE working_directory = ? OR working_directory LIKE ?",
                (str(new_dir), len(old) + 1, old, old + "/%"),
            )
    finally:
        store.close()


def experiment_load(args) -> int:
    from nni.server.store import ExperimentStore, experiments_root, store_path

    archive = Path(args.path).expanduser()
    if not archive.is_file():
        raise NnictlError(f"--path: file not found: {archive}")
    root = Path(args.logDir).expanduser().resolve() if args.logDir else experiments_root()
    with tempfile.TemporaryDirectory(prefix="nnictl-load-") as tmp:
        tmp_path = Path(tmp)
        _extract(archive, tmp_path)
        tops = [p for p in tmp_path.iterdir() if (p / MANIFEST).is_file()]
        if len(tops) != 1:
            raise NnictlError(f"--path: {archive} is not an nnictl experiment package (no {MANIFEST})")
        top = tops[0]
        manifest = json.loads((top / MANIFEST).read_text(encoding="utf-8"))
        experiment_id = manifest["experimentId"]
        if any(r["id"] == experiment_id for r in registry().list()):
            raise NnictlError(f"experiment {experiment_id} already exists here; delete it first with 'nnictl experiment delete {experiment_id}'")
        dest = root / experiment_id
        if dest.exists():
            raise NnictlError(f"--logDir: {dest} already exists")
        code_dir: Optional[Path] = Path(args.codeDir).expanduser().resolve() if args.codeDir else None
        if manifest.get("hasCode"):
            if code_dir is None:
                raise NnictlError("--codeDir: required, the package holds the experiment's code; give the folder to put it in")
            if code_dir.exists() and any(code_dir.iterdir()):
                raise NnictlError(f"--codeDir: {code_dir} is not empty")
        db = store_path(top / "experiment")
        store = ExperimentStore(db, readonly=True)
        try:
            config = store.config()
        finally:
            store.close()
        root.mkdir(parents=True, exist_ok=True)
        shutil.move(str(top / "experiment"), str(dest))
        if manifest.get("hasCode"):
            code_dir.parent.mkdir(parents=True, exist_ok=True)
            if code_dir.exists():
                code_dir.rmdir()
            shutil.move(str(top / "code"), str(code_dir))
    if code_dir is not None:
        config["trialCodeDirectory"] = str(code_dir)
    config["experimentWorkingDirectory"] = str(root)
    _retarget(store_path(dest), dest, manifest.get("sourceDir"), config)
    space_path = Path(args.searchSpacePath).expanduser() if args.searchSpacePath else (code_dir / "search_space.json" if code_dir else None)
    if space_path is not None and config.get("searchSpace") is not None:
        space_path.parent.mkdir(parents=True, exist_ok=True)
        space_path.write_text(json.dumps(config["searchSpace"], indent=2), encoding="utf-8")
    registry().upsert(
        experiment_id, name=manifest.get("experimentName"), port=None, pid=None,
        status=manifest.get("status") if manifest.get("status") in ENDED_STATES else ExperimentStatus.STOPPED.value,
        start_time=manifest.get("startTime"), end_time=manifest.get("endTime"), platform=manifest.get("platform"), workdir=str(dest),
    )
    info(f"Loaded experiment {experiment_id} into {dest}" + (f", code in {code_dir}" if code_dir else "")
         + (f", search space in {space_path}" if space_path is not None and config.get("searchSpace") is not None else ""))
    info(f"View it with 'nnictl view {experiment_id}'")
    return 0
