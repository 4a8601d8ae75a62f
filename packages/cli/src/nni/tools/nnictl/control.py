"""Commands on existing experiments: stop, update, trial, top, experiment, platform, config,
log, webui, tensorboard.

Running experiments are reached through the REST client of :mod:`nni.runtime.rest_api`;
stopped ones are read from their store, so ``trial ls``, ``experiment show`` / ``export`` and
``log`` work on them too. Commands that change an experiment need it running.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from nni.runtime.states import UNFINISHED_STATES

from . import export as export_fmt
from .errors import NnictlError
from .experiments import ExperimentRef, all_experiments, find, registry, select_stop_targets
from .launcher import info, wait_exit, web_ui_urls
from .output import format_table

ACTIVE_TRIAL_STATES = UNFINISHED_STATES


def fmt_time(ms: Any) -> str:
    if not ms:
        return "N/A"
    return datetime.fromtimestamp(int(ms) / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=4, ensure_ascii=False))


def _running(args) -> ExperimentRef:
    return find(getattr(args, "id", None), need_alive=True)


def _trial_dir(trial: dict) -> Optional[str]:
    path = trial.get("logPath")
    if not path:
        return None
    return path.split("file://localhost:", 1)[1] if path.startswith("file://localhost:") else path


# ----- stop -----


def stop_experiment(ref: ExperimentRef, timeout: float = 60) -> None:
    """Ask the manager to stop (it cancels the trials and exits); SIGTERM, then SIGKILL, if it does not."""
    from nni.runtime.rest_api import RestError

    try:
        ref.client(timeout=10).call("stop_experiment")
    except (ConnectionError, RestError, NnictlError):
        _signal(ref.pid, signal.SIGTERM)


def _signal(pid: Any, sig: int) -> None:
    try:
        os.kill(int(pid), sig)
    except (OSError, TypeError, ValueError):
        pass


def stop(args) -> int:
    targets = select_stop_targets(all_experiments(), args.id, args.port, args.all)
    for ref in targets:
        info(f"Stopping experiment {ref.id}")
        stop_experiment(ref)
    for ref in targets:
        if not wait_exit(ref.pid, 60):
            _signal(ref.pid, signal.SIGTERM)
            if not wait_exit(ref.pid, 10):
                _signal(ref.pid, signal.SIGKILL)
                wait_exit(ref.pid, 5)
        info(f"Stop experiment success: {ref.id}")
    return 0


# ----- update -----


def _update(args, update_type: str, key: str, value: Any, shown: Any) -> int:
    ref = _running(args)
    # Only the changed field: the manager reads params[key] alone, and the whole profile holds
    # the search space twice (a 50 MB space would push the request over the body limit).
    ref.call("update_experiment_profile", body={"params": {key: value}}, query={"update_type": update_type})
    info(f"Successfully updated {key} of experiment {ref.id} to {shown}")
    return 0


def update_searchspace(args) -> int:
    """Send a new search space; checked like the config's (the format is determined by the tuner)."""
    from nni.experiment.config.search_space import check_search_space, read_search_space_file

    path = Path(args.filename).expanduser()
    if not path.is_file():
        raise NnictlError(f"--filename: file not found: {path}")
    try:
        space = read_search_space_file(str(path), "--filename")
    except ValueError as err:
        raise NnictlError(str(err)) from None
    params = _running(args).call("get_experiment_profile")["params"]
    try:
        check_search_space(params.get("config") or params, space, "--filename")
    except ValueError as err:
        raise NnictlError(str(err)) from None
    return _update(args, "SEARCH_SPACE", "searchSpace", space, path)


def _checked(check, value: Any) -> Any:
    """``value`` through one of nni.experiment.config.limits' checks (the manager's limits)."""
    try:
        return check(value, "--value")
    except ValueError as err:
        raise NnictlError(str(err)) from None


def update_concurrency(args) -> int:
    from nni.experiment.config.limits import check_trial_concurrency

    _checked(check_trial_concurrency, args.value)
    return _update(args, "TRIAL_CONCURRENCY", "trialConcurrency", args.value, args.value)


def update_duration(args) -> int:
    from nni.experiment.config import parse_duration

    try:
        seconds = parse_duration(args.value)
    except ValueError as err:
        raise NnictlError(f"--value: {err}") from None
    return _update(args, "MAX_EXEC_DURATION", "maxExecDuration", seconds, args.value)


def update_trialnum(args) -> int:
    from nni.experiment.config.limits import check_max_trial_number

    _checked(check_max_trial_number, args.value)
    return _update(args, "MAX_TRIAL_NUM", "maxTrialNum", args.value, args.value)


# ----- trial -----


def _parameters(trial: dict) -> Any:
    hp = trial.get("hyperParameters") or []
    if not hp:
        return None
    value = export_fmt.decode(hp[-1])
    return value.get("parameters", value) if isinstance(value, dict) else value


def _final(trial: dict) -> Any:
    finals = trial.get("finalMetricData") or []
    return export_fmt.decode(finals[-1].get("data")) if finals else None


def select_trials(trials: list[dict], head: Optional[int] = None, tail: Optional[int] = None) -> list[dict]:
    """``--head N``: the N trials with the highest default metric, ``--tail N`` the lowest; with
    either, only trials that reported a final result are listed."""
    if head is None and tail is None:
        return trials
    if head is not None and tail is not None:
        raise NnictlError("give --head or --tail, not both")
    n = head if head is not None else tail
    if n < 0:
        raise NnictlError(f"--{'head' if head is not None else 'tail'}: must be >= 0, got {n}")
    done = [t for t in trials if export_fmt.default_metric(_final(t)) is not None]
    done.sort(key=lambda t: export_fmt.default_metric(_final(t)), reverse=head is not None)
    return done[:n]


def trial_table(trials: list[dict]) -> str:
    rows = []
    for t in trials:
        final = _final(t)
        rows.append([
            t.get("trialJobId"), t.get("sequenceId"), t.get("status"), fmt_time(t.get("startTime")), fmt_time(t.get("endTime")),
            json.dumps(final) if isinstance(final, dict) else final,
            json.dumps(_parameters(t), ensure_ascii=False),
        ])
    return format_table(["trialJobId", "sequenceId", "status", "startTime", "endTime", "finalMetric", "parameters"], rows, max_width=60)


def trial_ls(args) -> int:
    """NNI v2.5 prints the trial jobs as the REST API returns them (a JSON array);
    ``--table`` prints them as a table instead."""
    ref = find(args.id)
    trials = select_trials(ref.read("trial_jobs"), args.head, args.tail)
    if not getattr(args, "table", False):
        _print_json(trials)
        return 0
    if not trials:
        print("No trial" + (" with a final result" if args.head is not None or args.tail is not None else "") + f" in experiment {ref.id}.")
        return 0
    print(trial_table(trials))
    return 0


def trial_kill(args) -> int:
    ref = _running(args)
    trial = ref.call("get_trial_job", id=args.trial_id)
    if trial.get("status") not in ACTIVE_TRIAL_STATES:
        raise NnictlError(f"trial {args.trial_id} of experiment {ref.id} is not running (status {trial.get('status')})")
    ref.call("cancel_trial_job", id=args.trial_id)
    info(f"Trial {args.trial_id} of experiment {ref.id} was killed.")
    return 0


# ----- top -----


def _experiment_rows(refs: list[ExperimentRef]) -> list[list[Any]]:
    return [[r.id, r.name or "", r.status, r.port if r.alive else "", r.platform or "", fmt_time(r.start_time), fmt_time(r.end_time)]
            for r in refs]


EXPERIMENT_HEADERS = ["Id", "Name", "Status", "Port", "Platform", "StartTime", "EndTime"]


def top(args) -> int:
    if args.time <= 0:
        raise NnictlError(f"--time: the refresh interval must be > 0 seconds, got {args.time}")
    tty = sys.stdout.isatty()
    # Ctrl-C (or SIGTERM) ends top even when it was started with SIGINT ignored, as every
    # background job of a non-interactive shell is: Python then installs no handler itself.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            refs = [find(args.id)] if args.id else [r for r in all_experiments() if r.alive]
            out = [f"nnictl top - {datetime.now().strftime('%Y-%m-%d %H:%M:%S')} (every {args.time:g} s, Ctrl-C to quit)"]
            if not refs:
                out.append("No experiment is running.")
            else:
                out.append(format_table(EXPERIMENT_HEADERS, _experiment_rows(refs)))
                for ref in refs:
                    try:
                        stats = ref.read("job_statistics")
                        trials = ref.read("trial_jobs")
                    except NnictlError as err:
                        out.append(f"{ref.id}: {err}")
                        continue
                    counts = ", ".join(f"{s['trialJobStatus']}: {s['trialJobNumber']}" for s in stats) or "no trial yet"
                    out.append(f"\nExperiment {ref.id} trials ({counts})")
                    if trials:
                        out.append(trial_table(trials[-20:]))
            if tty:
                sys.stdout.write("\033[2J\033[H")
            print("\n".join(out), flush=True)
            time.sleep(args.time)
    except KeyboardInterrupt:
        return 0


# ----- experiment -----


def experiment_show(args) -> int:
    _print_json(find(args.id).read("profile"))
    return 0


def experiment_status(args) -> int:
    ref = find(args.id)
    _print_json(ref.read("status"))
    return 0


def experiment_list(args) -> int:
    refs = all_experiments()
    if not args.all:
        refs = [r for r in refs if r.alive]
        if not refs:
            print("No experiment is running. Use 'nnictl experiment list --all' to list all experiments.")
            return 0
    elif not refs:
        print("No experiment found.")
        return 0
    print(format_table(EXPERIMENT_HEADERS, _experiment_rows(refs)))
    return 0


def _looks_like_experiment_dir(path: Path, experiment_id: str) -> bool:
    return path.name == experiment_id and ((path / "db").is_dir() or (path / "experiment_config.json").is_file() or (path / "log").is_dir())


def delete_experiment(ref: ExperimentRef) -> None:
    if ref.alive:
        raise NnictlError(f"experiment {ref.id} is running on port {ref.port}; stop it first with 'nnictl stop {ref.id}'")
    folder = ref.directory
    if folder.exists():
        if not _looks_like_experiment_dir(folder, ref.id):
            raise NnictlError(f"experiment {ref.id}: {folder} does not look like its folder; not deleting it")
        _delete_platform_files(ref, folder)
        shutil.rmtree(folder)
    registry().remove(ref.id)


def _platform_entries(config: dict) -> list[dict]:
    entries = config.get("trainingService") or []
    return [e for e in (entries if isinstance(entries, list) else [entries]) if isinstance(e, dict)]


def _delete_platform_files(ref: ExperimentRef, folder: Path) -> None:
    """Remove what the experiment left on its training platforms (e.g. the remote machines'
    ``~/nni-experiments/<id>``). A platform it cannot reach is reported, not fatal."""
    import asyncio

    from nni.runtime import registry as algo_registry
    from nni.runtime.experiment_profile import restore_secrets

    try:
        config = restore_secrets(ref.read("config") or {}, folder)
    except Exception:  # a store too damaged to read: the local folder still goes
        return
    for entry in _platform_entries(config):
        platform = entry.get("platform")
        if platform in (None, "local"):
            continue
        try:
            cls = algo_registry.load_class("training_service", platform)
        except KeyError:
            continue
        remover = getattr(cls, "remove_experiment_files", None)
        if remover is None:
            continue
        for problem in asyncio.run(remover(entry, ref.id)):
            print(f"WARNING: {problem}; its files there were not removed", file=sys.stderr)


def _confirm(question: str) -> bool:
    """Ask ``question [y/N]`` on the terminal; anything but y/yes, or no stdin at all, is no."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def experiment_delete(args) -> int:
    if args.all:
        if args.id:
            raise NnictlError("give an id or --all, not both")
        refs = [r for r in all_experiments() if not r.alive]
        if not refs:
            print("No stopped experiment to delete.")
            return 0
        question = f"INFO: This deletes all {len(refs)} stopped experiments and their files (logs, results, environment, cache). Continue?"
    else:
        if not args.id:
            raise NnictlError("give the id of the experiment to delete (or --all)")
        refs = [find(args.id)]
        if refs[0].alive:  # refused before asking
            delete_experiment(refs[0])
        question = f"INFO: This deletes experiment {refs[0].id} and its files (logs, results, environment, cache). Continue?"
    if not getattr(args, "yes", False) and not _confirm(question):
        print("Nothing deleted.")
        return 0
    for ref in refs:
        delete_experiment(ref)
        info(f"Experiment {ref.id} deleted.")
    return 0


def experiment_export(args) -> int:
    ref = find(args.id)
    intermediates = export_fmt.intermediates_by_trial(ref.read("metric_data", metric_type="PERIODICAL")) if args.intermediate else None
    records = export_fmt.export_records(ref.read("export_data"), intermediates)
    text = export_fmt.to_json(records) if args.type == "json" else export_fmt.to_csv(records, args.intermediate)
    path = Path(args.filename).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    info(f"Exported {len(records)} trials of experiment {ref.id} to {path} ({args.type}).")
    return 0


def _read_import_file(path: Path) -> Any:
    """The records of a JSON import file, or of a CSV written by ``experiment export --type csv``
    (columns: trialJobId, the parameters, reward, other metrics)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() != ".csv":
        try:
            return json.loads(text)
        except ValueError as err:
            raise NnictlError(f"--filename: {path} is not valid JSON ({err})") from None
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    if not rows or "reward" not in rows[0]:
        raise NnictlError(f"--filename: {path}: a CSV import file needs a header with a 'reward' column (as 'experiment export --type csv' writes)")
    header = rows[0]
    cut = header.index("reward")

    def cell(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return text

    records = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(row):
            continue
        values = dict(zip(header, row))
        parameter = {k: cell(values[k]) for k in header[:cut] if k not in ("trialJobId", "intermediate") and values.get(k, "") != ""}
        metrics = {k: cell(values[k]) for k in header[cut + 1:] if k != "intermediate" and values.get(k, "") != ""}
        reward = cell(values.get("reward", ""))
        records.append({"parameter": parameter, "value": dict(metrics, default=reward) if metrics else reward})
    return records


def _tuner_report(log: Path, offset: int, timeout: float) -> Optional[tuple[str, Optional[int], int]]:
    """The dispatcher's import line (tuner, imported or None, total) written after ``offset``."""
    import re

    from nni.runtime.msg_dispatcher import IMPORT_REPORT_PATTERN

    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(log, "rb") as f:
                f.seek(offset)
                match = re.search(IMPORT_REPORT_PATTERN, f.read().decode("utf-8", "replace"))
        except OSError:
            match = None
        if match:
            imported = match.group(2)
            return match.group(1), (None if imported == "?" else int(imported)), int(match.group(3))
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def experiment_import(args) -> int:
    path = Path(args.filename).expanduser()
    if not path.is_file():
        raise NnictlError(f"--filename: file not found: {path}")
    records = export_fmt.check_import_data(_read_import_file(path), str(path))
    ref = _running(args)
    log = ref.directory / "log" / "dispatcher.log"
    try:
        offset = log.stat().st_size
    except OSError:
        offset = 0
    answer = ref.call("import_data", body=records) or {}
    stored = answer.get("stored", len(records)) if isinstance(answer, dict) else len(records)
    info(f"Import data success! Sent {len(records)} records to experiment {ref.id}; the manager stored {stored}.")
    report = _tuner_report(log, offset, timeout=getattr(args, "wait", 10.0))
    if report is None:
        info(f"The tuner has not reported on the import yet; see {log}.")
    elif report[1] is None:
        info(f"The tuner ({report[0]}) received {report[2]} records; it does not say how many it used.")
    else:
        info(f"The tuner ({report[0]}) imported {report[1]} of {report[2]} records.")
    return 0


# ----- platform -----


def platform_clean(args) -> int:
    from nni.experiment.config import ExperimentConfig
    from nni.runtime import registry as algo_registry

    config = ExperimentConfig.load(args.config, validate=False)
    for index, ts in enumerate(config.training_services):
        platform = ts.platform
        if platform == "local":
            _clean_local(config)
            continue
        try:
            cls = algo_registry.load_class("training_service", platform)
        except KeyError as err:
            raise NnictlError(f"trainingService.platform: {err}") from None
        cleaner = getattr(cls, "clean_platform", None)
        if cleaner is None:
            raise NnictlError(f"platform clean: the installed '{platform}' training service has no clean-up (clean_platform); nothing was done")
        entry = _platform_entries(config.to_canonical_dict())[index]
        running = {r.id for r in all_experiments() if r.alive}
        for line in cleaner(entry, running):
            info(line)
    return 0


def _clean_local(config) -> None:
    """Local platform: remove what stopped experiments left in the working directory:
    folders of experiments that never started (no store), and registry entries of experiments
    whose folder is gone. Stores, logs and trial outputs of real experiments are kept
    (``nnictl experiment delete`` removes those)."""
    from nni.experiment.config.experiment_config import default_working_directory

    root = Path(os.path.expanduser(str(config.experiment_working_directory or default_working_directory())))
    refs = {r.id: r for r in all_experiments()}
    removed = 0
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            ref = refs.get(folder.name)
            if ref is not None and ref.alive:
                continue
            if (folder / "db" / "nni.sqlite").exists() or not _looks_like_experiment_dir(folder, folder.name):
                continue
            shutil.rmtree(folder)
            if ref is not None:
                registry().remove(ref.id)
            info(f"Removed {folder} (an experiment that never started)")
            removed += 1
    for ref in refs.values():
        if not ref.alive and ref.workdir and not Path(ref.workdir).exists():
            registry().remove(ref.id)
            info(f"Removed the registry entry of {ref.id} (its folder {ref.workdir} is gone)")
            removed += 1
    info(f"Local platform clean: {removed} item(s) removed under {root}." if removed else f"Local platform clean: nothing to clean under {root}.")


# ----- config -----


def config_show(args) -> int:
    import yaml

    ref = find(args.id)
    print(f"Experiment: {ref.id}")
    print(f"Status: {ref.status}")
    if ref.alive:
        print(f"Port: {ref.port}")
        print(f"Web UI: {'   '.join(web_ui_urls(ref.port, ref.url_prefix, ref.host))}")  # no token: output often pasted
    print(f"Folder: {ref.directory}")
    print(RULE_SHORT)
    from nni.runtime.experiment_profile import mask_secrets  # a stopped experiment's config comes unmasked from its store

    print(yaml.safe_dump(mask_secrets(ref.read("config")), sort_keys=False, allow_unicode=True).rstrip())
    return 0


RULE_SHORT = "-" * 40


# ----- log -----


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _show_files(paths: list[Path], head: Optional[int], tail: Optional[int], show_path: bool) -> int:
    """Print ``paths`` (each under a ``==> path <==`` header when there are several, as
    ``tail`` does); ``head`` / ``tail`` apply to each file; ``show_path`` prints the paths."""
    if show_path:
        for path in paths:
            print(path)
        return 0
    present = [p for p in paths if p.is_file()]
    if not present:
        raise NnictlError(f"no log file at {' or '.join(str(p) for p in paths)}")
    for i, path in enumerate(present):
        lines = _read_lines(path)
        if head is not None:
            lines = lines[:head] if head > 0 else []
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        if len(present) > 1:
            print(("\n" if i else "") + f"==> {path} <==")
        for line in lines:
            print(line)
    return 0


def _show_file(path: Path, head: Optional[int], tail: Optional[int], show_path: bool) -> int:
    return _show_files([path], head, tail, show_path)


def log_stdout(args) -> int:
    """The manager's stdout and its log (``nnimanager.log``)."""
    ref = find(args.id)
    log = ref.directory / "log"
    return _show_files([log / "nnictl_stdout.log", log / "nnimanager.log"], args.head, args.tail, args.path)


def log_stderr(args) -> int:
    """The manager's stderr (its errors) and the dispatcher's output and log (``dispatcher.log``:
    the tuner's / assessor's prints and tracebacks)."""
    ref = find(args.id)
    log = ref.directory / "log"
    return _show_files([log / "nnictl_stderr.log", log / "dispatcher.log"], args.head, args.tail, args.path)


def _trial_log_files(folder: Path) -> list[Path]:
    """trial.log (the documented log path), stdout and stderr of a trial."""
    return [folder / "trial.log", folder / "stdout", folder / "stderr"]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def log_trial(args) -> int:
    """Without ``--trial_id``: every trial's log path. With it: that trial's stdout and stderr
    (``--path``: their paths)."""
    ref = find(args.id)
    trials = ref.read("trial_jobs")
    if args.trial_id:
        match = [t for t in trials if t.get("trialJobId") == args.trial_id]
        if not match:
            raise NnictlError(f"trial {args.trial_id!r} not found in experiment {ref.id}")
        folder = _trial_dir(match[0])
        if folder is None:
            raise NnictlError(f"trial {args.trial_id} has no log path yet")
        files = _trial_log_files(Path(folder))
        if args.path:
            for path in files:
                print(path)
            return 0
        present = [p for p in files if p.is_file()]
        if len(present) > 1 and _same_file(present[0], present[1]):
            present.pop(0)  # local trials: trial.log is a hard link to stdout
        if not present:
            raise NnictlError(f"trial {args.trial_id} has no log file in {folder} yet")
        for i, path in enumerate(present):  # a header for each, even an empty stderr
            print(("\n" if i else "") + f"==> {path} <==")
            lines = _read_lines(path)
            if args.head is not None:
                lines = lines[:args.head] if args.head > 0 else []
            if args.tail is not None:
                lines = lines[-args.tail:] if args.tail > 0 else []
            for line in lines:
                print(line)
        return 0
    if not trials:
        print(f"No trial in experiment {ref.id}.")
        return 0
    for t in trials:
        folder = _trial_dir(t)
        print(f"{t.get('trialJobId')}: {Path(folder) / 'trial.log' if folder else 'N/A'}")
    return 0


# ----- webui -----


def webui_url(args) -> int:
    ref = _running(args)
    print(f"Web UI urls: {'   '.join(web_ui_urls(ref.port, ref.url_prefix, ref.host, ref.token))}")
    return 0


# ----- tensorboard -----


def tensorboard_start(args) -> int:
    ref = _running(args)
    trial_ids = args.trial_id or [t["trialJobId"] for t in ref.call("list_trial_jobs")]
    if not trial_ids:
        raise NnictlError(f"experiment {ref.id} has no trial yet")
    task = ref.call("start_tensorboard", body={"trials": ",".join(trial_ids)})
    deadline = time.monotonic() + 60
    while task.get("status") == "DOWNLOADING_DATA" and time.monotonic() < deadline:
        time.sleep(0.2)
        task = ref.call("get_tensorboard", id=task["id"])
    if task.get("status") not in ("RUNNING",):
        raise NnictlError(f"TensorBoard task {task.get('id')} is {task.get('status')}; see {ref.directory / 'log'}")
    if args.port and args.port != task.get("port"):
        info(f"Port {args.port} was asked; the manager chose the free port {task.get('port')}.")
    info(f"TensorBoard task {task['id']} for {len(trial_ids)} trial(s): http://127.0.0.1:{task.get('port')}")
    return 0


def tensorboard_stop(args) -> int:
    ref = _running(args)
    tasks = ref.call("stop_all_tensorboards")
    info(f"Stopped {len(tasks)} TensorBoard task(s) of experiment {ref.id}." if tasks else f"Experiment {ref.id} has no TensorBoard task.")
    return 0
