"""Multi-fidelity comparison: Hyperband and BOHB against random search at equal total budget.

The objective is a synthetic function whose *bias and noise shrink with the budget*, like a
model trained for ``b`` of ``R`` epochs: a configuration ``x`` evaluated with budget ``b``
observes ``f(x) + 20 (1 - b/R) + 5 (1 - b/R) N(0, 1)``; at the full budget ``R`` the
observation is exact. Every method gets the same total budget, ``full_evaluations * R``
(default 100 full evaluations, ``R = 27``). Random search spends it on full evaluations
of NNI's ``Random`` tuner; the advisors spend it on their brackets (many cheap evaluations,
few full ones).

Score: the best *true* objective ``f(x)`` among the configurations evaluated at the full
budget so far, read at 25 %, 50 % and 100 % of the total budget (lower is better); a method
that has evaluated nothing at full budget yet scores ``inf``. Medians over seeds.

The advisors run in-process and are driven through their command protocol
(``Initialize``, ``RequestTrialJobs``, ``ReportMetricData``, ``TrialEnd``), one trial at a
time, with their ``send`` captured instead of written to a pipe — what the manager does,
without processes.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .tasks import branin, hartmann3

MAX_BUDGET = 27
FRACTIONS = (0.25, 0.5, 1.0)
METHODS = ("Random", "Hyperband", "BOHB")
TRIAL_BUDGET_KEY = "TRIAL_BUDGET"  # the parameter that carries a trial's budget (hpo.md, Hyperband)
BIAS, NOISE = 20.0, 5.0

MF_TASKS: dict[str, tuple[dict, Callable[[dict], float], float]] = {
    "branin": ({"x1": {"_type": "uniform", "_value": [-5.0, 10.0]},
                "x2": {"_type": "uniform", "_value": [0.0, 15.0]}},
               lambda p: branin(float(p["x1"]), float(p["x2"])), 0.397887),
    "hartmann3": ({f"x{i}": {"_type": "uniform", "_value": [0.0, 1.0]} for i in (1, 2, 3)},
                  lambda p: hartmann3([float(p[f"x{i}"]) for i in (1, 2, 3)]), -3.86278),
}


def budgeted(f: Callable[[dict], float], seed: int, max_budget: int = MAX_BUDGET) -> Callable[[dict, int], float]:
    """``f`` observed at budget ``b``: bias and noise shrink linearly to 0 at ``max_budget``."""
    rng = np.random.default_rng(1000 + seed)

    def observe(params: dict, budget: int) -> float:
        gap = 1.0 - budget / max_budget
        return f(params) + BIAS * gap + NOISE * gap * float(rng.standard_normal())

    return observe


class AdvisorDriver:
    """Plays the manager for an advisor in this process: one trial at a time, each trial's
    final result and end reported before the next request."""

    def __init__(self, advisor: Any):
        self.advisor = advisor
        self.sent: list[tuple[str, str]] = []
        advisor.send = lambda command, data="": self.sent.append((command.value.decode(), data))

    def command(self, command: Any, payload: Any) -> None:
        self.advisor.process_command(command, payload if isinstance(payload, str) else json.dumps(payload))

    def _take(self, code: str) -> list:
        out = [d for c, d in self.sent if c == code]
        self.sent = [(c, d) for c, d in self.sent if c != code]
        return out

    def run(self, space: dict, observe: Callable[[dict, int], float], total_budget: float,
            on_trial: Callable[[dict, int, float], None]) -> None:
        """Run trials until ``total_budget`` is spent (a trial that would overrun it is not run)
        or the advisor has nothing more to give."""
        from nni.runtime.protocol import CommandType

        self.command(CommandType.Initialize, space)
        errors = self._take("ER")
        if errors:
            raise ValueError(f"search space: rejected by {type(self.advisor).__name__}: {errors[0]}")
        self.sent.clear()
        used = 0
        queue: list[dict] = []
        self.command(CommandType.RequestTrialJobs, 1)
        while True:
            queue += [json.loads(d) for d in self._take("TR")]
            if not queue:
                break  # NoMoreTrialJobs
            trial = queue.pop(0)
            params = dict(trial["parameters"])
            budget = int(params.pop(TRIAL_BUDGET_KEY))
            if used + budget > total_budget:
                break
            used += budget
            value = observe(params, budget)
            pid, job = trial["parameter_id"], f"T{trial['parameter_id']}"
            self.command(CommandType.ReportMetricData, {"parameter_id": pid, "trial_job_id": job, "type": "FINAL",
                                                        "sequence": 0, "value": json.dumps(value)})
            self.command(CommandType.TrialEnd, {"trial_job_id": job, "event": "SUCCEEDED",
                                                "hyper_params": json.dumps(trial)})
            on_trial(params, budget, value)
            self.command(CommandType.RequestTrialJobs, 1)


def make_method(name: str, seed: int, max_budget: int = MAX_BUDGET) -> Any:
    """The registered tuner or advisor ``name``, minimising, seeded with ``seed``."""
    from nni.runtime import registry

    if name == "Random":
        return registry.load_class("tuner", "Random")(seed=seed)
    if name == "Hyperband":
        adv = registry.load_class("advisor", "Hyperband")(R=max_budget, eta=3, optimize_mode="minimize")
    elif name == "BOHB":
        adv = registry.load_class("advisor", "BOHB")(optimize_mode="minimize", min_budget=1,
                                                     max_budget=max_budget, eta=3)
    else:
        raise ValueError(f"--multifidelity: unknown method {name!r}; choose from {', '.join(METHODS)}")
    adv.rng = np.random.default_rng(seed)  # the advisors sample with self.rng
    return adv


def run_method(name: str, task: str, seed: int, full_evaluations: int = 100,
               max_budget: int = MAX_BUDGET) -> dict:
    """One run; returns its trace: ``curve`` = [(budget used, best true value at full budget)]
    after every trial, plus trial counts."""
    space, f, _ = MF_TASKS[task]
    total = full_evaluations * max_budget
    observe = budgeted(f, seed, max_budget)
    curve: list[tuple[int, float]] = []
    counts = {"trials": 0, "full_budget_trials": 0}
    state = {"used": 0, "best": math.inf}

    def on_trial(params: dict, budget: int, _value: float) -> None:
        state["used"] += budget
        counts["trials"] += 1
        if budget == max_budget:
            counts["full_budget_trials"] += 1
            state["best"] = min(state["best"], f(params))
        curve.append((state["used"], state["best"]))

    np.random.seed(seed)
    method = make_method(name, seed, max_budget)
    start = time.perf_counter()
    if name == "Random":  # full evaluations only: the total budget buys full_evaluations of them
        method.update_search_space(space)
        for pid in range(full_evaluations):
            params = method.generate_parameters(pid)
            value = observe(params, max_budget)
            method.receive_trial_result(pid, params, value)
            on_trial(params, max_budget, value)
    else:
        AdvisorDriver(method).run(space, observe, total, on_trial)
    return {"curve": curve, **counts, "seconds": time.perf_counter() - start}


def best_at(curve: Sequence[tuple[int, float]], budget: float) -> float:
    """The score after ``budget`` units were spent (``inf`` before the first full evaluation)."""
    best = math.inf
    for used, value in curve:
        if used > budget:
            break
        best = value
    return best


def run_multifidelity(tasks: Sequence[str] = tuple(MF_TASKS), seeds: int = 10, full_evaluations: int = 100,
                      max_budget: int = MAX_BUDGET, methods: Sequence[str] = METHODS) -> dict:
    """Every method on every task for ``seeds`` seeds; returns the report (see :func:`mf_table`)."""
    for task in tasks:
        if task not in MF_TASKS:
            raise ValueError(f"--tasks: {task!r} is not a multi-fidelity task; choose from {', '.join(MF_TASKS)}")
    if seeds < 1:
        raise ValueError(f"--seeds: must be at least 1, got {seeds}")
    total = full_evaluations * max_budget
    started = time.perf_counter()
    report: dict[str, Any] = {
        "meta": {"max_budget": max_budget, "eta": 3, "full_evaluations": full_evaluations, "total_budget": total,
                 "seeds": seeds, "fractions": list(FRACTIONS), "bias": BIAS, "noise": NOISE,
                 "objective": f"f(x) + {BIAS:g}(1 - b/{max_budget}) + {NOISE:g}(1 - b/{max_budget}) N(0, 1)"},
        "tasks": {t: {"optimum": MF_TASKS[t][2]} for t in tasks}, "methods": list(methods), "summary": {}, "runs": {},
    }
    for task in tasks:
        report["summary"][task], report["runs"][task] = {}, {}
        for name in methods:
            runs = [run_method(name, task, s, full_evaluations, max_budget) for s in range(seeds)]
            report["runs"][task][name] = [{"seed": s, "trials": r["trials"], "full_budget_trials": r["full_budget_trials"],
                                           **{str(fr): best_at(r["curve"], fr * total) for fr in FRACTIONS}}
                                          for s, r in enumerate(runs)]
            summary: dict[str, Any] = {}
            for fr in FRACTIONS:
                scores = [best_at(r["curve"], fr * total) for r in runs]
                summary[str(fr)] = {"median": statistics.median(scores),
                                    "q1": float(np.percentile(scores, 25)), "q3": float(np.percentile(scores, 75))}
            summary["trials"] = statistics.median(r["trials"] for r in runs)
            summary["full_budget_trials"] = statistics.median(r["full_budget_trials"] for r in runs)
            report["summary"][task][name] = summary
    report["meta"]["wall_seconds"] = round(time.perf_counter() - started, 1)
    return report


def _fmt(x: float) -> str:
    return "none yet" if not math.isfinite(x) else f"{x:.4g}"


def mf_table(report: dict) -> str:
    """The comparison as markdown: median [q1, q3] best true value at each budget fraction."""
    meta = report["meta"]
    fracs = meta["fractions"]
    lines = [
        f"Multi-fidelity: objective {meta['objective']}; total budget {meta['total_budget']} "
        f"(= {meta['full_evaluations']} full evaluations at b = {meta['max_budget']}); score = best true value "
        f"among configurations evaluated at full budget (lower is better); median [q1, q3] over {meta['seeds']} seeds.",
        "",
        "| task | method | " + " | ".join(f"{int(round(100 * f))} % budget" for f in fracs)
        + " | trials (full budget) |",
        "|---|---|" + "---|" * len(fracs) + "---|",
    ]
    for task, per in report["summary"].items():
        label = f"{task} (min {report['tasks'][task]['optimum']:g})"
        for name in report["methods"]:
            s = per[name]
            cells = [f"{_fmt(s[str(f)]['median'])} [{_fmt(s[str(f)]['q1'])}, {_fmt(s[str(f)]['q3'])}]" for f in fracs]
            lines.append(f"| {label} | {name} | " + " | ".join(cells)
                         + f" | {s['trials']:g} ({s['full_budget_trials']:g}) |")
    return "\n".join(lines) + "\n"


def _finite(obj: Any) -> Any:
    """``inf`` (nothing evaluated at full budget yet) as ``null``: strict JSON has no infinity."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_mf_outputs(report: dict, out: Path) -> dict[str, Path]:
    """Write ``multifidelity.json`` and ``multifidelity.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "multifidelity.json", "table": out / "multifidelity.md"}
    paths["json"].write_text(json.dumps(_finite(report), indent=1), encoding="utf-8")
    paths["table"].write_text(mf_table(report), encoding="utf-8")
    return paths
