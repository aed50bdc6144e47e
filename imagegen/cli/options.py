"""Click options generated from config dataclasses, so every config field is a documented option."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable, Literal, Optional, get_args, get_origin

import click

from ..errors import ConfigError

#: extensions of the image files the commands write
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")


def _click_type(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin is typing.Union:
        return _click_type(next(a for a in get_args(tp) if a is not type(None)))
    if origin is Literal:
        return click.Choice([str(a) for a in get_args(tp)])
    return {int: int, float: float, str: str}.get(tp, str)  # lists: "512,256,128", parsed by from_dict


def dataclass_options(cls: type, *, skip: frozenset[str] = frozenset(),
                      defaults: Optional[dict[str, Any]] = None) -> Callable[[Callable], Callable]:
    """Decorator adding one ``--field-name`` option per dataclass field (bools as ``--x/--no-x``).

    Defaults shown in ``--help`` are the dataclass defaults, or ``defaults[field]`` where given (e.g. a
    model's :attr:`~imagegen.models.base.GenerativeModel.train_defaults`); an option the user does not
    give keeps it.
    """
    defaults = defaults or {}
    hints = typing.get_type_hints(cls)

    def deco(fn: Callable) -> Callable:
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip or f.metadata.get("cli", True) is False:
                continue
            tp = hints[f.name]
            flag = "--" + f.name.replace("_", "-")
            default = defaults.get(f.name, f.default if f.default is not dataclasses.MISSING else None)
            if get_origin(tp) in (list, tuple) and default is not None:
                default = ",".join(str(v) for v in default)
            help_text = f.metadata.get("help", "")
            if tp is bool:
                fn = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=default, show_default=True,
                                  help=help_text)(fn)
            else:
                fn = click.option(flag, f.name, type=_click_type(tp), default=default,
                                  show_default=default is not None, help=help_text)(fn)
        return fn

    return deco


#: per-source data options: ``--data-NAME``, ``--data-root-NAME``, ``--split-NAME``
SOURCE_FIELDS = ("data", "data_root", "split")


def source_options(sources: list[Any]) -> Callable[[Callable], Callable]:
    """Decorator adding ``--data-NAME`` (and the source's ``alias``, e.g. AdaIN's ``--content``),
    ``--data-root-NAME`` and ``--split-NAME`` for each named :class:`~imagegen.models.base.DataSource`
    (e.g. ``--data-a`` and ``--data-b`` for CycleGAN)."""

    def deco(fn: Callable) -> Callable:
        for src in reversed(sources):
            flag = src.name.replace("_", "-")
            fn = click.option(f"--split-{flag}", src.option("split"), default=None,
                              help=f"split of --data-{flag} (default: train)")(fn)
            fn = click.option(f"--data-root-{flag}", src.option("data_root"), default=None,
                              help=f"directory holding the files of a named dataset given to --data-{flag}")(fn)
            names = [f"--data-{flag}"] + ([src.alias] if src.alias else [])
            fn = click.option(*names, src.option("data"), default=None,
                              help=f"{src.help}: a folder or .zip of images, or a dataset name")(fn)
        return fn

    return deco


def explicit_params(ctx: click.Context) -> set[str]:
    """Names of the parameters the user gave on the command line (not defaults)."""
    return {name for name in ctx.params
            if ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)}


def split_params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``params`` that are fields of dataclass ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in params.items() if k in names}


def check_out(out: Any, force: bool, exts: tuple[str, ...] = IMAGE_EXTS) -> None:
    """Check an ``--out`` file path before any work: a known extension, not an existing file unless
    ``force``, an existing parent directory.

    Raises:
        ConfigError: one line naming the problem and the fix.
    """
    if out.suffix.lower() not in exts:
        raise ConfigError(f"--out {out}: use one of {', '.join(exts)}")
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists; pass --force to overwrite it or choose another --out")
    if not out.parent.exists():
        raise ConfigError(f"directory {out.parent} does not exist; create it or choose another --out")
