"""scripts/check_autoregressive_run.py: the causality check passes for a real model and catches a leak."""
from __future__ import annotations

import pytest
import torch
from _scripts import load_script

from imagegen.registry import get_model_class

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def check():
    return load_script("scripts/check_autoregressive_run.py")


def _tiny(distribution: str = "logistic_mixture"):
    cls = get_model_class("pixelcnn")
    torch.manual_seed(0)
    return cls(cls.Config(resolution=8, channels=3, width=8, num_layers=3, distribution=distribution,
                          num_mixtures=2, head_hidden=8)).eval()


def test_causal_model_passes_and_a_leak_is_caught(check):
    model = _tiny()
    rows = check.future_dependencies(model, [(0, 0), (3, 4), (7, 7)])
    assert [r["later_pixels_seen"] for r in rows] == [0, 0, 0]
    assert rows[1]["earlier_pixels_seen"] > 0
    body = model.body
    model.body = lambda x, labels: body(x, labels) + x.mean(1, keepdim=True)  # sees its own pixel
    rows = check.future_dependencies(model, [(3, 4)])
    assert rows[0]["later_pixels_seen"] == 1


def test_bits_per_dim_of_a_uniform_head_is_eight(check):
    model = _tiny("categorical")
    for p in model.head.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randint(0, 256, (2, 3, 8, 8)).float() / 127.5 - 1
    assert check.bits_per_dim(model, model.likelihood_targets(x)) == pytest.approx([8.0, 8.0], abs=1e-4)
