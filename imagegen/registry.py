"""Name → class registry for models.

A model file registers itself with ``@register_model("dcgan")``; the CLI and :func:`get_model` look
models up by name. No ``if/elif`` chains on names anywhere.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from .errors import ConfigError

_MODELS: dict[str, type] = {}
T = TypeVar("T", bound=type)


def register_model(name: str) -> Callable[[T], T]:
    """Class decorator registering a :class:`imagegen.models.base.GenerativeModel` subclass."""

    def deco(cls: T) -> T:
        if name in _MODELS and _MODELS[name] is not cls:
            raise RuntimeError(f"model name {name!r} registered twice")
        cls.model_name = name  # type: ignore[attr-defined]
        _MODELS[name] = cls
        return cls

    return deco


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing the package registers every model file)


def get_model_class(name: str) -> type:
    """Return the model class registered as ``name``.

    Raises:
        ConfigError: if no model has that name (the message lists the known ones).
    """
    _ensure_loaded()
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_loaded()
    return sorted(_MODELS)
