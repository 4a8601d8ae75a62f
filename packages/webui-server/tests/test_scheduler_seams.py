"""Issue 11 item 11: the scheduler's seams.

* multi-phase parameters reach a trial through ``TrainingService.send_parameter``; no server
  code writes into a trial's folder (that only works on the local platform);
* ``handlers`` and ``ui_routes`` (and every other ``nni.server`` module) import without a cycle;
* nnictl and the SDK build the experiment profile with core's function, not the server's handlers;
* the scheduler is split: budget (limits and status machine), routing (dispatcher), resume.
"""
from __future__ import annotations

import ast
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from nni.runtime.protocol import CommandType
from nni.runtime.training_service import TrainingService, TrialJobDetail, TrialJobStatus, TrialSpec, now_ms

SERVER_SRC = Path(__import__("nni.server", fromlist=["x"]).__file__).parent


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


# ----- the training-service contract carries multi-phase parameters -----


class RecordingService(TrainingService):
    """A platform that runs nothing and records what the manager asks of it."""

    platform = "recording"

    def __init__(self, config: dict, context) -> None:
        super().__init__(config, context)
        self.sent: list[tuple[str, str]] = []

    async def start(self) -> None:
        self._queue()

    async def submit(self, spec: TrialSpec) -> TrialJobDetail:
        detail = TrialJobDetail(spec.trial_id, TrialJobStatus.RUNNING, spec.sequence_id, now_ms(), "/nonexistent/remote/dir")
        self._trials[spec.trial_id] = detail
        return detail

    async def cancel(self, trial_id: str, early_stopped: bool = False, status: Optional[TrialJobStatus] = None) -> None:
        pass

    async def send_parameter(self, trial_id: str, parameter: str) -> None:
        self.get_trial_job(trial_id)  # KeyError for an unknown trial
        self.sent.append((trial_id, parameter))

    async def stop(self) -> None:
        self._end_events()


def test_multi_phase_parameters_go_through_the_training_service(tmp_path):
    from nni.server.budget import TrialRecord
    from nni.server.scheduler import TrialScheduler, make_context
    from nni.server.store import ExperimentStore, store_path

    exp_dir = tmp_path / "exp"
    config = {"trialCommand": "true", "trialCodeDirectory": str(tmp_path), "trialConcurrency": 1, "multiPhase": True,
              "trainingService": {"platform": "recording"}}
    store = ExperimentStore(store_path(exp_dir))
    store.create_experiment("seams001", config, str(exp_dir), now_ms())
    ts = RecordingService({}, make_context("seams001", str(exp_dir), config))
    scheduler = TrialScheduler("seams001", str(exp_dir), config, store, ts)
    first = json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"x": 1}, "parameter_index": 0})
    store.add_trial("trA01", 0, first, 0, now_ms(), str(exp_dir / "trials" / "trA01"), "WAITING", "algorithm", 0)
    scheduler.budget.track(TrialRecord("trA01", 0, "WAITING", first, "0"))
    second = json.dumps({"parameter_id": 1, "parameter_source": "algorithm", "parameters": {"x": 2}, "parameter_index": 1,
                         "trial_job_id": "trA01"})

    async def go():
        await ts.submit(TrialSpec("trA01", 0, first))
        await scheduler.router.on_command(CommandType.SendTrialJobParameter, second)
        # a trial the experiment does not have: nothing is sent
        await scheduler.router.on_command(CommandType.SendTrialJobParameter, json.dumps({"trial_job_id": "ghost"}))

    asyncio.run(go())
    assert ts.sent == [("trA01", second)]
    events = store.db.connection().execute("SELECT trial_id, event, message FROM trial_event WHERE event = 'ADD_HYPERPARAMETER'").fetchall()
    assert events == [("trA01", "ADD_HYPERPARAMETER", second)]
    assert not (exp_dir / "trials").exists()  # the manager wrote nothing into a trial folder
    store.close()


def test_server_sources_never_write_trial_parameter_files():
    """Writing ``parameter.cfg`` is the (local) training service's business, not the manager's."""
    offenders = []
    for path in _sources(SERVER_SRC):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "parameter.cfg" in node.value:
                offenders.append(f"{path.name}:{node.lineno}: {node.value[:60]!r}")
            if isinstance(node, (ast.Name, ast.Attribute)) and getattr(node, "id", getattr(node, "attr", "")) in (
                "PARAMETER_FILE", "append_parameter_line"):
                offenders.append(f"{path.name}:{node.lineno}: uses the trial channel's parameter file")
    assert offenders == []


def test_every_training_service_implements_send_parameter():
    from nni.runtime.registry import list_names, load_class

    assert "send_parameter" in TrainingService.__abstractmethods__
    names = list_names("training_service")
    assert "local" in names
    for name in names:
        cls = load_class("training_service", name)
        assert "send_parameter" not in getattr(cls, "__abstractmethods__", ()), name


# ----- no import cycle -----


def _server_imports(path: Path) -> set[str]:
    """``nni.server`` modules imported anywhere in ``path`` (function-level imports included)."""
    rel = path.relative_to(SERVER_SRC.parent.parent)  # nni/server/...
    parts = list(rel.with_suffix("").parts)
    package = parts[:-1]  # the package a relative import starts from (for __init__: the package itself)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        found.update(n for n in names if n.startswith("nni.server"))
    return found


def _module_name(path: Path) -> str:
    rel = path.relative_to(SERVER_SRC.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_server_modules_import_without_cycles():
    modules = {_module_name(p): p for p in _sources(SERVER_SRC)}
    graph = {name: {m for m in _server_imports(path) if m in modules and m != name} for name, path in modules.items()}
    # a package importing its own submodules is how packages re-export; only module cycles count
    graph = {n: {m for m in deps if not (modules[n].name == "__init__.py" and m.startswith(n + "."))} for n, deps in graph.items()}
    assert "nni.server.api.handlers" in graph["nni.server.api.rest_server"]  # the walk sees imports
    assert "nni.server.api.ui_routes" in graph["nni.server.api.handlers"]
    assert "nni.server.api.handlers" not in graph["nni.server.api.ui_routes"]
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [node, dep]) if dep in stack else f"{node} -> {dep}")
            elif dep not in state:
                visit(dep, stack + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []


@pytest.mark.parametrize("order", [["ui_routes", "handlers"], ["handlers", "ui_routes"]])
def test_handlers_and_ui_routes_import_in_either_order(order):
    code = "; ".join(f"import nni.server.api.{m}" for m in order) + "; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# ----- the profile shape comes from core -----


def test_cli_and_sdk_do_not_import_the_server_handlers():
    import nni.experiment.experiment as sdk
    import nni.tools.nnictl as nnictl

    offenders = []
    for root in (Path(nnictl.__file__).parent, Path(sdk.__file__).parent):
        for path in _sources(root):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nni.server.api"):
                    offenders.append(f"{path.name}:{node.lineno}")
                if isinstance(node, ast.Import) and any(a.name.startswith("nni.server.api") for a in node.names):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


PROFILE_SCRIPT = """
import json, sys
from nni.runtime.experiment_profile import CLUSTER_METADATA_FILE
from nni.server.store import ExperimentStore, store_path
from nni.tools.nnictl.experiments import ExperimentRef

exp_dir = sys.argv[1]
config = {"experimentName": "seams", "trialCommand": "python t.py", "trialCodeDirectory": exp_dir, "trialConcurrency": 2,
          "maxExperimentDuration": "1h", "searchSpace": {"x": {"_type": "choice", "_value": [1, 2]}},
          "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}, "trainingService": {"platform": "local"}}
store = ExperimentStore(store_path(exp_dir))
store.create_experiment("seams002", config, exp_dir, 1000)
store.update_experiment(exec_duration=42, end_time=5000)
store.close()
(store_path(exp_dir).parent / CLUSTER_METADATA_FILE).write_text(json.dumps({"extra": 1}))
ref = ExperimentRef(id="seams002", name="seams", status="STOPPED", port=None, pid=None, platform="local",
                    start_time=1000, end_time=5000, workdir=exp_dir, alive=False)
profile = ref.read("profile")
print(json.dumps({"profile": profile, "handlers_loaded": "nni.server.api.handlers" in sys.modules,
                  "api_loaded": "nni.server.api" in sys.modules}))
"""


def test_nnictl_profile_of_a_stopped_experiment_uses_core(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROFILE_SCRIPT, str(tmp_path / "exp")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["handlers_loaded"] is False and result["api_loaded"] is False
    profile = result["profile"]
    assert profile["id"] == "seams002" and profile["execDuration"] == 42 and profile["endTime"] == 5000
    params = profile["params"]
    assert params["maxExecDuration"] == 3600 and params["tuner"]["builtinTunerName"] == "TPE"
    assert {"key": "extra", "value": 1} in params["clusterMetaData"]
    # the same function answers GET /experiment
    from nni.runtime.experiment_profile import experiment_profile
    from nni.server.api import handlers

    assert handlers.experiment_profile is experiment_profile


# ----- the split -----


def test_scheduler_uses_the_store_through_its_documented_interface():
    import nni.server.scheduler as scheduler

    used = set()
    for node in ast.walk(ast.parse(Path(scheduler.__file__).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "store":
            used.add(node.attr)
    documented = {name for name in used if f"``{name}``" in scheduler.__doc__}
    assert used and used == documented, sorted(used - documented)


def test_budget_status_machine():
    from nni.server.budget import Budget, TrialRecord

    config = {"trialConcurrency": 2, "maxTrialNumber": 3}
    budget = Budget(lambda: config)
    assert budget.to_request(in_flight=0, batch=32) == 2 and budget.to_request(in_flight=0, batch=1) == 1
    for i in range(3):
        budget.track(TrialRecord(f"t{i}", i, "WAITING", "{}", None))
    assert budget.left() == 0 and budget.closed() and not budget.may_start()
    assert budget.next_status("RUNNING", True, False, False) == "NO_MORE_TRIAL"  # 3 trials still active
    for i in range(3):
        assert budget.set_trial_status(budget.trials[f"t{i}"], "SUCCEEDED") is True
    assert budget.next_status("NO_MORE_TRIAL", True, False, False) == "DONE"
    budget.uncount(budget.trials["t0"])  # an interrupted trial frees its place
    assert budget.left() == 1 and not budget.closed()
    assert budget.next_status("DONE", False, False, False) == "RUNNING"
    config["maxTrialNumber"] = None
    assert budget.left() is None and budget.to_request(in_flight=0, batch=32) == 2


def test_router_bounds_and_counts_requests():
    from nni.server.routing import REQUEST_BATCH, DispatcherRouter
    from nni.server.scheduler import REQUEST_BATCH as reexported

    assert reexported == REQUEST_BATCH

    class Target:
        def __init__(self):
            self.changed = 0

        def accepts_trials(self):
            return True

        async def on_initialized(self):
            pass

        def on_trials_changed(self):
            self.changed += 1

        async def on_kill_requested(self, trial_id):
            pass

        async def on_parameter(self, trial_id, payload):
            pass

    target = Target()
    router = DispatcherRouter(target)
    router.request_trials(3)  # no client yet: counted, nothing sent
    router.add_customized({"x": 1})
    assert router.in_flight() == 4

    async def go():
        await router.on_command(CommandType.NewTrialJob, json.dumps({"parameter_source": "algorithm", "parameters": {}}))
        await router.on_command(CommandType.NewTrialJob, json.dumps({"parameter_source": "customized", "parameters": {"x": 1}}))
        await router.on_command(CommandType.NoMoreTrialJobs, "")

    asyncio.run(go())
    assert (router.pending_requests, router.pending_custom, len(router.ready)) == (0, 0, 2)
    assert router.tuner_exhausted and target.changed == 3
