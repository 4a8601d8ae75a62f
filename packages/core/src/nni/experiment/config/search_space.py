"""Who checks a search space: "the format is determined by the tuner".

The search space belongs to the algorithm that receives it: the advisor when there is one,
else the tuner (assessors never see it). One rule, used by the config loader, ``nnictl update
searchspace`` and the manager's REST update:

* a **built-in** algorithm (``name`` registered by an installed distribution's ``nni.tuners`` /
  ``nni.advisors`` entry points) gets the standard check of
  :func:`nni.common.hpo_utils.validate_search_space` (a mapping of ``{"_type", "_value"}``),
  a space that fails it goes to the class's hook below when the class defines one (PPOTuner:
  the annotation's ``mutable_layer`` type);
* a **custom** algorithm (``className`` + ``codeDirectory``, or a name registered with
  ``nnictl algo register``) receives the space exactly as written: any JSON value, custom
  ``_type`` names, list-valued parameters. It is checked only by the class's own hook when the
  class defines one::

      class MyTuner(Tuner):
          @staticmethod            # or @classmethod
          def validate_search_space(search_space): ...   # raise ValueError to reject it

  The hook is looked up without instantiating the class; a class that cannot be imported here
  is not checked (the dispatcher reports the import error when the experiment starts).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from .base import ConfigError, short_repr, type_name

__all__ = ["search_space_owner", "is_builtin_algorithm", "check_search_space", "read_search_space_file"]

_logger = logging.getLogger("nni.experiment.config")


def search_space_owner(config: dict) -> tuple[str, Optional[dict]]:
    """``(kind, algorithm section)`` of the algorithm that receives the search space."""
    if config.get("advisor"):
        return "advisor", config["advisor"]
    return "tuner", config.get("tuner") or None


def is_builtin_algorithm(kind: str, spec: Optional[dict]) -> bool:
    """True when ``spec`` names an algorithm of an installed ``nni-*`` distribution.

    ``className`` / ``codeDirectory`` sections and user-registered names are custom. An
    unknown name counts as built-in (the standard check applies; the name itself is reported
    by the algorithm check).
    """
    if not spec:
        return True
    name = spec.get("name") or spec.get("builtinTunerName") or spec.get("builtinAdvisorName")
    if name is None:
        return not (spec.get("className") or spec.get("codeDirectory") or spec.get("codeDir"))
    from nni.runtime import registry

    try:
        return registry.get_entry(kind, name).source == "builtin"
    except registry.UnknownNameError:
        return True


def _custom_hook(kind: str, spec: dict) -> Any:
    from nni.runtime import registry

    try:
        if spec.get("name"):
            cls = registry.load_class(kind, spec["name"])
        else:
            code_dir = spec.get("codeDirectory") or spec.get("codeDir")
            cls = registry.import_object(spec["className"], str(code_dir) if code_dir else None)
    except Exception as err:  # noqa: BLE001 - user code; the dispatcher reports it at start
        _logger.debug("search space hook of %s not loaded: %s", kind, err)
        return None
    hook = getattr(cls, "validate_search_space", None)
    return hook if callable(hook) else None


def check_search_space(config: dict, space: Any, field: str = "searchSpace", *, load_classes: bool = True) -> None:
    """Check ``space`` the way its owner wants (see the module docstring).

    Args:
        config: the canonical config (or a manager profile) with ``tuner`` / ``advisor``.
        field: the field named in errors (``searchSpace``, ``searchSpaceFile``, ``--filename``).
        load_classes: import a custom class to look for its ``validate_search_space`` hook.
    Raises:
        ConfigError: one line naming ``field``.
    """
    kind, spec = search_space_owner(config)
    if is_builtin_algorithm(kind, spec):
        try:
            validate_standard(space, field)
            return
        except ConfigError:
            # a built-in with its own format (its class defines the hook) decides; only then is
            # its class imported
            hook = _custom_hook(kind, spec) if spec and spec.get("name") else None
            if hook is None:
                raise
    else:
        hook = _custom_hook(kind, spec) if load_classes else None
    if hook is None:
        return
    try:
        hook(space)
    except Exception as err:  # noqa: BLE001 - any failure of the hook rejects the space
        msg = " ".join(str(err).split()) or type(err).__name__
        raise ConfigError(field, f"rejected by {kind} {spec.get('name') or spec.get('className')}: {msg}") from None


def validate_standard(space: Any, field: str) -> None:
    """The standard NNI format check; ``searchSpace.lr: loguniform low must be > 0, got 0``."""
    import re

    if not isinstance(space, dict):
        raise ConfigError(field, f"the search space must be a JSON object (mapping of parameter names), got {type_name(space)} {short_repr(space)}")
    try:
        from nni.common.hpo_utils import validate_search_space
    except ImportError:  # pragma: no cover
        return
    try:
        validate_search_space(space, raise_exception=True)
    except ValueError as err:
        msg = " ".join(str(err).split())
        m = re.match(r"^search space '(.+?)': (.*)$", msg)
        if m and field == "searchSpace":
            raise ConfigError(f"searchSpace.{m.group(1)}", m.group(2)) from None
        if m:
            raise ConfigError(field, f"parameter {m.group(1)!r}: {m.group(2)}") from None
        raise ConfigError(field, msg.removeprefix("search space: ")) from None


def read_search_space_file(file: str, field: str = "searchSpaceFile") -> Any:
    """Parse a JSON (or YAML) search space file as written; the top level may be any value."""
    from nni.common.hpo_utils.loading import load_json_or_yaml

    path = Path(file).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(field, f"file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(field, f"{path} is a directory, expected a JSON or YAML file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(field, f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ConfigError(field, f"cannot read {path}: {err.strerror or err}") from None
    try:
        return load_json_or_yaml(text, f"search space file {str(path)!r}", yaml_first=path.suffix.lower() in (".yml", ".yaml"))
    except ValueError as err:
        raise ConfigError(field, str(err)) from None
