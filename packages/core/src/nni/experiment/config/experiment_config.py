"""``ExperimentConfig``: the whole experiment config (v2), loaded from YAML or built in Python.

Example::

    config = ExperimentConfig('local')
    config.trial_command = 'python3 mnist.py'
    config.trial_concurrency = 2
    config.search_space = {'lr': {'_type': 'loguniform', '_value': [1e-4, 0.1]}}
    config.tuner.name = 'TPE'
    config.tuner.class_args = {'optimize_mode': 'maximize'}
    config.training_service.use_active_gpu = True
    canonical = config.json()   # camelCase dict, defaults filled, paths absolute

    config = ExperimentConfig.load('config.yml')   # v2, or v1 converted with a notice

Canonical form (:meth:`ExperimentConfig.to_canonical_dict`, what the manager reads): every
field of the class, camelCase, ``None`` for unset; ``trainingService`` is always a list (one
entry unless hybrid; :meth:`from_dict` turns a one-entry list back into a single object);
``searchSpaceFile`` is read into ``searchSpace`` and set to ``None``; with ``useAnnotation`` the
search space stays ``None`` (whoever expands the annotated code generates it); durations are
seconds, memory sizes MB, GPU indices lists; ``logLevel`` and ``experimentWorkingDirectory``
(``$NNI_EXPERIMENTS_DIR`` or ``~/nni-experiments``) are filled; registered algorithm names take
the registry's spelling.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .algorithm import AlgorithmConfig, _AlgorithmConfig, check_algorithm
from .base import MAX_TRIAL_CONCURRENCY, MAX_TRIAL_NUMBER, ConfigBase, ConfigError, Context, Field, join, type_name
from .search_space import check_search_space, read_search_space_file
from .shared_storage import SharedStorageConfig
from .training_service import TrainingServiceConfig, training_service_config_class

__all__ = ["ExperimentConfig", "LOG_LEVELS", "HYBRID_PLATFORMS"]

_logger = logging.getLogger("nni.experiment.config")

LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "fatal")
HYBRID_PLATFORMS = ("local", "remote", "openpai", "aml", "slurm", "ray", "kubeflow", "frameworkcontroller", "adl")
DEFAULT_WORKING_DIRECTORY = "~/nni-experiments"


def default_working_directory() -> str:
    """``$NNI_EXPERIMENTS_DIR`` if set, else ``~/nni-experiments``."""
    return os.environ.get("NNI_EXPERIMENTS_DIR") or DEFAULT_WORKING_DIRECTORY


class ExperimentConfig(ConfigBase):
    """The experiment config. Fields are the docs' v2 fields in snake_case.

    Args:
        training_service_platform: ``'local'``, ``'remote'``, ... or a list of them (hybrid):
            creates the training-service config(s) and empty ``tuner`` / ``assessor`` /
            ``advisor`` configs to fill in (``config.tuner.name = 'TPE'``).
        **kwargs: field values, snake_case or camelCase.
    """

    _fields = {
        "experiment_name": Field("str"),
        "search_space_file": Field("path"),
        "search_space": Field("json"),
        "trial_command": Field("str", required=True),
        "trial_code_directory": Field("path", default="."),
        "trial_concurrency": Field("int", required=True, min=1, max=MAX_TRIAL_CONCURRENCY),
        "trial_gpu_number": Field("int", min=0),
        "max_experiment_duration": Field("duration"),
        "max_trial_number": Field("int", min=1, max=MAX_TRIAL_NUMBER),
        "max_trial_duration": Field("duration"),
        "nni_manager_ip": Field("str"),
        "use_annotation": Field("bool", default=False),
        "debug": Field("bool", default=False),
        # v1 ``multiPhase`` (not in the v2 reference): nni.get_next_parameter() returns a new set
        # of parameters on every call instead of None after the first.
        "multi_phase": Field("bool", default=False),
        "log_level": Field("enum", choices=LOG_LEVELS),
        "experiment_working_directory": Field("path"),
        "tuner_gpu_indices": Field("gpus"),
        "tuner": Field("custom"),
        "assessor": Field("custom"),
        "advisor": Field("custom"),
        "training_service": Field("custom", required=True),
        "shared_storage": Field("config", cls=SharedStorageConfig),
    }

    def __init__(self, training_service_platform: str | list[str] | None = None, **kwargs: Any):
        if training_service_platform is not None:
            if any(k.replace("_", "").lower() == "trainingservice" for k in kwargs):
                raise ConfigError("trainingService", "given twice (as the platform argument and as a keyword)")
            kwargs["training_service"] = _platform_configs(training_service_platform)
        super().__init__(**kwargs)
        if training_service_platform is not None:
            for name in ("tuner", "assessor", "advisor"):
                if getattr(self, name) is None:
                    object.__setattr__(self, name, AlgorithmConfig())

    # -- building ----------------------------------------------------------------------------

    def _build_custom(self, name: str, value: Any, path: str, base: Path | None) -> Any:
        if name == "training_service":
            if isinstance(value, (list, tuple)):
                return [TrainingServiceConfig._from_dict(v, join(path, i), base) for i, v in enumerate(value)]
            if isinstance(value, str):
                return _platform_configs(value)
            return TrainingServiceConfig._from_dict(value, path, base)
        if isinstance(value, dict):
            return _AlgorithmConfig._from_dict(value, path, base)
        return value

    @classmethod
    def load(cls, path: str | os.PathLike, *, validate: bool = True, check_algorithms: bool = True) -> "ExperimentConfig":
        """Read a YAML config file (v2, or v1 converted with a logged notice).

        Relative paths are resolved against the file's folder. With ``validate`` the config is
        checked (no file is read; see :meth:`validate`). Raises :class:`ConfigError`.
        """
        import yaml

        file = Path(path).expanduser()
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("", f"config file not found: {os.path.abspath(file)}") from None
        except UnicodeDecodeError as err:
            raise ConfigError("", f"{os.path.abspath(file)}: not UTF-8 text ({err.reason} at byte {err.start}); save the config as UTF-8") from None
        except OSError as err:
            raise ConfigError("", f"cannot read config file {os.path.abspath(file)}: {err.strerror or err}") from None
        try:
            data = yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err)
            raise ConfigError("", f"{file.name}: invalid YAML{where}: {problem}") from None
        if data is None:
            raise ConfigError("", f"{file.name}: the config file is empty")
        return cls.from_dict(data, base_path=file.resolve().parent, validate=validate, check_algorithms=check_algorithms)

    @classmethod
    def from_dict(cls, data: Any, base_path: str | os.PathLike | None = None, *, validate: bool = False,
                  check_algorithms: bool = True) -> "ExperimentConfig":
        """Build a config from a YAML-like mapping (camelCase or snake_case keys; v1 converted)
        or from :meth:`to_canonical_dict` output (round trip is exact).

        Relative paths are resolved against ``base_path`` now, or against the working folder
        when the canonical form is made.
        """
        if not isinstance(data, dict):
            raise ConfigError("", f"expected a mapping of config fields at the top level, got {type_name(data)}")
        from .convert import is_v1, convert_v1

        if is_v1(data):
            data = convert_v1(data)
            _logger.warning("This is a v1 (legacy) experiment config; converted to v2. Please consider the v2 format.")
        base = Path(base_path) if base_path is not None else None
        obj = cls.__new__(cls)
        ConfigBase.__init__(obj)
        object.__setattr__(obj, "_base_path", base)
        obj._assign(data, "", base)
        ts = obj.training_service
        if isinstance(ts, list) and len(ts) == 1:
            object.__setattr__(obj, "training_service", ts[0])
        if validate:
            obj.validate(check_algorithms=check_algorithms)
        return obj

    # -- checking ----------------------------------------------------------------------------

    def validate(self, check_algorithms: bool = True) -> None:
        """Check every field and rule without reading files (search space file, code folder).

        Args:
            check_algorithms: also look the tuner / assessor / advisor names up in
                :mod:`nni.runtime.registry` and run their classArgs validators.
        Raises:
            ConfigError: one line naming the field.
        """
        self._make_canonical(check_algorithms=check_algorithms, check_files=False)

    def to_canonical_dict(self, check_algorithms: bool = True, check_files: bool = True) -> dict:
        """The canonical JSON form: camelCase keys, every field present (``None`` for unset),
        defaults filled, paths absolute, durations in seconds, sizes in MB, GPU indices as lists,
        ``trainingService`` always a list, the search space inlined (``searchSpaceFile`` is
        read and set to ``None``). Checks everything; raises :class:`ConfigError`."""
        return self._make_canonical(check_algorithms=check_algorithms, check_files=check_files)

    def json(self) -> dict:
        """Same as :meth:`to_canonical_dict` with every check."""
        return self.to_canonical_dict()

    def to_yaml(self) -> str:
        """The canonical form as YAML text (loadable by :meth:`load`)."""
        import yaml

        return yaml.safe_dump(self.json(), sort_keys=False)

    @property
    def training_services(self) -> list[TrainingServiceConfig]:
        """The training service config(s) as a list (one entry unless hybrid)."""
        ts = self.training_service
        return list(ts) if isinstance(ts, (list, tuple)) else [ts]

    def _make_canonical(self, check_algorithms: bool, check_files: bool) -> dict:
        base = self._base_path if self._base_path is not None else Path.cwd()
        out: dict[str, Any] = {}
        ctx = Context(base=Path(base), check_algorithms=check_algorithms, check_files=check_files, experiment=out)
        for name, spec in self._fields.items():
            key = self._yaml_name(name)
            value = getattr(self, name)
            if spec.kind == "custom":
                out[key] = self._canonical_custom(name, value, key, ctx)
            else:
                from .base import canonical_value

                out[key] = canonical_value(spec, value, key, ctx)
        self._check(out, "", ctx)
        return out

    def _canonical_custom(self, name: str, value: Any, path: str, ctx: Context) -> Any:
        if name == "training_service":
            if value is None:
                raise ConfigError(path, f"required field is missing; give a mapping with platform (e.g. local) or a list of them; platforms: {', '.join(_known_platforms())}")
            if isinstance(value, str):
                value = _platform_configs(value)
            if isinstance(value, (list, tuple)):
                if not value:
                    raise ConfigError(path, "must not be an empty list")
                items = [(TrainingServiceConfig._from_dict(v, join(path, i), None), join(path, i)) for i, v in enumerate(value)]
            else:
                items = [(TrainingServiceConfig._from_dict(value, path, None), path)]
            result = []
            for ts, ts_path in items:
                if not isinstance(ts, TrainingServiceConfig):
                    raise ConfigError(ts_path, f"expected a training service config, got {type(ts).__name__}")
                result.append(ts._canonical(ts_path, ctx))
            if len(result) > 1:
                for (ts, ts_path), canon in zip(items, result):
                    if canon["platform"] not in HYBRID_PLATFORMS:
                        raise ConfigError(join(ts_path, "platform"), f"{canon['platform']!r} cannot be part of a hybrid training service; allowed: {', '.join(HYBRID_PLATFORMS)}")
            return result
        # tuner / assessor / advisor
        if value is None:
            return None
        algo = _AlgorithmConfig._from_dict(value, path, None)
        if not isinstance(algo, _AlgorithmConfig):
            raise ConfigError(path, f"expected an AlgorithmConfig or a mapping, got {type(value).__name__}")
        if algo.is_empty() and not isinstance(value, dict):
            return None  # an unfilled placeholder from ExperimentConfig('local')
        canon = algo._canonical(path, ctx)
        if ctx.check_algorithms:
            check_algorithm(name, canon, path)
        return canon

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        # Algorithms
        if canon["advisor"] is not None:
            for other in ("tuner", "assessor"):
                if canon[other] is not None:
                    raise ConfigError(other, "not allowed together with advisor (an advisor is tuner and assessor in one); remove one of them")
        elif canon["tuner"] is None:
            raise ConfigError("tuner", "required field is missing; give a tuner (e.g. {name: TPE}) or an advisor")

        # Logging
        if canon["logLevel"] is None:
            canon["logLevel"] = "debug" if canon["debug"] else "info"
        if canon["experimentWorkingDirectory"] is None:
            canon["experimentWorkingDirectory"] = os.path.abspath(os.path.expanduser(default_working_directory()))
        if ctx.check_files:
            _check_working_directory(canon["experimentWorkingDirectory"])

        # Code folder
        code_dir = canon["trialCodeDirectory"]
        if ctx.check_files and not os.path.isdir(code_dir):
            raise ConfigError("trialCodeDirectory", f"directory not found: {code_dir}")

        # Search space
        file, space = canon["searchSpaceFile"], canon["searchSpace"]
        if canon["useAnnotation"]:
            for key in ("searchSpaceFile", "searchSpace"):
                if canon[key] is not None:
                    raise ConfigError(key, "must not be given when useAnnotation is true (the search space comes from the annotations in trialCodeDirectory)")
            if ctx.check_files:
                _check_annotations(code_dir)
        else:
            if file is not None and space is not None:
                raise ConfigError("searchSpaceFile", "not allowed together with searchSpace; give one of them")
            if file is None and space is None:
                raise ConfigError("searchSpace", "required field is missing; give searchSpaceFile or searchSpace ({} for an empty space), or set useAnnotation: true")
            # The format is determined by the tuner: see search_space.check_search_space.
            load = ctx.check_algorithms and ctx.check_files
            if file is not None and ctx.check_files:
                space = read_search_space_file(file)
                canon["searchSpace"] = space
                canon["searchSpaceFile"] = None
                check_search_space(canon, space, "searchSpaceFile", load_classes=load)
            elif space is not None:
                check_search_space(canon, space, "searchSpace", load_classes=load)

        # Shared storage needs reuse mode
        if canon["sharedStorage"] is not None:
            for i, ts in enumerate(canon["trainingService"]):
                if ts.get("reuseMode") is False:
                    at = "trainingService" + (f"[{i}]" if len(canon["trainingService"]) > 1 else "") + ".reuseMode"
                    raise ConfigError(at, "must be true when sharedStorage is used (shared storage works only in reuse mode)")


def _check_working_directory(path: str) -> None:
    """The folder (created when missing) must not be, or lie below, something other than a folder."""
    folder = Path(os.path.expanduser(path))
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is" if candidate == folder else f"lies below {candidate}, which is"
                raise ConfigError("experimentWorkingDirectory", f"{folder} {what} a file, expected a directory (created when missing)")
            return


def _yaml_loader() -> type:
    # YAML 1.1 reads ``1e-5`` as a string; hpo_utils' loader reads it as a float, like JSON.
    try:
        from nni.common.hpo_utils.loading import YamlLoader

        return YamlLoader
    except ImportError:  # pragma: no cover
        import yaml

        return yaml.SafeLoader


def _known_platforms() -> list[str]:
    from .training_service import _PLATFORMS

    return sorted(_PLATFORMS)


def _platform_configs(platform: Any) -> Any:
    if isinstance(platform, (list, tuple)):
        return [_platform_configs(p) for p in platform]
    cls = training_service_config_class(platform, "trainingService.platform")
    if cls.platform_name:
        return cls()
    return cls(platform=platform)


def _check_annotations(code_dir: str) -> None:
    try:
        from nni.tools.annotation import generate_search_space
    except ImportError:
        return
    try:
        space = generate_search_space(code_dir)
    except (ValueError, SyntaxError) as err:
        raise ConfigError("trialCodeDirectory", f"cannot read the annotations: {err}") from None
    if not space:
        # as in v2.5 the folder is then used as it is, with an empty search space
        _logger.warning("useAnnotation: no search space annotation in the Python files of %s; "
                        "the trials run the code as it is with an empty search space", code_dir)
