"""scripts/plot_metric_vs_time.py: where on the time axis a record lands."""
from __future__ import annotations

import json

import pytest
from _scripts import load_script


@pytest.fixture(scope="module")
def plot():
    return load_script("scripts/plot_metric_vs_time.py")


def test_records_between_log_steps_get_interpolated_training_time(plot, tmp_path):
    """Logs every 50 steps of batch 10 at 10 images/s (50 s per window), then 5 images/s; an evaluation at
    step 40 (before the first log) and at 80 and 120 must not snap to the previous logged step."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train_config": {"batch_size": 10}}))
    rows = [{"step": 50, "images_per_sec": 10.0}, {"step": 100, "images_per_sec": 5.0}]
    (run / "logs" / "scalars.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    secs = plot.training_seconds(run)
    assert secs == {0: 0.0, 50: 50.0, 100: 150.0}
    assert plot.seconds_at(secs, 40) == pytest.approx(40.0)
    assert plot.seconds_at(secs, 50) == 50.0
    assert plot.seconds_at(secs, 80) == pytest.approx(50.0 + 30 * 2.0)
    assert plot.seconds_at(secs, 120) == pytest.approx(150.0 + 20 * 2.0)  # the last window's rate
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "fid": f, "protocol": {"num_fake": 5}}) + "\n"
                                               for s, f in ((40, 9.0), (80, 7.0))))
    with open(run / "metrics.jsonl", "a") as f:  # a truncation-sweep record at the same step is not the curve
        f.write(json.dumps({"step": 80, "fid": 30.0, "protocol": {"num_fake": 5, "fake": {"truncation_psi": 0.5}}})
                + "\n")
    assert plot.sample_metric_points(run, "fid", None) == [(pytest.approx(40.0), 9.0, 40),
                                                           (pytest.approx(110.0), 7.0, 80)]


def test_nll_in_bits_per_dim_is_its_own_curve(plot, tmp_path):
    """``--metric nll_bpd`` plots the bits/dim of the same records as ``nll``, on the same test images only."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train_config": {"batch_size": 10}}))
    (run / "logs" / "scalars.jsonl").write_text(json.dumps({"step": 10, "images_per_sec": 10.0}) + "\n")
    recs = [{"step": 10, "nll": 9000.0, "nll_bpd": 4.2, "protocol": {"images": "first 1000 of x (test)"}},
            {"step": 10, "nll": 8000.0, "nll_bpd": 3.9, "protocol": {"images": "first 10,000 of x (test)"}}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert plot.nll_points(run, 1000, "nll_bpd") == [(pytest.approx(10.0), 4.2, 10)]
    assert plot.nll_points(run, 10000, "nll") == [(pytest.approx(10.0), 8000.0, 10)]


def test_scalar_curve_reads_training_scalars_with_or_without_prefix(plot, tmp_path):
    """``--scalar D/ada_p`` plots the logged training scalar (stored as ``train/D/ada_p``) at each logged
    step, in training seconds and, with ``--x kimg``, in thousands of images."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train_config": {"batch_size": 10}}))
    rows = [{"step": 50, "images_per_sec": 10.0, "train/D/ada_p": 0.1},
            {"step": 100, "images_per_sec": 5.0, "train/D/ada_p": 0.3}, {"step": 150, "images_per_sec": 5.0}]
    (run / "logs" / "scalars.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert plot.scalar_points(run, "D/ada_p") == [(50.0, 0.1, 50), (150.0, 0.3, 100)]
    assert plot.scalar_points(run, "train/D/ada_p") == plot.scalar_points(run, "D/ada_p")
    out = tmp_path / "p.png"
    import sys
    argv, sys.argv = sys.argv, ["plot", str(run) + ":ADA", "--scalar", "D/ada_p", "--x", "kimg", "--out", str(out)]
    try:
        assert plot.main() == 0
    finally:
        sys.argv = argv
    assert out.stat().st_size > 0


def test_curve_in_kimg_or_minutes_and_cut_at_max_x(plot, tmp_path):
    """``--x kimg`` puts step × batch / 1000 on the axis, minutes the training seconds / 60; ``--max-x``
    leaves out the points beyond it, in the axis' unit; a non-positive ``--max-x`` is refused."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train_config": {"batch_size": 32}}))
    pts = [(60.0, 9.0, 1000), (180.0, 5.0, 3000), (300.0, 4.0, 5000)]
    assert plot.curve(run, pts, "kimg") == ([32.0, 96.0, 160.0], [9.0, 5.0, 4.0])
    assert plot.curve(run, pts, "kimg", max_x=100) == ([32.0, 96.0], [9.0, 5.0])
    assert plot.curve(run, pts, "minutes", max_x=3) == ([1.0, 3.0], [9.0, 5.0])
    import sys
    argv, sys.argv = sys.argv, ["plot", str(run), "--metric", "fid", "--max-x", "0", "--out", str(tmp_path / "x.png")]
    try:
        assert plot.main() == 2
    finally:
        sys.argv = argv


def test_point_in_the_axis_unit(plot, tmp_path):
    """``--point`` x is seconds on the minutes axis and kimg on the kimg axis; a malformed one exits 2."""
    assert plot.point_xy("vae=706,85.87", "minutes") == ("vae", pytest.approx(706 / 60), 85.87)
    assert plot.point_xy("a=b=102.4,8.36", "kimg") == ("a=b", 102.4, 8.36)
    with pytest.raises(ValueError, match="kimg"):
        plot.point_xy("x=1", "kimg")
    import sys
    argv, sys.argv = sys.argv, ["plot", str(tmp_path), "--point", "x=oops", "--out", str(tmp_path / "x.png")]
    try:
        assert plot.main() == 2
    finally:
        sys.argv = argv


def test_summary_curve_reads_a_run_summary_json(plot, tmp_path):
    """``--summary FILE.json:RUN[:label]``: the run's evaluations at their kimg or training minutes, cut at
    max_x; a missing run or metric is a one-line ValueError."""
    evals = [{"kimg": 25.6, "fid": 20.0, "train_seconds": 600.0}, {"kimg": 51.2, "fid": 10.0, "train_seconds": 1200.0},
             {"kimg": 60.0, "kid": 0.1}]
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"what": "x", "runs": {"none": {"evaluations": evals}}}))
    assert plot.summary_curve(f"{path}:none", "fid", "kimg") == ("none", [25.6, 51.2], [20.0, 10.0])
    assert plot.summary_curve(f"{path}:none:seed 0", "fid", "minutes", max_x=15) == ("seed 0", [10.0], [20.0])
    with pytest.raises(ValueError, match="no run 'ada'"):
        plot.summary_curve(f"{path}:ada", "fid", "kimg")
    with pytest.raises(ValueError, match="has both is and kimg"):
        plot.summary_curve(f"{path}:none", "is", "kimg")


def test_summary_curve_reads_scalar_means_on_the_kimg_axis(plot, tmp_path):
    """``--summary`` with ``--scalar KEY``: the JSON's per-window means at each window's middle, cut at max_x;
    the minutes axis or a scalar the JSON does not keep is a one-line ValueError naming the fix."""
    means = [{"kimg": [0.0, 10.0], "mean": 0.8, "n": 31}, {"kimg": [10.0, 20.0], "mean": 0.7, "n": 31},
             {"kimg": [20.0, 30.0], "mean": 0.6, "n": 31}]
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"what": "x", "runs": {"ada": {"evaluations": [],
                                                               "scalar_means": {"D/acc_real": means}}}}))
    assert plot.summary_curve(f"{path}:ada:seed 0", "fid", "kimg", scalar="D/acc_real") == (
        "seed 0", [5.0, 15.0, 25.0], [0.8, 0.7, 0.6])
    assert plot.summary_curve(f"{path}:ada", "fid", "kimg", max_x=20, scalar="D/acc_real")[1:] == (
        [5.0, 15.0], [0.8, 0.7])
    with pytest.raises(ValueError, match="--scalar D/ada_p"):
        plot.summary_curve(f"{path}:ada", "fid", "kimg", scalar="D/ada_p")
    with pytest.raises(ValueError, match="use --x kimg"):
        plot.summary_curve(f"{path}:ada", "fid", "minutes", scalar="D/acc_real")
