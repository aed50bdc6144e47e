"""Load a repository script (``scripts/*.py``, ``benchmarks/*.py``) as a module, for tests of its functions."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_script(relpath: str, name: str | None = None) -> ModuleType:
    """Import ``REPO/relpath`` under ``name`` (default: ``_script_<file stem>``) and return the module."""
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(name or f"_script_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses (and pickling) look their module up there
    spec.loader.exec_module(mod)
    return mod
