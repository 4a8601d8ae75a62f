"""The REST route table and its tiny client (no server needed)."""
from __future__ import annotations

import pytest

from nni.runtime.rest_api import API_ROOT, ROUTES, RestClient, route, validate


def test_route_names_unique_and_paths_rooted():
    names = [r.name for r in ROUTES]
    assert len(names) == len(set(names))
    assert all(r.path.startswith("/") for r in ROUTES)
    assert {(r.method, r.path) for r in ROUTES} >= {
        ("GET", "/check-status"),
        ("GET", "/experiment"),
        ("PUT", "/experiment"),
        ("DELETE", "/experiment"),
        ("GET", "/trial-jobs"),
        ("POST", "/trial-jobs"),
        ("DELETE", "/trial-jobs/{id}"),
        ("GET", "/metric-data/{job_id}"),
        ("GET", "/export-data"),
        ("GET", "/job-statistics"),
    }


def test_url_building():
    c = RestClient(8080, prefix="/nni/")
    assert c.url(route("get_trial_job"), {"id": "a b"}) == f"http://127.0.0.1:8080/nni{API_ROOT}/trial-jobs/a%20b"
    assert c.url(route("list_trial_jobs"), None, {"status": "RUNNING", "x": None}).endswith("/trial-jobs?status=RUNNING")
    with pytest.raises(ValueError, match="needs path parameter 'id'"):
        c.url(route("get_trial_job"))


def test_validate_names_the_field():
    schema = route("add_customized_trial").request
    validate(schema, {"hyperParameters": {"x": 1}})
    with pytest.raises(ValueError, match=r"body.hyperParameters: required field is missing"):
        validate(schema, {})
    with pytest.raises(ValueError, match=r"body.hyperParameters: expected object or string, got int"):
        validate(schema, {"hyperParameters": 3})
    with pytest.raises(ValueError, match=r"query.update_type: must be one of"):
        validate(route("update_experiment_profile").query["update_type"], "NOPE", "query.update_type")
    with pytest.raises(ValueError, match=r"body\[0\].parameter"):
        validate(route("import_data").request, [{"value": 1}])
    with pytest.raises(ValueError, match="expected integer"):
        validate({"type": "integer"}, True)


def test_unreachable_manager_is_connection_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match="cannot reach the NNI manager"):
        RestClient(port, timeout=2).call("get_status")
