"""The ``imagegen`` command line: thin wrappers that parse options, build configs and call the library.

Each module in :data:`COMMAND_MODULES` defines click commands and a ``register(cli)`` function.
Bad input raises :class:`~imagegen.errors.ImagegenError`; :func:`main` prints it as one line
(``Error: ...``) and exits with code 2, like click's own usage errors.
"""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

import click

from .. import __version__
from ..errors import ImagegenError

#: command modules under imagegen.cli, each with a ``register(cli)`` function
COMMAND_MODULES = ("train", "sample", "interpolate", "evaluate")


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


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the CLI; exit code 0 on success, 2 on bad input or usage, 1 on unexpected errors."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="imagegen", standalone_mode=False)
    except ImagegenError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted; the last checkpoint is intact (resume with --resume RUN_DIR).", err=True)
        sys.exit(130)
