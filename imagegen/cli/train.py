"""``imagegen train MODEL``: one subcommand per registered model, with the trainer's and the model's options."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import click

from ..config import from_dict
from ..registry import get_model_class, list_models
from ..training import Trainer, TrainConfig
from .options import SOURCE_FIELDS, dataclass_options, explicit_params, source_options, split_params


def _make_command(name: str) -> click.Command:
    model_cls = get_model_class(name)
    overlap = set(model_cls.Config.__dataclass_fields__) & set(TrainConfig.__dataclass_fields__)
    if overlap:  # pragma: no cover - a programming error in a model file
        raise RuntimeError(f"{name} config fields {overlap} clash with trainer options")
    sources = model_cls.data_sources()
    named = [src for src in sources if src.name]
    # a model without an unnamed source has no --data/--data-root/--split (only --data-NAME ...)
    main_data_skip = frozenset() if any(not src.name for src in sources) else frozenset(SOURCE_FIELDS)

    @click.command(name=name, help=(model_cls.__doc__ or "").split("\n\n")[0],
                   context_settings={"show_default": True})
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="run directory for checkpoints, samples and logs (default: runs/<model>-<data>)")
    @click.option("--resume", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="continue the run in this directory exactly where it stopped")
    @click.option("--force", is_flag=True, help="overwrite an existing run directory")
    @dataclass_options(TrainConfig, skip=main_data_skip, defaults=model_cls.train_defaults)
    @source_options(named)
    @dataclass_options(model_cls.Config)
    @_preset_option(model_cls)
    @click.pass_context
    def command(ctx: click.Context, out: Optional[Path], resume: Optional[Path], force: bool,
                **params: Any) -> None:
        if resume is not None and out is not None and Path(out) != Path(resume):
            raise click.UsageError("--resume RUN_DIR already names the run directory; drop --out")
        given = explicit_params(ctx)
        preset = params.pop("preset", None)
        if preset is not None:
            if resume is not None:
                raise click.UsageError("--preset cannot change when resuming; the model options come from the run")
            taken = {k: v for k, v in model_cls.presets[preset].items() if k not in given}
            params.update(taken)
            if os.environ.get("RANK", "0") == "0":  # once under torchrun
                given_here = sorted(set(model_cls.presets[preset]) - set(taken))
                click.echo(f"preset {preset}: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in taken.items())
                           + (f" (given here instead: {', '.join(given_here)})" if given_here else ""))
        sources = {src.name: {f: params.pop(src.option(f)) for f in SOURCE_FIELDS} for src in named}
        if any(src.option(f) in given for src in named for f in SOURCE_FIELDS):
            given.add("sources")
        train_cfg = from_dict(TrainConfig, {**split_params(TrainConfig, params), "sources": sources}, what="train")
        model_cfg = from_dict(model_cls.Config, split_params(model_cls.Config, params), what=f"{name} model")
        if resume is not None:
            model_given = sorted(given & set(model_cls.Config.__dataclass_fields__))
            if model_given:
                raise click.UsageError(f"model options {', '.join('--' + g.replace('_', '-') for g in model_given)} "
                                       "cannot change when resuming; they come from the run")
        data_name = train_cfg.data if not main_data_skip else next(iter(sources.values()), {}).get("data") or "data"
        run_dir = resume or out or Path("runs") / f"{name}-{Path(str(data_name)).stem}"
        trainer = Trainer(name, model_cfg, train_cfg, run_dir, resume=resume is not None, force=force,
                          overrides=given & set(TrainConfig.__dataclass_fields__), echo=click.echo)
        trainer.fit()

    return command


def _preset_option(model_cls: Any) -> Any:
    """Decorator adding ``--preset NAME`` for a model with :attr:`presets` (none otherwise)."""

    def deco(fn: Any) -> Any:
        if not model_cls.presets:
            return fn
        unknown = {k for p in model_cls.presets.values() for k in p} - set(model_cls.Config.__dataclass_fields__)
        if unknown:  # pragma: no cover - a programming error in a model file
            raise RuntimeError(f"{model_cls.model_name} presets set unknown options {sorted(unknown)}")
        listed = "; ".join(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items())
                           for name, values in model_cls.presets.items())
        return click.option("--preset", type=click.Choice(sorted(model_cls.presets)), default=None,
                            help=f"start from a published configuration's model options ({listed}); options "
                                 "given on the command line override it")(fn)

    return deco


class _TrainGroup(click.Group):
    """Builds a subcommand per registered model on demand (so ``--help`` lists them all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list_models()

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        return _make_command(cmd_name) if cmd_name in list_models() else None


@click.group(cls=_TrainGroup)
def train() -> None:
    """Train a model: imagegen train MODEL [OPTIONS]; see imagegen train MODEL --help.

    Works under torchrun for multi-process training:
    torchrun --nproc_per_node 2 -m imagegen train dcgan ...
    """


def register(cli: click.Group) -> None:
    cli.add_command(train)
