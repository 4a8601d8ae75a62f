"""The trial list for big experiments (issue 21): ``GET /trial-jobs`` pages (``offset`` /
``limit``, NNI's records), the web UI's column-wise list (``format=columns``) and details
(``format=details``), each checked against NNI's full list of the same store; the UI's model
(``static/js/model.js``, under Node) builds the same trials from them; the vendored plotly.js
partial bundle is the one the UI loads."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import nni.server
from nni.runtime.rest_api import API_ROOT
from nni.server.store import ExperimentStore, store_path
from nni.server.testing import serve_experiment, synthetic_experiment

WEBUI = Path(nni.server.__file__).parent / "webui"
N_TRIALS = 23


def _add_odd_trials(exp_dir: Path) -> None:
    """A running trial (intermediate results only), one whose parameter record is not JSON and
    whose final result is NaN, and one on another platform with a message."""
    store = ExperimentStore(store_path(exp_dir))
    conn = store.db.connection()
    with store.db.atomic():
        conn.executemany(
            "INSERT INTO trial (trial_id, sequence_id, status, parameter, parameter_id, submit_time, start_time, end_time,"
            " message, working_directory, counted, generation, source, platform) VALUES (?,?,?,?,?,?,?,?,?,?,1,0,'algorithm',?)",
            [
                ("Run01", N_TRIALS, "RUNNING", json.dumps({"parameter_id": 90, "parameters": {"lr": 0.5}}), "90", 1, 2, None, "", "/x/Run01", "local"),
                ("Odd01", N_TRIALS + 1, "SUCCEEDED", "{not json", "91", 1, 2, 3, "", "", "local"),
                ("Rem01", N_TRIALS + 2, "FAILED", json.dumps({"parameter_id": 92, "parameters": {"lr": 0.1}}), "92", 1, 2, 4,
                 "exit code 1", "/y/Rem01", "remote"),
            ],
        )
        conn.executemany(
            "INSERT INTO metric (trial_id, parameter_id, type, sequence, data, timestamp) VALUES (?,?,?,?,?,?)",
            [
                ("Run01", "90", "PERIODICAL", 0, json.dumps(json.dumps(0.25)), 5),  # double-encoded, as NNI stores it
                ("Run01", "90", "PERIODICAL", 1, json.dumps(json.dumps({"default": 0.5, "acc": 0.7})), 6),
                ("Odd01", "91", "FINAL", 0, "NaN", 7),
                ("Odd01", "91", "FINAL", 0, json.dumps(0.75), 8),  # a second final record: the last one counts
            ],
        )
    store.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    exp_dir = tmp_path_factory.mktemp("forms") / "forms001"
    synthetic_experiment(exp_dir, N_TRIALS, 3, "forms001")
    _add_odd_trials(exp_dir)
    server = serve_experiment(exp_dir, "forms001")
    yield server
    server.close()


def call(served, query: str = "", path: str = "/trial-jobs"):
    """(status, parsed JSON) of a GET with the server's token."""
    request = urllib.request.Request(f"{served.url}{API_ROOT}{path}{query}", headers={"Authorization": f"Bearer {served.token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def decoded_once(data: str):
    try:
        return json.loads(data)
    except ValueError:
        return data


def test_pages_are_slices_of_nni_list(served):
    _, jobs = call(served)
    assert len(jobs) == N_TRIALS + 3
    for offset, limit in ((0, 5), (5, 5), (20, 100), (26, 3), (0, 1)):
        status, page = call(served, f"?offset={offset}&limit={limit}")
        assert status == 200 and page == jobs[offset:offset + limit]
    assert call(served, "?offset=7")[1] == jobs[7:]
    failed = [j for j in jobs if j["status"] == "FAILED"]
    assert call(served, "?status=FAILED&offset=1&limit=2")[1] == failed[1:3]


@pytest.mark.parametrize("query, words", [
    ("?offset=-1", ["query.offset", "between 0", "-1"]),
    ("?limit=0", ["query.limit", "between 1", "0"]),
    ("?limit=ten", ["query.limit", "whole number", "'ten'"]),
    ("?format=csv", ["query.format", "nni, columns, details", "'csv'"]),
    ("?format=columns&limit=5", ["query.format", "'columns'", "limit"]),
    ("?format=details&status=FAILED", ["query.format", "'details'", "offset only"]),
])
def test_bad_list_queries_are_one_line_400s(served, query, words):
    status, body = call(served, query)
    assert status == 400 and "\n" not in body["error"]
    for word in words:
        assert word in body["error"]


def test_columns_hold_what_nni_list_and_metric_data_hold(served):
    _, jobs = call(served)
    _, metrics = call(served, path="/metric-data")
    status, table = call(served, "?format=columns")
    assert status == 200 and table["total"] == len(jobs)
    cols = table["columns"]
    assert set(cols) == set(ExperimentStore.TRIAL_TABLE_COLUMNS)
    assert all(len(values) == len(jobs) for values in cols.values())
    for i, job in enumerate(jobs):
        assert cols["trialJobId"][i] == job["trialJobId"] and cols["sequenceId"][i] == job["sequenceId"]
        assert cols["status"][i] == job["status"]
        assert cols["startTime"][i] == job.get("startTime") and cols["endTime"][i] == job.get("endTime")
        assert cols["message"][i] == job.get("message", "") and cols["platform"][i] == job.get("platform", "")
        finals = job["finalMetricData"]
        assert cols["finalData"][i] == (decoded_once(finals[-1]["data"]) if finals else None)
        periodical = [m for m in metrics if m["trialJobId"] == job["trialJobId"] and m["type"] == "PERIODICAL"]
        assert cols["latestSequence"][i] == (periodical[-1]["sequence"] if periodical else None)
        assert cols["latestData"][i] == (decoded_once(periodical[-1]["data"]) if periodical and not finals else None)
    run = cols["trialJobId"].index("Run01")
    assert cols["latestData"][run] == json.dumps({"default": 0.5, "acc": 0.7}) and cols["finalData"][run] is None
    assert cols["finalData"][cols["trialJobId"].index("Odd01")] == 0.75


def test_details_hold_parameters_and_directories(served):
    _, jobs = call(served)
    status, details = call(served, "?format=details")
    assert status == 200 and details["offset"] == 0
    cols = details["columns"]
    assert cols["trialJobId"] == [j["trialJobId"] for j in jobs]
    for i, job in enumerate(jobs):
        assert cols["hyperParameter"][i] == decoded_once(job["hyperParameters"][0])
        assert (f"file://localhost:{cols['workingDirectory'][i]}" if cols["workingDirectory"][i] else None) == job["logPath"]
    assert cols["hyperParameter"][cols["trialJobId"].index("Odd01")] == "{not json"
    _, tail = call(served, f"?format=details&offset={len(jobs) - 2}")
    assert tail["offset"] == len(jobs) - 2 and tail["columns"]["trialJobId"] == cols["trialJobId"][-2:]
    assert call(served, f"?format=details&offset={len(jobs)}")[1]["columns"]["trialJobId"] == []


MODEL_SCRIPT = """
import { ExperimentModel } from %s;
const [table, details, again] = JSON.parse(process.argv[1]);
globalThis.localStorage = { getItem: () => null, setItem: () => {} };
const m = new ExperimentModel();
m.applyTable(table);
const pendingBefore = m.detailsPending;
const first = m.trials.slice();
const rev = m.trialsRevision;
m.applyTable(again);   // the same list again: every record kept, no new revision
const kept = m.trials.every((t, i) => t === first[i]) && m.trialsRevision === rev;
const c = details.columns;
for (let i = 0; i < c.trialJobId.length; i++) m.byId.get(c.trialJobId[i]).setDetails({ record: c.hyperParameter[i], workdir: c.workingDirectory[i] });
console.log(JSON.stringify({ pendingBefore, kept, pendingAfter: m.detailsPending, best: m.best()?.id, counts: m.counts(),
  keys: m.metricKeys(),
  trials: m.trials.map((t) => ({ id: t.id, seq: t.seq, status: t.status, final: t.finalDefault ?? null, finalNaN: Number.isNaN(t.final),
    latest: t.latestDefault ?? null, count: t.intermediateCount, params: t.params ?? null, flat: t.flatParams, logPath: t.logPath,
    stderrPath: t.stderrPath, source: t.source })) }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_ui_model_builds_the_trials_of_nni_list(served, tmp_path):
    from nni.server.webui import constants_js

    _, jobs = call(served)
    _, metrics = call(served, path="/metric-data")
    _, table = call(served, "?format=columns")
    _, details = call(served, "?format=details")
    js = shutil.copytree(WEBUI / "static" / "js", tmp_path / "js")
    (js / "constants.js").write_text(constants_js())
    proc = subprocess.run(["node", "--input-type=module", "-e", MODEL_SCRIPT % json.dumps((js / "model.js").as_uri()),
                           json.dumps([table, details, table])], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["pendingBefore"] is True and out["kept"] is True and out["pendingAfter"] is False
    trials = {t["id"]: t for t in out["trials"]}
    assert [t["seq"] for t in out["trials"]] == sorted(j["sequenceId"] for j in jobs)
    best_value = None
    for job in jobs:
        t = trials[job["trialJobId"]]
        assert t["status"] == job["status"] and t["logPath"] == (job["logPath"] or "")
        assert t["stderrPath"] == job.get("stderrPath", "")
        record = decoded_once(job["hyperParameters"][0])
        if isinstance(record, dict):
            assert t["params"] == record["parameters"] and t["source"] == record.get("parameter_source")
        periodical = [m for m in metrics if m["trialJobId"] == job["trialJobId"] and m["type"] == "PERIODICAL"]
        assert t["count"] == len(periodical)
        if job["finalMetricData"]:
            value = json.loads(job["finalMetricData"][-1]["data"])
            value = value["default"] if isinstance(value, dict) else value
            assert t["final"] == pytest.approx(value)
            best_value = value if best_value is None else max(best_value, value)
        else:
            assert t["final"] is None
    assert trials["Run01"]["latest"] == 0.5 and trials["Run01"]["flat"] == {"lr": 0.5}
    assert trials["Odd01"]["params"] is None and trials["Odd01"]["final"] == 0.75
    assert trials["T00001"]["flat"]["optimizer"] in ("sgd", "adam")
    assert out["keys"] == ["loss"]
    assert out["counts"] == {s: sum(j["status"] == s for j in jobs) for s in {j["status"] for j in jobs}}
    assert trials[out["best"]]["final"] == pytest.approx(best_value)


def test_vendored_plotly_bundle_is_what_the_ui_loads(served):
    charts = (WEBUI / "static" / "js" / "charts.js").read_text(encoding="utf-8")
    rel = re.search(r"PLOTLY_BUNDLE = '(static/vendor/[^']+)'", charts).group(1)
    bundle = WEBUI / rel
    head = bundle.read_text(encoding="utf-8")[:600]
    assert "plotly.js v" in head and "scatter, scattergl, bar, parcoords" in head and "MIT" in head
    assert (bundle.parent / "plotly.js-LICENSE.txt").is_file()
    # a partial bundle: a third of the full one
    assert 1_000_000 < bundle.stat().st_size < 2_000_000
    request = urllib.request.Request(f"{served.url}/{rel}", headers={"Authorization": f"Bearer {served.token}"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=20) as resp:
        assert resp.status == 200 and "immutable" in resp.headers["Cache-Control"]
        assert len(resp.read()) == bundle.stat().st_size


def test_index_preloads_every_module():
    html = (WEBUI / "index.html").read_text(encoding="utf-8")
    preloaded = set(re.findall(r'<link rel="modulepreload" href="static/js/([^"]+)">', html))
    on_disk = {p.relative_to(WEBUI / "static" / "js").as_posix() for p in (WEBUI / "static" / "js").rglob("*.js")}
    assert preloaded == on_disk | {"constants.js"}  # constants.js: generated by the server
