"""Base class of training-service configs and the platform-name look-up."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, ClassVar

from .base import ConfigBase, ConfigError, Context, Field, join, short_repr

__all__ = ["TrainingServiceConfig", "CustomTrainingServiceConfig", "training_service_config_class", "PLATFORM_ALIASES"]

_PLATFORMS: dict[str, type] = {}
PLATFORM_ALIASES = {"pai": "openpai"}  # the OpenPAI page writes ``platform: pai``


class TrainingServiceConfig(ConfigBase):
    """Base class of ``trainingService`` entries; subclasses set ``platform_name``."""

    platform_name: ClassVar[str] = ""
    _fields = {"platform": Field("str", required=True)}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.platform_name:
            _PLATFORMS[cls.platform_name] = cls

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.platform_name:
            object.__setattr__(self, "platform", self.platform_name)

    def _canonical(self, path: str, ctx: Context) -> dict:
        platform = PLATFORM_ALIASES.get(self.platform, self.platform) if isinstance(self.platform, str) else self.platform
        if self.platform_name and platform != self.platform_name:
            raise ConfigError(join(path, "platform"), f"must be {self.platform_name!r} for {type(self).__name__}, got {short_repr(self.platform)}")
        object.__setattr__(self, "platform", platform)
        return super()._canonical(path, ctx)

    @classmethod
    def _from_dict(cls, data: Any, path: str, base: Path | None):
        if cls is TrainingServiceConfig:
            if isinstance(data, ConfigBase):
                return data
            if not isinstance(data, dict):
                raise ConfigError(path, f"expected a mapping with a 'platform' key, got {short_repr(data)}")
            platform = None
            for key, value in data.items():
                if str(key).lower() == "platform":
                    platform = value
            target = training_service_config_class(platform, join(path, "platform"))
            return target._from_dict(data, path, base)
        return super()._from_dict(data, path, base)


class CustomTrainingServiceConfig(TrainingServiceConfig):
    """A third-party training service (found in the ``nni.training_services`` registry):
    its fields are kept as written and passed on unchecked."""

    _allow_extra = True


def training_service_config_class(platform: Any, path: str = "trainingService.platform") -> type:
    """The config class for a platform name; third-party platforms need a registry entry."""
    if platform is None:
        raise ConfigError(path, f"required field is missing; allowed: {', '.join(sorted(_PLATFORMS))}")
    if not isinstance(platform, str):
        raise ConfigError(path, f"expected a platform name, got {short_repr(platform)}")
    name = PLATFORM_ALIASES.get(platform, platform)
    if name in _PLATFORMS:
        return _PLATFORMS[name]
    try:
        from nni.runtime.registry import list_names

        installed = list_names("training_service")
    except Exception:  # noqa: BLE001 - a broken registry must not hide the real error
        installed = []
    if name in installed:
        # A platform package may define its config class (``config_class`` on the service
        # class); defining it registers it in _PLATFORMS, so later look-ups are direct.
        return _installed_config_class(name) or CustomTrainingServiceConfig
    known = sorted(set(_PLATFORMS) | set(installed))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(path, f"unknown platform {platform!r}{hint}; allowed: {', '.join(known)}")


def _installed_config_class(name: str) -> type | None:
    """The ``config_class`` of the installed training service ``name``, if it declares one."""
    try:
        from nni.runtime.registry import load_class

        cls = getattr(load_class("training_service", name), "config_class", None)
    except Exception:  # noqa: BLE001 - a broken platform package falls back to unchecked fields
        return None
    if isinstance(cls, type) and issubclass(cls, TrainingServiceConfig) and cls.platform_name == name:
        return cls
    return None
