"""Typed configuration: dataclasses that are frozen into ``run_dir/config.json``.

Each model has a ``Config`` dataclass; the trainer has :class:`imagegen.training.TrainConfig`.
A field's ``metadata={"help": ...}`` is its documentation and becomes the CLI option's help text.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, get_args, get_origin

from .errors import ConfigError


def help_field(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a default value and a help text (shown by ``--help``)."""
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def to_dict(cfg: Any) -> dict[str, Any]:
    """Convert a config dataclass to a JSON-serialisable dict (tuples become lists)."""
    return dataclasses.asdict(cfg)


def _coerce(name: str, tp: Any, value: Any) -> Any:
    origin = get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(name, args[0], value)
    if origin is typing.Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{name}={value!r} is not one of {list(get_args(tp))}")
        return value
    if origin in (tuple, list):
        (inner, *_) = get_args(tp) or (Any,)
        if isinstance(value, str):  # the CLI's comma-separated form, e.g. "512,256,128"
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}={value!r} is not a list; give comma-separated values, e.g. 512,256,128")
        return tuple(_coerce(name, inner, v) for v in value) if origin is tuple else [
            _coerce(name, inner, v) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{name}={value!r} is not a boolean; use true or false")
    if tp in (int, float, str):
        try:
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is not a valid {tp.__name__}") from None
    return value


def check_choices(cfg: Any) -> None:
    """Check that every ``Literal``-typed field of config dataclass ``cfg`` holds one of its choices.

    :func:`from_dict` checks the CLI's and saved configs' values; this catches a bad value given to a
    config's constructor from the Python API (e.g. ``conv_mode="group"``), which would otherwise
    select some default branch silently. Non-dataclass configs are left alone.

    Raises:
        ConfigError: naming the field, the value and the valid choices.
    """
    if not dataclasses.is_dataclass(cfg):
        return
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        tp, value = hints[f.name], getattr(cfg, f.name)
        if get_origin(tp) is typing.Union and value is not None:  # Optional[Literal[...]]
            tp = next(a for a in get_args(tp) if a is not type(None))
        if get_origin(tp) is typing.Literal:
            _coerce(f.name, tp, value)


def from_dict(cls: type, data: dict[str, Any], *, what: str = "config") -> Any:
    """Build dataclass ``cls`` from ``data``, checking names and types.

    Raises:
        ConfigError: on an unknown key or a value of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown {what} option(s) {unknown}; valid options: {sorted(names)}")
    kwargs = {k: _coerce(k, hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def from_saved(cls: type, data: dict[str, Any], *, what: str = "config") -> Any:
    """:func:`from_dict` for a config read from a checkpoint: options the checkpoint predates take the
    value that reproduces how it was trained (``cls.SAVED_DEFAULTS``, e.g. a feature that was off before
    the option existed) instead of today's default.

    Raises:
        ConfigError: on an unknown key or a value of the wrong type.
    """
    return from_dict(cls, {**getattr(cls, "SAVED_DEFAULTS", {}), **data}, what=what)
