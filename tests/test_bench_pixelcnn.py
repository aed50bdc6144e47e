"""benchmarks/bench_pixelcnn.py: every entry builds its registered model, and the script knows which
models have an incremental (fast) sampler, so the Diagonal BiLSTM is timed naive only instead of failing."""
from __future__ import annotations

import pytest
from _scripts import load_script

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/bench_pixelcnn.py")


def test_entries_build_their_models(bench):
    assert bench.model_name("pixelrnn-diagonal") == "pixelrnn"
    for name in bench.CONFIGS:
        m = bench.build(name)
        assert m.model_name == bench.model_name(name)
    assert bench.build("pixelrnn-diagonal").config.layer_type == "diagonal_bilstm"


def test_fast_sampler_probe(bench):
    assert bench.has_fast_sampler("pixelrnn")
    assert not bench.has_fast_sampler("pixelrnn-diagonal")
