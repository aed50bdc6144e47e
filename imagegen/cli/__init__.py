"""The ``imagegen`` command line: thin wrappers that parse options, build configs and call the library.

Each module in :data:`COMMAND_MODULES` defines click commands and a ``register(cli)`` function.
Bad input raises :class:`~imagegen.errors.ImagegenError`; :func:`main` prints it as one line
(``Error: ...``) and exits with code 2, like click's own usage errors.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Optional, Sequence

import click

from .. import __version__
from ..errors import ImagegenError
from ..training.interrupt import TrainingInterrupted

#: command modules under imagegen.cli, each with a ``register(cli)`` function
COMMAND_MODULES = ("train", "sample", "complete", "interpolate", "style_mix", "evaluate", "stylize", "translate",
                   "degrade", "project", "blend", "train_encoder")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="imagegen")
def cli() -> None:
    """imagegen: train, sample and evaluate generative image models.

    \b
    Examples:
      imagegen train dcgan --data digits --steps 1500 --out runs/digits-dcgan
      imagegen sample runs/digits-dcgan --num 64 --out grid.png
    """


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(cli)


def _exit_torchrun_worker() -> None:
    """End a successful torchrun worker without interpreter shutdown.

    With torch 2.13's gloo backend the process group's worker threads outlive
    ``destroy_process_group`` and release finished collectives (whose tensors hold Python objects)
    on their own; when one does so while the interpreter is shutting down it cannot take the GIL and
    the process aborts ("terminate called without an active exception", SIGABRT, about 1 run in 10
    of the two-process test), turning a finished run into a failed torchrun job. Everything the run
    writes is closed by then (checkpoints, logs, TensorBoard), so the worker flushes its streams and
    leaves with ``os._exit(0)``.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


_INTERRUPTED = "Interrupted; the last checkpoint is intact (resume with --resume RUN_DIR)."


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the CLI; exit code 0 on success, 2 on bad input or usage, 1 on unexpected errors."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="imagegen", standalone_mode=False)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not rv:  # success (rv: None or exit code 0)
            _exit_torchrun_worker()
    except TrainingInterrupted as e:
        click.echo(f"Interrupted: {e}", err=True)
        sys.exit(e.exit_code)
    except ImagegenError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort as e:
        # click turns a KeyboardInterrupt inside a command (a second Ctrl-C in training) into Abort
        interrupted = isinstance(e.__cause__, KeyboardInterrupt)
        click.echo(_INTERRUPTED if interrupted else "Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo(_INTERRUPTED, err=True)
        sys.exit(130)
