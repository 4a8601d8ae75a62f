"""``AutoCompressionExperiment``: an NNI experiment whose trials compress the user's model."""
from __future__ import annotations

import inspect
import logging
import os
import shlex
from pathlib import Path
from typing import Any, Optional, Union

from nni.experiment import Experiment

from .interface import AbstractAutoCompressionModule

__all__ = ["AutoCompressionExperiment", "SUPPORTED_TUNERS"]

_logger = logging.getLogger("nni.algorithms.compression.pytorch.auto_compress")

#: tuners that handle the nested ``algorithm_name`` choice (NNI v2.5's list)
SUPPORTED_TUNERS = ("TPE", "Random", "Anneal", "Evolution")
TRIAL_ENTRY = "nni.algorithms.compression.pytorch.auto_compress.trial_entry"


def _module_file(module: type) -> Path:
    py_module = inspect.getmodule(module)
    if py_module is None or py_module.__name__ == "__main__":
        raise ValueError(f"auto_compress_module: {module.__name__} is defined in the launching script; define it in "
                         f"its own file and import it there (each trial imports that file)")
    if "." in module.__qualname__:
        raise ValueError(f"auto_compress_module: {module.__qualname__} must be defined at the top level of its file")
    try:
        return Path(inspect.getfile(module)).resolve()
    except TypeError:
        raise ValueError(f"auto_compress_module: {module.__name__} has no source file; define it in a .py file") from None


class AutoCompressionExperiment(Experiment):
    """An experiment that tries compression algorithms and their settings on a pre-trained model.

    Configure it like :class:`nni.experiment.Experiment`, without ``trial_command``; the search
    space comes from :class:`AutoCompressionSearchSpaceGenerator`. Each trial compresses
    ``auto_compress_module.model()`` with the sampled algorithm and config_list, fine-tunes it when
    the module says so, and reports ``auto_compress_module.evaluator()``'s score on it; the trial's
    output folder gets ``compression.json`` and the compressor's ``export_model`` files (``model.pth``
    and ``mask.pth`` or ``calibration.pth``); :meth:`export_top_models` collects the best ones.

    Example:
        >>> experiment = AutoCompressionExperiment(AutoCompressionModule, 'local')   # doctest: +SKIP
        >>> experiment.config.search_space = generator.dumps()
        >>> experiment.config.trial_concurrency = 1
        >>> experiment.config.max_trial_number = 10
        >>> experiment.config.trial_code_directory = Path(__file__).parent
        >>> experiment.config.tuner.name = 'TPE'
        >>> experiment.config.tuner.class_args['optimize_mode'] = 'maximize'
        >>> experiment.run(8088)

    Args:
        auto_compress_module: a subclass of :class:`AbstractAutoCompressionModule`, defined at the
            top level of its own file (best inside ``trial_code_directory``).
        config_or_platform: as for :class:`~nni.experiment.Experiment` (``'local'`` ...).
    """

    def __init__(self, auto_compress_module: Optional[type], config_or_platform: Union[Any, str, list, None] = None,
                 **kwargs: Any):
        if auto_compress_module is None:
            # Experiment.connect / resume / view build ``cls(None)``: nothing to launch trials with
            self.module_file: Optional[Path] = None
            self.module_name: Optional[str] = None
            super().__init__(config_or_platform, **kwargs)
            return
        if not (isinstance(auto_compress_module, type) and issubclass(auto_compress_module, AbstractAutoCompressionModule)):
            raise ValueError(f"auto_compress_module must be a subclass of AbstractAutoCompressionModule, "
                             f"got {auto_compress_module!r}")
        if inspect.isabstract(auto_compress_module):
            missing = sorted(getattr(auto_compress_module, "__abstractmethods__", ()))
            raise ValueError(f"auto_compress_module: {auto_compress_module.__name__} must implement {missing}")
        self.module_file = _module_file(auto_compress_module)
        self.module_name = auto_compress_module.__name__
        super().__init__(config_or_platform, **kwargs)

    def _trial_command(self) -> str:
        code_dir = Path(os.path.expanduser(str(self.config.trial_code_directory or "."))).resolve()
        try:
            file = self.module_file.relative_to(code_dir).as_posix()
        except ValueError:
            # outside the code folder: only a trial on this machine can read it
            platforms = [ts.platform for ts in self.config.training_services]
            if any(p != "local" for p in platforms):
                raise ValueError(f"trial_code_directory: {self.module_file} (the auto_compress_module's file) must be inside "
                                 f"{code_dir} for platform {platforms}") from None
            file = str(self.module_file)
        return (f"python3 -m {TRIAL_ENTRY} --module_file_name {shlex.quote(file)} "
                f"--module_class_name {shlex.quote(self.module_name)}")

    def _check_tuner(self) -> None:
        tuner = self.config.tuner
        name = getattr(tuner, "name", None) if tuner is not None else None
        if self.config.advisor is not None and getattr(self.config.advisor, "name", None):
            raise ValueError(f"advisor: auto compression runs with a tuner ({', '.join(SUPPORTED_TUNERS)}), not an advisor")
        if name and name.lower() not in {t.lower() for t in SUPPORTED_TUNERS}:
            raise ValueError(f"tuner.name: auto compression supports {', '.join(SUPPORTED_TUNERS)} "
                             f"(they handle its nested search space), got {name!r}")

    def start(self, port: int = 8080, debug: bool = False, **kwargs: Any) -> None:
        """Set the trial command and start the experiment (see :meth:`Experiment.start`)."""
        if self.config is None:
            raise ValueError("no config: create the experiment with AutoCompressionExperiment(module, 'local')")
        if self.module_file is None:
            raise ValueError("auto_compress_module: none given; create AutoCompressionExperiment(AutoCompressionModule, 'local')")
        self._check_tuner()
        if self.config.search_space is not None:
            from .search_space import AutoCompressionSearchSpaceGenerator

            try:  # the trials can only decode a space in the generator's format
                AutoCompressionSearchSpaceGenerator.loads(self.config.search_space)
            except ValueError as err:
                raise ValueError(f"search_space: {err} (build it with AutoCompressionSearchSpaceGenerator)") from None
        command = self._trial_command()
        if self.config.trial_command and self.config.trial_command != command:
            _logger.warning("trial_command is set by AutoCompressionExperiment; %r is replaced", self.config.trial_command)
        self.config.trial_command = command
        super().start(port, debug, **kwargs)

    def export_top_models(self, top_k: int = 1, export_dir: Union[str, os.PathLike, None] = None,
                          optimize_mode: Optional[str] = None) -> list[dict]:
        """The ``top_k`` best succeeded trials, best first, as ``{'trial_id', 'score', 'algorithm_name',
        'config_list', 'parameters'}`` (during the run or after it).

        Args:
            top_k: how many.
            export_dir: also copy each one's saved files (``compression.json``, ``model.pth``, and
                ``mask.pth`` for pruners or ``calibration.pth`` for quantizers) from its trial folder
                to ``export_dir/<rank>_<trial id>/`` (local platform: the trial folders are on this machine).
            optimize_mode: ``'maximize'`` / ``'minimize'``; default: the tuner's ``optimize_mode``,
                else ``'maximize'``.
        """
        from .search_space import decode_parameters

        if optimize_mode is None:
            class_args = getattr(self.config.tuner, "class_args", None) if self.config is not None else None
            optimize_mode = (class_args or {}).get("optimize_mode", "maximize")
        if optimize_mode not in ("maximize", "minimize"):
            raise ValueError(f"optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
        rows = []
        for result in self.export_data():
            value = result.value.get("default") if isinstance(result.value, dict) else result.value
            if not isinstance(value, (int, float)):
                continue
            name, config_list, kwargs = decode_parameters(result.parameter)
            rows.append({"trial_id": result.trialJobId, "score": value, "algorithm_name": name,
                         "config_list": config_list, "parameters": kwargs})
        rows.sort(key=lambda r: r["score"], reverse=optimize_mode == "maximize")
        rows = rows[:top_k]
        if export_dir is not None:
            self._copy_trial_files(rows, Path(export_dir))
        return rows

    def _copy_trial_files(self, rows: list[dict], export_dir: Path) -> None:
        import shutil

        from nni.experiment.config.experiment_config import default_working_directory

        exp_dir = self._exp_dir
        if exp_dir is None:
            root = (self.config.experiment_working_directory if self.config is not None else None) or default_working_directory()
            exp_dir = Path(os.path.expanduser(str(root))) / str(self.id)
        for rank, row in enumerate(rows, 1):
            source = exp_dir / "trials" / row["trial_id"]
            if not (source / "compression.json").is_file():
                raise ValueError(f"export_dir: trial {row['trial_id']} has no saved files in {source} "
                                 f"(only trials of the local platform can be exported)")
            target = export_dir / f"{rank}_{row['trial_id']}"
            target.mkdir(parents=True, exist_ok=True)
            for name in ("compression.json", "model.pth", "mask.pth", "calibration.pth"):
                if (source / name).is_file():
                    shutil.copy2(source / name, target / name)
