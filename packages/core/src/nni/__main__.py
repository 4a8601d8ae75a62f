"""The dispatcher process: ``python -m nni --exp_params_file <JSON file>`` (or ``--exp_params``).

The manager starts this process to host the experiment's tuner and assessor (or advisor) and
speaks :mod:`nni.runtime.protocol` with it.

Arguments:

* ``--exp_params_file``: a file holding the experiment config as a JSON object (what the
  manager passes: a command-line argument is capped at 128 KB on Linux and readable by other
  users). ``--exp_params``: the same object on the command line, base64-encoded (plain JSON is
  accepted too); give one of the two. Used keys: ``tuner`` / ``assessor`` / ``advisor``, each
  ``{"name": <registered name>, "classArgs": {...}}`` or
  ``{"className": "module.Class", "codeDirectory": "/dir", "classArgs": {...}}`` (v1 spellings
  ``builtinTunerName`` / ``builtinAssessorName`` / ``builtinAdvisorName``, ``codeDir`` and
  ``classFileName`` are understood too); ``includeIntermediateResults`` (top level or in
  ``tuner``); ``tunerGpuIndices`` (becomes ``CUDA_VISIBLE_DEVICES``); ``logLevel``.
* ``--command_fds IN,OUT``: file descriptors of the command streams (also env
  ``NNI_COMMAND_FDS``). Default: stdin / stdout. In that case the process first moves the real
  stdout to a private descriptor and points fd 1 at stderr, so anything the algorithm prints
  (Python or native code) goes to stderr and cannot corrupt the command stream.
* ``--log_level``: ``trace``/``debug``/``info``/``warning``/``error``/``fatal``.

Logs go to ``$NNI_LOG_DIRECTORY/dispatcher.log`` when that variable is set, else to stderr,
as ``[2021-10-12 10:00:00] INFO (nni.dispatcher/MainThread) message``.

classArgs are checked with the class's validator before the class is built. Any failure while
building the algorithms or handling a command is reported with an ``ER`` command and the
process exits with status 1; ``TE`` or the end of the input stream exits with 0. The ``ER`` text
is one line for a config mistake (unknown name, bad classArgs), else one line, a blank line and
the traceback (it is also in ``dispatcher.log``).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import sys
from typing import Any

_logger = logging.getLogger("nni.dispatcher")

_KIND_KEYS = {
    "tuner": "builtinTunerName",
    "assessor": "builtinAssessorName",
    "advisor": "builtinAdvisorName",
}
_LEVELS = {"trace": 5, "debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "fatal": logging.CRITICAL, "critical": logging.CRITICAL}


class DispatcherConfigError(ValueError):
    """The exp_params are wrong (one-line message)."""


def parse_exp_params(text: str) -> dict:
    """Decode ``--exp_params``: base64 of a JSON object, or the JSON itself."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        try:
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as err:
            raise DispatcherConfigError(f"--exp_params is neither base64 nor JSON: {err}") from None
    try:
        params = json.loads(stripped)
    except json.JSONDecodeError as err:
        raise DispatcherConfigError(f"--exp_params is not valid JSON: {err}") from None
    if not isinstance(params, dict):
        raise DispatcherConfigError("--exp_params must be a JSON object")
    return params


def read_exp_params_file(path: str) -> dict:
    """Read ``--exp_params_file``: a JSON object."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise DispatcherConfigError(f"--exp_params_file: cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise DispatcherConfigError(f"--exp_params_file: {path} is not UTF-8 text ({err.reason})") from None
    if not text.lstrip().startswith("{"):
        raise DispatcherConfigError(f"--exp_params_file: {path} must hold a JSON object")
    try:
        return parse_exp_params(text)
    except DispatcherConfigError as err:
        raise DispatcherConfigError(f"--exp_params_file: {str(err).removeprefix('--exp_params ')}") from None


def encode_exp_params(params: dict) -> str:
    """The ``--exp_params`` value for ``params`` (for managers and tests)."""
    return base64.b64encode(json.dumps(params).encode("utf-8")).decode("ascii")


def load_algorithm_class(kind: str, spec: dict) -> tuple[type, Any]:
    """(class, validator or None) for one ``tuner`` / ``assessor`` / ``advisor`` section."""
    from .runtime import registry

    if not isinstance(spec, dict):
        raise DispatcherConfigError(f"{kind} must be a mapping, got {type(spec).__name__}")
    name = spec.get("name") or spec.get(_KIND_KEYS[kind])
    class_name = spec.get("className")
    if name and class_name:
        raise DispatcherConfigError(f"{kind}: give either name or className, not both")
    if name:
        cls = registry.load_class(kind, name)
        validator = registry.load_validator(kind, name)
        return cls, validator
    if class_name:
        code_dir = spec.get("codeDirectory") or spec.get("codeDir")
        if code_dir:
            code_dir = os.path.abspath(os.path.expanduser(code_dir))
        file_name = spec.get("classFileName")
        if file_name and "." not in class_name.replace(".py", ""):
            class_name = f"{os.path.splitext(file_name)[0]}.{class_name}"
        if "." not in class_name and ":" not in class_name:
            raise DispatcherConfigError(f"{kind}.className must be qualified like 'my_module.MyClass', got {class_name!r}")
        cls = registry.import_object(class_name, code_dir)
        return cls, getattr(cls, "class_args_validator", None)
    raise DispatcherConfigError(f"{kind}: one of name or className is required")


def build_algorithm(kind: str, spec: dict) -> Any:
    """Load, validate the classArgs of, and instantiate one algorithm section."""
    from .utils import check_class_args

    cls, validator = load_algorithm_class(kind, spec)
    class_args = spec.get("classArgs") or {}
    if not isinstance(class_args, dict):
        raise DispatcherConfigError(f"{kind}.classArgs must be a mapping, got {type(class_args).__name__}")
    check_class_args(validator, class_args, field=f"{kind}.classArgs")
    return cls(**class_args)


def build_dispatcher(params: dict) -> Any:
    """The dispatcher for an experiment config: an advisor, or a MsgDispatcher(tuner, assessor)."""
    from .runtime.env_vars import flag
    from .runtime.msg_dispatcher import MsgDispatcher
    from .runtime.msg_dispatcher_base import MsgDispatcherBase

    gpus = params.get("tunerGpuIndices")
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus)) if isinstance(gpus, list) else str(gpus)
    advisor_spec = params.get("advisor")
    tuner_spec = params.get("tuner")
    assessor_spec = params.get("assessor")
    if advisor_spec:
        if tuner_spec or assessor_spec:
            raise DispatcherConfigError("advisor cannot be used together with tuner or assessor")
        advisor = build_algorithm("advisor", advisor_spec)
        if not isinstance(advisor, MsgDispatcherBase):
            raise DispatcherConfigError(f"advisor {type(advisor).__name__} must subclass nni.runtime.msg_dispatcher_base.MsgDispatcherBase")
        return advisor
    if not tuner_spec:
        raise DispatcherConfigError("exp_params has neither tuner nor advisor")
    tuner = build_algorithm("tuner", tuner_spec)
    assessor = build_algorithm("assessor", assessor_spec) if assessor_spec else None
    include = bool(
        params.get("includeIntermediateResults")
        or (isinstance(tuner_spec, dict) and tuner_spec.get("includeIntermediateResults"))
        or flag("NNI_INCLUDE_INTERMEDIATE_RESULTS")
    )
    return MsgDispatcher(tuner, assessor, include_intermediate_results=include)


def setup_logging(level_name: str | None) -> None:
    level = _LEVELS.get((level_name or "info").lower(), logging.INFO)
    log_dir = os.environ.get("NNI_LOG_DIRECTORY")
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(os.path.join(log_dir, "dispatcher.log"), encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s/%(threadName)s) %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def open_command_streams(command_fds: str | None) -> None:
    """Point :mod:`nni.runtime.protocol` at the command streams (see the module docstring)."""
    from .runtime import protocol

    if command_fds:
        try:
            fd_in, fd_out = (int(x) for x in command_fds.split(","))
        except ValueError:
            raise DispatcherConfigError(f"--command_fds must be 'IN,OUT' file descriptor numbers, got {command_fds!r}") from None
        protocol.set_streams(os.fdopen(fd_in, "rb", buffering=0), os.fdopen(fd_out, "wb"))
        return
    sys.stdout.flush()
    out_fd = os.dup(1)
    os.dup2(2, 1)  # prints of the algorithm (even from C) now land on stderr
    sys.stdout = open(1, "w", encoding=sys.stdout.encoding or "utf-8", errors="replace", closefd=False, buffering=1)
    protocol.set_streams(sys.stdin.buffer, os.fdopen(out_fd, "wb"))


def _is_user_error(err: BaseException) -> bool:
    from .runtime.registry import UnknownNameError
    from .utils import ClassArgsError

    return isinstance(err, (DispatcherConfigError, ClassArgsError, UnknownNameError))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nni", description="NNI dispatcher (tuner / assessor / advisor host)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--exp_params", help="experiment config JSON, base64-encoded")
    source.add_argument("--exp_params_file", help="file holding the experiment config as JSON")
    parser.add_argument("--command_fds", default=os.environ.get("NNI_COMMAND_FDS"), help="IN,OUT fds of the command streams")
    parser.add_argument("--log_level", default=None)
    args = parser.parse_args(argv)

    from .runtime import protocol
    from .runtime.msg_dispatcher_base import error_report

    try:
        open_command_streams(args.command_fds)
    except (DispatcherConfigError, OSError) as err:
        print(f"nni dispatcher: {err}", file=sys.stderr)
        return 2
    try:
        params = read_exp_params_file(args.exp_params_file) if args.exp_params_file else parse_exp_params(args.exp_params)
        setup_logging(args.log_level or params.get("logLevel"))
        _logger.info("START")
        dispatcher = build_dispatcher(params)
    except Exception as err:  # noqa: BLE001 - reported to the manager, then exit
        if not logging.getLogger().handlers:
            setup_logging(args.log_level)
        if _is_user_error(err):  # one line, no traceback
            message = str(err)
            _logger.error("%s", message)
        else:
            _logger.exception("failed to create the algorithms")
            message = error_report(err)
        protocol.send(protocol.CommandType.Error, message)
        return 1
    try:
        dispatcher.run()
    except Exception:  # noqa: BLE001 - ER was already sent by process_command
        _logger.error("dispatcher exits after an error")
        return 1
    _logger.info("EXIT")
    return 0


if __name__ == "__main__":
    from nni.runtime.process_exit import exit_now

    exit_now(main())  # no module teardown (numpy's): the manager waits for this exit
