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

from . import export as export_fmt
from .errors import NnictlError
from .experiments import ExperimentRef, all_experiments, find, registry, select_stop_targets
from .launcher import info, wait_exit, web_ui_urls
from .output import format_table

ACTIVE_TRIAL_STATES = ("WAITING", "RUNNING", "UNKNOWN")


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
    profile = ref.call("get_experiment_profile")
    profile["params"][key] = value
    ref.call("update_experiment_profile", body=profile, query={"update_type": update_type})
    info(f"Successfully updated {key} of experiment {ref.id} to {shown}")
    return 0


def update_searchspace(args) -> int:
    from nni.common.hpo_utils import load_search_space, validate_search_space

    path = Path(args.filename).expanduser()
    if not path.is_file():
        raise NnictlError(f"--filename: file not found: {path}")
    try:
        space = load_search_space(path)
        validate_search_space(space, raise_exception=True)
    except ValueError as err:
        raise NnictlError(f"--filename: {' '.join(str(err).split())}") from None
    return _update(args, "SEARCH_SPACE", "searchSpace", space, path)


def update_concurrency(args) -> int:
    if args.value < 1:
        raise NnictlError(f"--value: trial concurrency must be at least 1, got {args.value}")
    return _update(args, "TRIAL_CONCURRENCY", "trialConcurrency", args.value, args.value)


def update_duration(args) -> int:
    from nni.experiment.config import parse_duration

    try:
        seconds = parse_duration(args.value)
    except ValueError as err:
        raise NnictlError(f"--value: {err}") from None
    return _update(args, "MAX_EXEC_DURATION", "maxExecDuration", seconds, args.value)


def update_trialnum(args) -> int:
    if args.value < 1:
        raise NnictlError(f"--value: max trial number must be at least 1, got {args.value}")
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
    ref = find(args.id)
    trials = select_trials(ref.read("trial_jobs"), args.head, args.tail)
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
        shutil.rmtree(folder)
    registry().remove(ref.id)


def experiment_delete(args) -> int:
    if args.all:
        if args.id:
            raise NnictlError("give an id or --all, not both")
        refs = [r for r in all_experiments() if not r.alive]
        if not refs:
            print("No stopped experiment to delete.")
            return 0
        if sys.stdin.isatty() and not getattr(args, "yes", False):
            answer = input(f"INFO: This deletes {len(refs)} stopped experiments and their files. Continue? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing deleted.")
                return 0
    else:
        if not args.id:
            raise NnictlError("give the id of the experiment to delete (or --all)")
        refs = [find(args.id)]
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


def experiment_import(args) -> int:
    path = Path(args.filename).expanduser()
    if not path.is_file():
        raise NnictlError(f"--filename: file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise NnictlError(f"--filename: {path} is not valid JSON ({err})") from None
    records = export_fmt.check_import_data(data, str(path))
    ref = _running(args)
    ref.call("import_data", body=records)
    info(f"Imported {len(records)} trial results into experiment {ref.id}.")
    return 0


# ----- platform -----


def platform_clean(args) -> int:
    from nni.experiment.config import ExperimentConfig
    from nni.runtime import registry as algo_registry

    config = ExperimentConfig.load(args.config, validate=False)
    for ts in config.training_services:
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
        cleaner(ts)
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
        print(f"Web UI: {'   '.join(web_ui_urls(ref.port, ref.url_prefix))}")
    print(f"Folder: {ref.directory}")
    print(RULE_SHORT)
    print(yaml.safe_dump(ref.read("config"), sort_keys=False, allow_unicode=True).rstrip())
    return 0


RULE_SHORT = "-" * 40


# ----- log -----


def _show_file(path: Path, head: Optional[int], tail: Optional[int], show_path: bool) -> int:
    if show_path:
        print(path)
        return 0
    if not path.is_file():
        raise NnictlError(f"no log file at {path}")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if head is not None:
        lines = lines[:head]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    for line in lines:
        print(line)
    return 0


def log_stdout(args) -> int:
    ref = find(args.id)
    return _show_file(ref.directory / "log" / "nnictl_stdout.log", args.head, args.tail, args.path)


def log_stderr(args) -> int:
    ref = find(args.id)
    return _show_file(ref.directory / "log" / "nnictl_stderr.log", args.head, args.tail, args.path)


def log_trial(args) -> int:
    ref = find(args.id)
    trials = ref.read("trial_jobs")
    if args.trial_id:
        match = [t for t in trials if t.get("trialJobId") == args.trial_id]
        if not match:
            raise NnictlError(f"trial {args.trial_id!r} not found in experiment {ref.id}")
        folder = _trial_dir(match[0])
        if folder is None:
            raise NnictlError(f"trial {args.trial_id} has no log path yet")
        log = Path(folder) / "trial.log"
        if args.path or (args.head is None and args.tail is None):
            print(log)
            return 0
        return _show_file(log, args.head, args.tail, False)
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
    print(f"Web UI urls: {'   '.join(web_ui_urls(ref.port, ref.url_prefix))}")
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
