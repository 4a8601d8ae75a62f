"""``nnictl experiment export`` formats, built from REST-shaped data (no I/O here).

JSON: ``[{"parameter": {...}, "value": <final result>, "trialJobId": "..."}]`` (plus
``"intermediate": [...]`` with ``--intermediate``): exactly what ``nnictl experiment import``
reads. CSV: one row per trial with a final result: ``trialJobId``, one column per
hyper-parameter (nested values as JSON), ``reward`` (the default metric), one column per other
key of a dict metric, and with ``--intermediate`` an ``intermediate`` column (JSON list).
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable, Optional


def decode(value: Any) -> Any:
    """Metric values travel as JSON strings (sometimes JSON of a JSON string, as NNI's trial API does)."""
    for _ in range(2):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


def default_metric(value: Any) -> Optional[float]:
    """The number a trial is ranked by: a number, or the ``default`` key of a dict."""
    value = decode(value)
    if isinstance(value, dict):
        value = value.get("default")
    if isinstance(value, bool):
        return None
    return value if isinstance(value, (int, float)) else None


def intermediates_by_trial(metric_records: Iterable[dict]) -> dict[str, list[Any]]:
    """PERIODICAL records -> ``{trialJobId: [value, ...]}`` in reporting order."""
    out: dict[str, list[Any]] = {}
    for rec in sorted(metric_records, key=lambda r: (r.get("timestamp") or 0, r.get("sequence") or 0)):
        if rec.get("type") == "PERIODICAL":
            out.setdefault(rec["trialJobId"], []).append(decode(rec.get("data")))
    return out


def export_records(export_data: Iterable[dict], intermediates: Optional[dict[str, list]] = None) -> list[dict]:
    """``GET /export-data`` answer -> import-ready records."""
    records = []
    for item in export_data:
        parameter = decode(item.get("parameter"))
        if isinstance(parameter, dict) and "parameters" in parameter and "parameter_id" in parameter:
            parameter = parameter["parameters"]
        rec = {"parameter": parameter, "value": decode(item.get("value")), "trialJobId": item.get("trialJobId")}
        if intermediates is not None:
            rec["intermediate"] = intermediates.get(item.get("trialJobId"), [])
        records.append(rec)
    return records


def to_json(records: list[dict]) -> str:
    return json.dumps(records, indent=4, ensure_ascii=False) + "\n"


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


def to_csv(records: list[dict], intermediate: bool = False) -> str:
    param_keys: list[str] = []
    metric_keys: list[str] = []
    for rec in records:
        params = rec["parameter"] if isinstance(rec["parameter"], dict) else {"parameter": rec["parameter"]}
        param_keys += [k for k in params if k not in param_keys]
        if isinstance(rec["value"], dict):
            metric_keys += [k for k in rec["value"] if k != "default" and k not in metric_keys]
    header = ["trialJobId", *param_keys, "reward", *metric_keys] + (["intermediate"] if intermediate else [])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for rec in records:
        params = rec["parameter"] if isinstance(rec["parameter"], dict) else {"parameter": rec["parameter"]}
        value = rec["value"]
        metrics = value if isinstance(value, dict) else {}
        row = [rec.get("trialJobId"), *(_cell(params.get(k)) for k in param_keys), _cell(default_metric(value) if metrics else value)]
        row += [_cell(metrics.get(k)) for k in metric_keys]
        if intermediate:
            row.append(json.dumps(rec.get("intermediate", []), ensure_ascii=False))
        writer.writerow(row)
    return buf.getvalue()


def check_import_data(data: Any, source: str) -> list[dict]:
    """Validate an import file's content: a list of ``{"parameter": {...}, "value": ...}``."""
    if not isinstance(data, list):
        raise ValueError(f"{source}: expected a JSON list of {{\"parameter\": {{...}}, \"value\": ...}} records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise ValueError(f"{source}[{i}]: expected an object with 'parameter' and 'value', got {type(rec).__name__}")
        for key in ("parameter", "value"):
            if key not in rec:
                raise ValueError(f"{source}[{i}].{key}: required field is missing")
        if not isinstance(rec["parameter"], dict):
            raise ValueError(f"{source}[{i}].parameter: expected an object of hyper-parameters")
        if default_metric(rec["value"]) is None:
            raise ValueError(f"{source}[{i}].value: expected a number or a dict with a numeric 'default', got {rec['value']!r}")
    return [{k: v for k, v in rec.items() if k in ("parameter", "value")} for rec in data]
