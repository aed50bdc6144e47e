"""benchmarks/bench_stylegan2.py: ``--ada-p`` builds the model with ADA held at that ``p`` (so the timed
steps include the augmentation), ``none`` builds it without, and a bad probability is refused."""
from __future__ import annotations

import pytest
import torch
from _scripts import load_script

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/bench_stylegan2.py")


def test_parse_p(bench):
    assert bench.parse_p("none") is None
    assert bench.parse_p("0.2") == 0.2
    for bad in ("1.5", "-0.1", "x"):
        with pytest.raises(ValueError, match="--ada-p"):
            bench.parse_p(bad)


def test_ada_p_builds_augmented_model_and_times_it(bench):
    cpu = torch.device("cpu")
    assert bench.build(32, "scaled", 256, 32, cpu).ada is None
    model = bench.build(32, "scaled", 256, 32, cpu, ada_p=0.2)
    assert model.ada.p == 0.2 and model.ada.fixed
    r = bench.run_one(32, "scaled", 1, 4, 8, 256, 32, cpu, ada_p=0.2)
    assert r["ada_p"] == 0.2 and r["train_img_per_s"] > 0 and set(r["seconds_per_step"]) >= {"D", "G"}
    # sampling is timed at its own batch (lucidrains' figures are at batch 8/16) and its FLOPs counted:
    # one generator forward per image, far less than a training image's G and D passes, backwards and R1
    assert r["sample_batch"] == 8 and r["sample_img_per_s"] > 0
    assert 0 < r["mflop_per_sample_image"] < r["mflop_per_train_image"] / 3
