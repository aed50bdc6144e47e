"""Shared test helpers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Two cores: keep every test process on them without oversubscription.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def one_thread():
    """One intra-op thread for a test of tiny tensors in long Python loops (autoregressive sampling,
    LSTM steps, small VGGs): a second thread only adds synchronisation, and costs seconds per step
    instead of milliseconds when the other core is busy. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def shared_data(name: str) -> Path:
    """Path of a folder in ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is not available")
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run ``imagegen ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from imagegen.cli import main

    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(args: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m imagegen ARGS`` in a fresh process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "imagegen", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kwargs)


#: a tiny, fast DCGAN on the bundled digits (16×16, narrow)
TINY_DCGAN = ["--data", "digits", "--resolution", "16", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
              "--batch-size", "16", "--no-progress"]
#: an 8×8 StyleGAN2 on the bundled digits (num_ws = 2·log2(8) − 2 = 4), trainable in a second
TINY_SG2 = ["--data", "digits", "--resolution", "8", "--z-dim", "8", "--w-dim", "8", "--mapping-layers", "2",
            "--channel-base", "32", "--channel-max", "8", "--mbstd-group", "2", "--batch-size", "8", "--threads", "1",
            "--no-progress"]


def tiny_stylegan2(**overrides):
    """The Python-API twin of :data:`TINY_SG2` (1 channel, seeded with 0, eval mode)."""
    import torch

    from imagegen.models.stylegan2 import StyleGAN2, StyleGAN2Config

    torch.manual_seed(0)
    cfg = dict(resolution=8, channels=1, z_dim=8, w_dim=8, mapping_layers=2, channel_base=32, channel_max=8,
               mbstd_group=2)
    return StyleGAN2(StyleGAN2Config(**{**cfg, **overrides})).eval()
