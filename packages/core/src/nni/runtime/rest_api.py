"""NNI's REST API, defined once: routes, payload schemas, and a small client.

The manager (``nni.server``) registers one handler per :class:`Route` (the handler is looked up
by ``Route.name``); the Python ``Experiment`` API and ``nnictl`` call routes through
:class:`RestClient`; the OpenAPI document is generated from :data:`ROUTES` and the schemas
below. Schemas are JSON-Schema dicts (the subset :func:`validate` checks).

Paths are relative to :data:`API_ROOT` (``/api/v1/nni``) and use ``{name}`` placeholders.
Only the standard library is used here: ``import nni`` must stay light.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from .states import ExperimentStatus, TensorboardStatus, TrialJobStatus, names

API_ROOT = "/api/v1/nni"

# The status names come from nni.runtime.states, their only definition.
EXPERIMENT_STATUSES = names(ExperimentStatus)
TRIAL_STATUSES = names(TrialJobStatus)
METRIC_TYPES = ["PERIODICAL", "FINAL", "CUSTOM", "REQUEST_PARAMETER"]
UPDATE_TYPES = ["TRIAL_CONCURRENCY", "MAX_EXEC_DURATION", "SEARCH_SPACE", "MAX_TRIAL_NUM"]

# ----- schemas -----

STRING = {"type": "string"}
INT = {"type": "integer"}

#: SQLite stores 8-byte integers: a request integer outside this range is refused (400).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Limits of the budget fields: the one definition, used by the config checks
#: (``nni.experiment.config.base``) and published in this module's schema. Beyond them a value is
#: a typo or an attack, and would overflow SQLite, JavaScript numbers in the web UI or timers.
MAX_TRIAL_CONCURRENCY = 2**31 - 1
MAX_TRIAL_NUMBER = 2**31 - 1
MAX_DURATION_SECONDS = 36500 * 86400
#: Deepest nesting of arrays / objects accepted in a request body (search spaces need < 10).
MAX_NESTING = 100
#: Largest request body (413 beyond): NNI accepts JSON bodies up to 50 MB.
MAX_BODY_BYTES = 50 * 1024 * 1024
#: A duration as ``parse_duration`` reads it: ``'30s'``, ``'10m'``, ``'0.5h'``, ``'1d'``, ``'90'``.
DURATION_PATTERN = r"^\s*(\d*[1-9]\d*(\.\d*)?|\d*\.\d*[1-9]\d*)\s*[smhdSMHD]?\s*$"  # > 0
NUMBER = {"type": "number"}
ANY: dict = {}

ERROR = {"type": "object", "properties": {"error": STRING}, "required": ["error"]}

STATUS = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": EXPERIMENT_STATUSES}, "errors": {"type": "array", "items": STRING},
                   "warnings": {"type": "array", "items": STRING, "description": "transient problems, e.g. a dispatcher not answering"}},
    "required": ["status", "errors"],
}

PROFILE_PARAMS = {
    "type": "object",
    "description": "NNI's v1-style experiment parameters plus the canonical v2 config under 'config'.",
    "properties": {
        "experimentName": {"type": ["string", "null"]},
        "trialConcurrency": INT,
        "maxExecDuration": {"type": ["number", "null"], "description": "seconds"},
        "maxTrialNum": {"type": ["integer", "null"]},
        "searchSpace": {"type": "string", "description": "the search space as a JSON string"},
        "trainingServicePlatform": STRING,
        "config": {"type": "object"},
    },
}

PROFILE = {
    "type": "object",
    "properties": {
        "id": STRING,
        "revision": INT,
        "execDuration": NUMBER,
        "logDir": STRING,
        "nextSequenceId": INT,
        "params": PROFILE_PARAMS,
        "startTime": INT,
        "endTime": {"type": ["integer", "null"]},
    },
    "required": ["id", "revision", "execDuration", "logDir", "nextSequenceId", "params", "startTime"],
}

METRIC_RECORD = {
    "type": "object",
    "properties": {
        "timestamp": INT,
        "trialJobId": STRING,
        "parameterId": {"type": ["string", "null"]},
        "type": {"type": "string", "enum": METRIC_TYPES},
        "sequence": INT,
        "data": {"type": "string", "description": "the metric as a JSON string"},
    },
    "required": ["timestamp", "trialJobId", "parameterId", "type", "sequence", "data"],
}

TRIAL_JOB_INFO = {
    "type": "object",
    "properties": {
        "trialJobId": STRING,
        "sequenceId": INT,
        "status": {"type": "string", "enum": TRIAL_STATUSES},
        "submitTime": INT,
        "startTime": INT,
        "endTime": INT,
        "hyperParameters": {"type": "array", "items": STRING},
        "logPath": {"type": ["string", "null"]},
        "finalMetricData": {"type": "array", "items": METRIC_RECORD},
        "message": STRING,
        "stderrPath": STRING,
        "platform": {"type": "string", "description": "the training platform that ran the trial (local, remote ...)"},
    },
    "required": ["trialJobId", "sequenceId", "status", "hyperParameters", "finalMetricData"],
}

JOB_STATISTICS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"trialJobStatus": {"type": "string", "enum": TRIAL_STATUSES}, "trialJobNumber": INT},
        "required": ["trialJobStatus", "trialJobNumber"],
    },
}

EXPORT_RECORD = {
    "type": "object",
    "properties": {"parameter": ANY, "value": {"type": "string", "description": "final metric as JSON string"}, "trialJobId": STRING},
    "required": ["parameter", "value", "trialJobId"],
}

EXPERIMENT_METADATA = {
    "type": "object",
    "properties": {
        "id": STRING,
        "experimentName": {"type": ["string", "null"]},
        "port": {"type": ["integer", "null"]},
        "pid": {"type": ["integer", "null"]},
        "status": {"type": ["string", "null"]},
        "startTime": {"type": ["integer", "null"]},
        "endTime": {"type": ["integer", "null"]},
        "platform": {"type": ["string", "null"]},
        "logDir": {"type": ["string", "null"]},
        "tag": {"type": "array", "items": STRING},
    },
    "required": ["id", "status"],
}

PROFILE_UPDATE = {
    "type": "object",
    "description": "the profile (as from GET /experiment) with the changed field in params: "
    "params must hold the field that update_type names (trialConcurrency, maxExecDuration, "
    "searchSpace or maxTrialNum); a search space is checked against the experiment's tuner",
    "properties": {
        "params": {
            "type": "object",
            "properties": {
                "trialConcurrency": {"type": "integer", "minimum": 1, "maximum": MAX_TRIAL_CONCURRENCY},
                "maxTrialNum": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TRIAL_NUMBER},
                "maxExecDuration": {
                    "type": ["number", "string", "null"],
                    "description": "seconds, or a duration such as '2h' (at most 100 years)",
                    "exclusiveMinimum": 0,
                    "maximum": MAX_DURATION_SECONDS,
                    "pattern": DURATION_PATTERN,
                },
                "searchSpace": {"description": "the search space, or its JSON text; its format is the tuner's "
                                "(built-in tuners: an object of {_type, _value}; custom ones may take any JSON)"},
            },
        }
    },
    "required": ["params"],
}

CLUSTER_METADATA = {
    "type": "object",
    "description": "training-service metadata as NNI v2.5 takes it: {key: value, ...} (e.g. trial_config)",
}

CUSTOMIZED_TRIAL = {
    "type": "object",
    "description": "hyperParameters: the trial's parameters (an object, or its JSON string)",
    "properties": {"hyperParameters": {"type": ["object", "string"], "description": "an object, or its JSON text"}},
    "required": ["hyperParameters"],
}

IMPORT_DATA = {
    "type": "array",
    "items": {"type": "object", "properties": {"parameter": {"type": "object"}, "value": ANY}, "required": ["parameter", "value"]},
}

#: Files of a trial's directory that ``GET /trial-file/{id}/{filename}`` serves (nothing else).
TRIAL_FILES = ["trial.log", "stderr", "stdout", "model.onnx"]

TENSORBOARD_STATUSES = names(TensorboardStatus)

TENSORBOARD_TASK = {
    "type": "object",
    "properties": {
        "id": STRING,
        "status": {"type": "string", "enum": TENSORBOARD_STATUSES},
        "trialJobIdList": {"type": "array", "items": STRING},
        "trialLogDirectoryList": {"type": "array", "items": STRING},
        "pid": {"type": ["integer", "null"]},
        "port": {"type": ["integer", "null"]},
    },
    "required": ["id", "status", "trialJobIdList", "trialLogDirectoryList", "pid", "port"],
}

TENSORBOARD_START = {
    "type": "object",
    "description": "trials: comma-separated trial ids whose $NNI_OUTPUT_DIR/tensorboard logs to show",
    "properties": {"trials": {"type": "string", "pattern": "[^,\\s]", "description": "at least one trial id"}},
    "required": ["trials"],
}


@dataclass(frozen=True)
class Route:
    """One REST route.

    Args:
        name: handler name on the server and method name of the client.
        method: HTTP method.
        path: path under :data:`API_ROOT`, with ``{param}`` placeholders.
        summary: one line for the OpenAPI document.
        query: query parameters: name -> schema.
        required_query: the query parameters that must be given.
        path_schemas: schemas of path parameters (a string of any value when not listed).
        request: schema of the JSON body, or ``None`` for no body.
        response: schema of the JSON answer (``None``: empty body).
        content: media type of the answer (``application/json`` unless the route serves a file).
        conflict: when the experiment's state can refuse a valid request (answered 409), why.
    """

    name: str
    method: str
    path: str
    summary: str
    query: dict = field(default_factory=dict)
    required_query: tuple = ()
    path_schemas: dict = field(default_factory=dict)
    request: Optional[dict] = None
    response: Optional[dict] = None
    content: str = "application/json"
    conflict: str = ""

    @property
    def path_params(self) -> list[str]:
        return [p[1:-1] for p in self.path.split("/") if p.startswith("{") and p.endswith("}")]


ROUTES: tuple[Route, ...] = (
    Route("get_version", "GET", "/version", "NNI version", response=STRING),
    Route("get_status", "GET", "/check-status", "experiment status and error messages", response=STATUS),
    Route("get_experiment_profile", "GET", "/experiment", "experiment profile", response=PROFILE),
    Route(
        "update_experiment_profile",
        "PUT",
        "/experiment",
        "update one field of the profile (concurrency, max duration, max trial number, search space)",
        query={"update_type": {"type": "string", "enum": UPDATE_TYPES}},
        required_query=("update_type",),
        request=PROFILE_UPDATE,
        response={"type": "object", "description": "{} (as NNI v2.5); GET /experiment shows the new profile"},
    ),
    Route(
        "set_cluster_metadata",
        "PUT",
        "/experiment/cluster-metadata",
        "set training-service metadata: a JSON object of key -> value, shown in the profile's params.clusterMetaData",
        request=CLUSTER_METADATA,
        response={"type": "object"},
    ),
    Route("stop_experiment", "DELETE", "/experiment", "stop the experiment (the manager exits)", response=ANY),
    Route("import_data", "POST", "/experiment/import-data", "give trial results to the tuner", request=IMPORT_DATA, response=ANY),
    Route("get_imported_data", "GET", "/experiment/imported-data", "data imported so far", response={"type": "array"}),
    Route("get_job_statistics", "GET", "/job-statistics", "number of trials per status", response=JOB_STATISTICS),
    Route(
        "list_trial_jobs",
        "GET",
        "/trial-jobs",
        "every trial",
        query={"status": {"type": "string", "enum": TRIAL_STATUSES}},
        response={"type": "array", "items": TRIAL_JOB_INFO},
    ),
    Route("get_trial_job", "GET", "/trial-jobs/{id}", "one trial", response=TRIAL_JOB_INFO),
    Route(
        "add_customized_trial",
        "POST",
        "/trial-jobs",
        "add a trial with given parameters",
        request=CUSTOMIZED_TRIAL,
        response={"type": "object", "properties": {"sequenceId": INT}, "required": ["sequenceId"]},
        conflict="maxTrialNumber is reached, or the experiment is stopped or in ERROR",
    ),
    Route("cancel_trial_job", "DELETE", "/trial-jobs/{id}", "cancel (kill) a trial: USER_CANCELED", response=ANY),
    Route(
        "get_metric_data",
        "GET",
        "/metric-data",
        "every metric record",
        query={"type": {"type": "string", "enum": METRIC_TYPES}},
        response={"type": "array", "items": METRIC_RECORD},
    ),
    Route(
        "get_trial_metric_data",
        "GET",
        "/metric-data/{job_id}",
        "metric records of one trial",
        query={"type": {"type": "string", "enum": METRIC_TYPES}},
        response={"type": "array", "items": METRIC_RECORD},
    ),
    Route(
        "get_metric_data_range",
        "GET",
        "/metric-data-range/{min_seq_id}/{max_seq_id}",
        "metric records of trials with sequence ids in a range",
        path_schemas={n: {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX} for n in ("min_seq_id", "max_seq_id")},
        response={"type": "array", "items": METRIC_RECORD},
    ),
    Route("get_metric_data_latest", "GET", "/metric-data-latest", "latest metric record of every trial", response={"type": "array", "items": METRIC_RECORD}),
    Route("export_data", "GET", "/export-data", "final results: parameter, value, trialJobId", response={"type": "array", "items": EXPORT_RECORD}),
    Route("get_experiment_metadata", "GET", "/experiment-metadata", "this experiment's registry entry", response=EXPERIMENT_METADATA),
    Route("get_experiments_info", "GET", "/experiments-info", "every experiment on this machine", response={"type": "array", "items": EXPERIMENT_METADATA}),
    # ----- web UI routes -----
    Route(
        "start_experiment",
        "POST",
        "/experiment",
        "start the experiment: a manager runs the one experiment it was launched with; answers its id",
        request={"type": "object"},
        response={"type": "object", "properties": {"experiment_id": STRING}, "required": ["experiment_id"]},
    ),
    Route(
        "get_trial_file",
        "GET",
        "/trial-file/{id}/{filename}",
        f"a file of the trial's directory: {', '.join(TRIAL_FILES)} (text as UTF-8, model.onnx as bytes)",
        path_schemas={"filename": {"type": "string", "enum": TRIAL_FILES}},
        response=STRING,
        content="text/plain",
    ),
    Route("start_tensorboard", "POST", "/tensorboard", "start TensorBoard on the logs of some trials", request=TENSORBOARD_START, response=TENSORBOARD_TASK),
    Route("get_tensorboard", "GET", "/tensorboard/{id}", "one TensorBoard task", response=TENSORBOARD_TASK),
    Route("restart_tensorboard", "PUT", "/tensorboard/{id}", "restart a stopped TensorBoard task", response=TENSORBOARD_TASK),
    Route("stop_tensorboard", "DELETE", "/tensorboard/{id}", "stop one TensorBoard task", response=TENSORBOARD_TASK),
    Route("list_tensorboard_tasks", "GET", "/tensorboard-tasks", "every TensorBoard task", response={"type": "array", "items": TENSORBOARD_TASK}),
    Route("stop_all_tensorboards", "DELETE", "/tensorboard-tasks", "stop every TensorBoard task", response={"type": "array", "items": TENSORBOARD_TASK}),
    Route("get_openapi", "GET", "/openapi.json", "this document: the OpenAPI 3 description of every route", response={"type": "object"}),
)

_BY_NAME = {r.name: r for r in ROUTES}


def route(name: str) -> Route:
    """The route called ``name``; ``KeyError`` if none."""
    return _BY_NAME[name]


# ----- validation -----

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def validate(schema: Optional[dict], value: Any, path: str = "body") -> None:
    """Check ``value`` against the subset of JSON Schema used here; ``ValueError`` naming the field."""
    if not schema:
        return
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        ok = False
        for n in names:
            t = _TYPES[n]
            if isinstance(value, bool) and n in ("integer", "number"):
                continue
            if isinstance(value, t):
                ok = True
                break
        if not ok:
            raise ValueError(f"{path}: expected {' or '.join(names)}, got {type(value).__name__}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{path}: must be one of {', '.join(map(str, schema['enum']))}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(schema, value, path)
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise ValueError(f"{path}: must have at least {schema['minLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            wanted = schema.get("description") or f"a string matching {schema['pattern']}"
            raise ValueError(f"{path}: expected {wanted}, got {value[:60]!r}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise ValueError(f"{path}.{key}: required field is missing")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                validate(sub, value[key], f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(schema["items"], item, f"{path}[{i}]")


def _check_number(schema: dict, value: Any, path: str) -> None:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if isinstance(value, int):  # SQLite stores 8-byte integers; a bigger one would crash the store
        lo = INT64_MIN if lo is None else max(lo, INT64_MIN)
        hi = INT64_MAX if hi is None else min(hi, INT64_MAX)
    elif value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{path}: must be a finite number, got {value!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{path}: must be >= {lo}, got {value!r}")
    excl = schema.get("exclusiveMinimum")
    if excl is not None and value <= excl:
        raise ValueError(f"{path}: must be > {excl}, got {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{path}: must be <= {hi}, got {value if abs(value) < 10**30 else f'a {len(str(abs(int(value))))}-digit number'}")


def nesting_depth(value: Any) -> int:
    """How deeply arrays / objects nest in ``value`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((item, depth + 1) for item in node if isinstance(item, (dict, list)))
    return deepest


# ----- client -----


class RestError(RuntimeError):
    """The manager answered with an error (``status`` the HTTP code, ``str()`` its message)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def _is_local(host: str) -> bool:
    """An address of this machine's loopback (a token found locally is never sent elsewhere)."""
    host = (host or "").strip().strip("[]").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.")


# The manager is on loopback: never send its requests through an HTTP(S)_PROXY.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RestClient:
    """Calls the routes of one manager.

    Example:
        >>> client = RestClient(8080)                 # doctest: +SKIP
        >>> client.call("get_status")["status"]       # doctest: +SKIP
        'RUNNING'

    Args:
        port: the manager's port.
        host: default ``127.0.0.1``.
        prefix: URL prefix the manager was started with (``/nni``), if any.
        token: the manager's access token. ``None`` (default): found by itself for a manager of
            this machine (the token file of the experiment the registry lists on ``port``);
            ``False`` or ``""``: send none (a manager started with ``--no-token``).
        timeout: seconds per request.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", prefix: str = "", token: Union[str, bool, None] = None, timeout: float = 20) -> None:
        self.port = port
        self.host = host
        self.prefix = "/" + prefix.strip("/") if prefix and prefix.strip("/") else ""
        self._token = token
        self._auto = token is None  # the token is looked up (again after a 401)
        self.timeout = timeout

    @property
    def token(self) -> Optional[str]:
        """The token sent (looked up while unknown, so a client made before the manager is up works)."""
        if self._token is None and _is_local(self.host):
            from .access import find_token

            found = find_token(self.port)
            if found:
                self._token = found
            return found
        return self._token or None

    @token.setter
    def token(self, value: Union[str, bool, None]) -> None:
        self._token = value
        self._auto = value is None

    def _found_token(self, sent: Optional[str]) -> bool:
        """After a 401: whether a looked-up token differs from ``sent`` (then it is used)."""
        if not self._auto or not _is_local(self.host):
            return False
        from .access import find_token

        found = find_token(self.port)
        if found and found != sent:
            self._token = found
            return True
        return False

    def url(self, route_: Route, path_params: Optional[dict] = None, query: Optional[dict] = None) -> str:
        path = route_.path
        for name in route_.path_params:
            if not path_params or name not in path_params:
                raise ValueError(f"route {route_.name} needs path parameter {name!r}")
            path = path.replace("{" + name + "}", urllib.parse.quote(str(path_params[name]), safe=""))
        url = f"http://{self.host}:{self.port}{self.prefix}{API_ROOT}{path}"
        q = {k: v for k, v in (query or {}).items() if v is not None}
        if q:
            url += "?" + urllib.parse.urlencode(q)
        return url

    def call(self, name: str, body: Any = None, query: Optional[dict] = None, **path_params: Any) -> Any:
        """Call route ``name``; returns the decoded JSON answer (``None`` for an empty one).

        Raises:
            RestError: the manager answered 4xx / 5xx.
            ConnectionError: nothing answers on the port.
        """
        r = route(name)
        raw = self.call_raw(name, body, query, **path_params)
        if r.content != "application/json":
            return raw.decode("utf-8", "replace") if r.content.startswith("text/") else raw
        text = raw.decode("utf-8")
        return json.loads(text) if text else None

    def call_raw(self, name: str, body: Any = None, query: Optional[dict] = None, **path_params: Any) -> bytes:
        """Call route ``name``; returns the answer's bytes (for file routes such as ``get_trial_file``)."""
        r = route(name)
        data = None
        headers = {"Accept": "application/json"}
        if r.request is not None or body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        token = self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url(r, path_params, query), data=data, method=r.method, headers=headers)
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as err:
            if err.code == 401 and self._found_token(token):
                # A manager that was still starting (token file not yet written) or was restarted
                # with a new token on the same port: look it up again, once.
                return self.call_raw(name, body, query, **path_params)
            text = err.read().decode("utf-8", "replace")
            try:
                message = json.loads(text).get("error", text)
            except (ValueError, AttributeError):
                message = text or err.reason
            raise RestError(err.code, str(message)) from None
        except (urllib.error.URLError, OSError) as err:
            raise ConnectionError(f"cannot reach the NNI manager at {self.host}:{self.port}: {getattr(err, 'reason', err)}") from None
