"""benchmarks/bench_pixelcnn.py: every entry builds its registered model, and the script knows which
models have an incremental (fast) sampler, so the Diagonal BiLSTM is timed naive only instead of failing."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("_bench_pixelcnn", REPO / "benchmarks" / "bench_pixelcnn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_entries_build_their_models(bench):
    assert bench.model_name("pixelrnn-diagonal") == "pixelrnn"
    for name in bench.CONFIGS:
        m = bench.build(name)
        assert m.model_name == bench.model_name(name)
    assert bench.build("pixelrnn-diagonal").config.layer_type == "diagonal_bilstm"


def test_fast_sampler_probe(bench):
    assert bench.has_fast_sampler("pixelrnn")
    assert not bench.has_fast_sampler("pixelrnn-diagonal")
