"""End to end: imagegen evaluate / train-classifier / report, training-time evaluation, and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_DCGAN, TINY_SG2, run_cli

from _metrics_fixtures import digits_splits, install_tiny_classifier, tiny_digits_classifier


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache holding the tiny digits classifier under the default key; no Inception weights."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMAGEGEN_CACHE", str(root))
        mp.delenv("IMAGEGEN_INCEPTION_WEIGHTS", raising=False)
        install_tiny_classifier(root)
        yield root


@pytest.fixture(scope="module")
def run(tmp_path_factory, cache):
    """A tiny DCGAN trained for 4 steps with evaluation every 2 steps."""
    from imagegen.cli import main

    out = tmp_path_factory.mktemp("runs") / "dcgan"
    main(["train", "dcgan", *TINY_DCGAN, "--steps", "4", "--log-every", "1", "--sample-every", "2",
          "--ckpt-every", "2", "--eval-every", "2", "--eval-samples", "200", "--out", str(out)])
    return out


def save_npz(path: Path, images_nchw: torch.Tensor, labels=None) -> Path:
    arrays = {"images": images_nchw.permute(0, 2, 3, 1).numpy()}
    if labels is not None:
        arrays["labels"] = labels.numpy()
    np.savez(path, **arrays)
    return path


def test_training_time_evaluation_writes_metrics_and_best_checkpoint(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    for r in rows:
        assert {"fid", "kid", "kid_std", "class_entropy", "kimg", "protocol"} <= set(r)
        assert r["protocol"]["extractor"]["name"] == "classifier"
        assert r["protocol"]["num_fake"] == 200 and r["protocol"]["reference"]["resolution"] == [16, 16]
    assert (run / "checkpoints" / "best" / "model.safetensors").is_file()


def test_evaluate_run_appends_a_json_line(run, capsys):
    code, out, err = run_cli(["evaluate", run, "--num-samples", "300", "--metrics", "fid,kid,is,pr,dc"], capsys)
    assert code == 0, err
    assert "dataset classifier of digits" in out and "no Inception weights found" in out
    for key in ("fid", "kid", "is", "precision", "recall", "density", "coverage"):
        assert f"  {key} " in out
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["source"] == "evaluate" and last["step"] == 4 and last["kimg"] == pytest.approx(4 * 16 / 1000)
    p = last["protocol"]
    assert p["num_fake"] == 300 and p["reference"]["split"] == "test" and p["reference"]["dataset"] == "digits"
    assert p["resolution"] == [16, 16] and p["seed"] == 0 and p["fake"]["step"] == 4
    code, _, err = run_cli(["evaluate", run, "--resolution", "32"], capsys)
    assert code == 2 and "the model generates 16x16 images" in err
    code, out, err = run_cli(["evaluate", run, "--num-samples", "300", "--metrics", "fid", "--json"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    assert obj["fid"] > 0 and obj["protocol"]["extractor"]["weights_sha256"]
    lines = len((run / "metrics.jsonl").read_text().splitlines())  # a checkpoint directory records in RUN
    code, _, err = run_cli(["evaluate", run / "checkpoints" / "step-0000004", "--num-samples", "300",
                            "--metrics", "fid"], capsys)
    assert code == 0, err
    assert len((run / "metrics.jsonl").read_text().splitlines()) == lines + 1


def test_raw_generator_scores_g_instead_of_g_ema(run, tmp_path, capsys):
    args = ["evaluate", run, "--num-samples", "300", "--metrics", "fid", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    ema = json.loads(out)
    code, out, err = run_cli([*args, "--raw-generator"], capsys)
    assert code == 0, err
    raw = json.loads(out)
    assert ema["protocol"]["fake"]["generator"] == "G_ema" and raw["protocol"]["fake"]["generator"].startswith("G (raw")
    assert raw["fid"] != ema["fid"]  # the same run and seed, other weights
    plain = tmp_path / "no-ema"
    code, _, err = run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--ema-decay", "0", "--out", plain], capsys)
    assert code == 0, err
    for bad, message in (([plain], "keeps no EMA generator"), (["--fake", "digits:test"], "not to --fake images")):
        code, _, err = run_cli(["evaluate", *bad, "--raw-generator", "--num-samples", "300"], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_conditional_run_gets_the_acc_metric(tmp_path, cache, capsys):
    run = tmp_path / "cgan"
    code, _, err = run_cli(["train", "cgan", "--data", "digits", "--resolution", "8", "--g-width", "8", "--d-width", "8",
                            "--z-dim", "8", "--steps", "2", "--batch-size", "8", "--out", run, "--no-progress",
                            "--eval-every", "2", "--eval-samples", "100", "--eval-metrics", "fid,acc"], capsys)
    assert code == 0, err
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= row["acc"] <= 1 and "fid" in row and "class_entropy" in row
    code, out, err = run_cli(["evaluate", run, "--num-samples", "200", "--json"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    assert {"fid", "kid", "is", "precision", "density", "acc"} <= set(obj)
    assert obj["protocol"]["fake"]["labels"] == "balanced over 10 classes"


def test_report(run, capsys):
    code, out, err = run_cli(["report", run], capsys)
    assert code == 0, err
    page = Path(out.strip())
    assert page == run / "report" / "index.html"
    for name in ("losses.png", "grad_norms.png", "metric_fid.png", "metric_kid.png", "metric_class_entropy.png"):
        assert (run / "report" / name).is_file(), name
    html = page.read_text()
    assert "../samples/step-0000002.png" in html and "../samples/step-0000004.png" in html
    assert "losses.png" in html and "metric_fid.png" in html
    assert Image.open(run / "report" / "losses.png").size == (700, 400)


def test_evaluate_npz_and_folder(tmp_path, cache, capsys):
    train, test = digits_splits()
    clf, _ = tiny_digits_classifier()
    npz = save_npz(tmp_path / "same.npz", test.images, test.labels)
    code, out, err = run_cli(["evaluate", "--fake", npz, "--real", "digits:test", "--metrics", "fid,pr,acc",
                              "--json"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    assert obj["fid"] == pytest.approx(0.0, abs=1e-6) and obj["precision"] == 1.0
    assert obj["acc"] == pytest.approx(clf.test_accuracy)
    assert obj["protocol"]["fake"]["file"] == str(npz)

    # the floor: real training images against the test split (labels come with the dataset)
    code, out, err = run_cli(["evaluate", "--fake", "digits:train", "--real", "digits:test", "--metrics", "fid,acc",
                              "--json"], capsys)
    assert code == 0, err
    floor = json.loads(out)
    assert 0 < floor["fid"] < 1 and floor["acc"] > 0.8 and floor["protocol"]["num_fake"] == 1500
    code, out, err = run_cli(["evaluate", "--fake", "digits:train", "--real", "digits:test", "--resolution", "16",
                              "--metrics", "fid", "--json"], capsys)  # both sets loaded at 16x16
    assert code == 0, err
    assert json.loads(out)["protocol"]["resolution"] == [16, 16]

    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(300):
        Image.fromarray(train.images[i, 0].numpy()).save(folder / f"{i:04d}.png")
    code, out, err = run_cli(["evaluate", "--fake", folder, "--data", "digits", "--split", "test",
                              "--metrics", "fid,kid"], capsys)
    assert code == 0, err
    assert "300 generated vs 297 real images of digits:test (1x8x8)" in out

    big = save_npz(tmp_path / "big.npz", build_big(train))
    code, out, err = run_cli(["evaluate", "--fake", big, "--real", "digits:test", "--resize-real", "--metrics",
                              "fid", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["protocol"]["resolution"] == [16, 16]
    assert json.loads(out)["protocol"]["reference"]["loaded_at"]["resolution"] == 16


def test_sample_writes_the_images_evaluate_scores(tmp_path, cache, capsys):
    """For an unconditional run `sample --num N --seed S` and `evaluate --num-samples N --seed S` draw the
    same images, also when N spans several forward passes (latents and noise are drawn batch by batch,
    so the two commands share their default batch size)."""
    from imagegen.cli.evaluate import evaluate
    from imagegen.cli.sample import sample
    from imagegen.sampling import SAMPLE_BATCH

    def default_batch(command):
        return next(p.default for p in command.params if p.name == "batch_size")

    assert default_batch(sample) == default_batch(evaluate) == SAMPLE_BATCH
    sg = tmp_path / "sg"
    assert run_cli(["train", "stylegan2", *TINY_SG2, "--steps", "1", "--out", sg], capsys)[0] == 0
    n = str(SAMPLE_BATCH + 50)
    npz = tmp_path / "s.npz"
    code, _, err = run_cli(["sample", sg, "--num", n, "--seed", "3", "--out", npz], capsys)
    assert code == 0, err
    code, out, err = run_cli(["evaluate", sg, "--metrics", "fid", "--num-samples", n, "--seed", "3", "--json"], capsys)
    assert code == 0, err
    from_run = json.loads(out)["fid"]
    code, out, err = run_cli(["evaluate", "--fake", npz, "--real", "digits:test", "--metrics", "fid",
                              "--num-samples", n, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["fid"] == pytest.approx(from_run, rel=1e-6)


def test_evaluate_fake_subset_is_random_not_the_first_n(tmp_path, cache, capsys):
    """--num-samples N of a --fake file draws a seeded random subset: a file ordered by class (as
    ``sample --num-per-class`` writes) would otherwise be scored on its first classes only."""
    _, test = digits_splits()
    order = torch.argsort(test.labels, stable=True)
    by_class = save_npz(tmp_path / "by_class.npz", test.images[order], test.labels[order])
    first = save_npz(tmp_path / "first.npz", test.images[order][:100], test.labels[order][:100])
    fids = {}
    for name, path in (("subset", by_class), ("first", first)):
        code, out, err = run_cli(["evaluate", "--fake", path, "--real", "digits:test", "--metrics", "fid",
                                  "--num-samples", "100", "--json"], capsys)
        assert code == 0, err
        obj = json.loads(out)
        fids[name] = obj["fid"]
    assert "subset" not in obj["protocol"]["fake"]  # all 100 of them
    code, out, err = run_cli(["evaluate", "--fake", by_class, "--real", "digits:test", "--metrics", "fid",
                              "--num-samples", "100", "--json"], capsys)
    assert json.loads(out)["protocol"]["fake"]["subset"] == f"100 of {len(test.images)} images, drawn with seed 0"
    assert json.loads(out)["fid"] == fids["subset"]  # the same seed, the same subset
    assert fids["subset"] < 0.5 * fids["first"], fids  # the first 100 hold only the first classes

def build_big(train):
    from imagegen.data import build_dataset

    return build_dataset("digits", split="train", resolution=16).images[:200]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_evaluate_with_inception_weights(tmp_path, cache, capsys):
    from imagegen.metrics.inception import FIDInceptionV3

    torch.manual_seed(0)
    weights = tmp_path / "random_inception.pth"
    torch.save(FIDInceptionV3().state_dict(), weights)
    _, test = digits_splits()
    npz = save_npz(tmp_path / "few.npz", test.images[:6])
    code, out, err = run_cli(["evaluate", "--fake", npz, "--real", "digits:test", "--num-real", "6",
                              "--inception-weights", weights, "--metrics", "kid"], capsys)
    assert code == 0, err
    assert "FID Inception-v3" in out and "NOT the standard file" in out
    assert "not the standard FID Inception file" in err


@pytest.mark.parametrize("args, message", [
    (["--fake", "{npz}", "--real", "digits:test", "--metrics", "fid,lpips"], "unknown metric(s) 'lpips'"),
    (["--fake", "{big}", "--real", "digits:test"], "generated images are 1x16x16"),
    (["--fake", "{rgb}", "--real", "digits:test"], "generated images are 3x8x8"),
    (["--fake", "{few}", "--real", "digits:test", "--metrics", "fid"], "FID from 10 samples"),
    (["--fake", "{few}", "--real", "digits:test", "--metrics", "is"], "metric is needs at least 20"),
    (["--fake", "{junk}", "--real", "digits:test"], "cannot read"),
    (["--fake", "{nokey}", "--real", "digits:test"], "has no 'images' array"),
    (["--fake", "{tmp}/missing.npz", "--real", "digits:test"], "no such file"),
    (["--fake", "{npz}", "--real", "nosuchdata:test"], "unknown dataset"),
    (["--real", "digits:test"], "give either RUN_DIR"),
    (["{tmp}/norun"], "does not exist"),
    (["--fake", "{npz}", "--real", "digits:test", "--metrics", "acc"], "labels"),
    (["--fake", "{npz}", "--real", "digits:test", "--inception-weights", "{tmp}/none.pth"], "no such file"),
    (["--fake", "{npz}", "--real", "digits:test", "--num-samples", "0"], "--num-samples 0"),
    (["--fake", "{npz}", "--real", "{flat}"], "give --classifier-data NAME"),
])
def test_evaluate_bad_input_exits_2(tmp_path, cache, capsys, args, message):
    train, test = digits_splits()
    files = {"npz": save_npz(tmp_path / "ok.npz", test.images[:100]),
             "big": save_npz(tmp_path / "big.npz", build_big(train)),
             "rgb": save_npz(tmp_path / "rgb.npz", test.images[:100].expand(-1, 3, -1, -1).contiguous()),
             "few": save_npz(tmp_path / "few.npz", test.images[:10]),
             "tmp": tmp_path}
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file")
    files["junk"] = tmp_path / "junk.npz"
    np.savez(tmp_path / "nokey.npz", pixels=np.zeros((4, 8, 8, 1), np.uint8))
    files["nokey"] = tmp_path / "nokey.npz"
    files["flat"] = tmp_path / "flat"  # an unlabelled folder: no dataset classifier without --classifier-data
    files["flat"].mkdir()
    for i in range(8):
        Image.fromarray(test.images[i, 0].numpy()).save(files["flat"] / f"{i}.png")
    code, out, err = run_cli(["evaluate", *[a.format(**files) for a in args]], capsys)
    assert code == 2, (out, err)
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1, err


def test_train_classifier_cli(tmp_path, capsys):
    args = ["train-classifier", "--data", "digits", "--widths", "4,8,8,16", "--epochs", "1", "--min-steps", "60",
            "--cache-dir", tmp_path]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "digits classifier: test accuracy" in out and "features 16-d" in out
    assert "training the digits classifier on 1500 images" in err
    saved = list((tmp_path / "classifiers").glob("digits-*/model.safetensors"))
    assert len(saved) == 1
    code, out2, err2 = run_cli(args, capsys)  # cached: same weights, no training
    assert code == 0 and out2 == out and "training" not in err2
    code, _, err = run_cli(["train-classifier", "--data", "digits", "--widths", "4,8"], capsys)
    assert code == 2 and "--widths 4,8" in err
    unlabelled = tmp_path / "flat"
    unlabelled.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(unlabelled / f"{i}.png")
    code, _, err = run_cli(["train-classifier", "--data", unlabelled, "--cache-dir", tmp_path], capsys)
    assert code == 2 and "no class labels" in err


def test_report_bad_input(tmp_path, capsys):
    code, _, err = run_cli(["report", tmp_path / "nothing"], capsys)
    assert code == 2 and "not a directory" in err
    code, _, err = run_cli(["report", tmp_path], capsys)
    assert code == 2 and "nothing to report" in err


def test_evaluate_padded_run_scores_native_size(tmp_path, cache, capsys):
    """A run trained on zero-padded data (digits 8x8 padded to 16x16) is scored at the data's native 8x8:
    samples centre-cropped, reference not padded, recorded in the protocol."""
    run = tmp_path / "padded"
    code, _, err = run_cli(["train", "dcgan", *TINY_DCGAN, "--resize", "pad", "--steps", "1", "--out", run], capsys)
    assert code == 0, err
    code, out, err = run_cli(["evaluate", run, "--num-samples", "100", "--metrics", "fid", "--json",
                              "--allow-few-samples"], capsys)
    assert code == 0, err
    p = json.loads(out)["protocol"]
    assert p["resolution"] == [8, 8]
    assert p["reference"]["loaded_at"]["resolution"] == [8, 8] and "cropped" in p["reference"]["loaded_at"]["resize"]
    assert p["fake"]["cropped"].startswith("centre 8x8")


def test_perceptual_path_length_of_a_known_linear_generator():
    """A generator that draws w itself as the image: d = ‖scale·(w2 − w1)·ε‖² / ε² = scale²‖w2 − w1‖², whose
    mean over w ~ N(0, I) is 2·D·scale² (the 1st–99th percentile trim lowers it a little)."""
    from imagegen.metrics.ppl import perceptual_path_length

    class Linear:
        has_style_latents, num_classes, model_name, device = True, 0, "linear", torch.device("cpu")

        def sample_latents(self, n, generator=None):
            return torch.randn(n, 16, generator=generator)

        def mapping(self, z, labels=None):
            return z[:, None]

        def synthesize(self, w, noise_mode="const", generator=None):
            return 3.0 * w.reshape(len(w), 1, 4, 4)

    res = perceptual_path_length(Linear(), lambda img: (img.flatten(1), None), num_samples=4000, seed=0)
    assert res["ppl"] == pytest.approx(2 * 16 * 9.0, rel=0.06) and res["num_samples"] == 4000


def test_evaluate_ppl_of_style_and_dcgan_runs(tmp_path, cache, capsys):
    sg = tmp_path / "sg"
    code, _, err = run_cli(["train", "stylegan2", *TINY_SG2, "--steps", "2", "--out", sg], capsys)
    assert code == 0, err
    code, out, err = run_cli(["evaluate", sg, "--metrics", "ppl", "--num-samples", "20", "--json"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    assert rec["ppl"] > 0 and rec["protocol"]["space"] == "w" and "LPIPS" in rec["protocol"]["distance"]
    assert rec["kimg"] > 0  # the ppl-only record is placed on the training timeline like the others
    code, out, err = run_cli(["evaluate", sg, "--metrics", "ppl,fid", "--num-samples", "20", "--json",
                              "--allow-few-samples", "--ppl-sampling", "full"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    assert rec["ppl"] > 0 and "fid" in rec and rec["protocol"]["ppl"]["sampling"] == "full"
    dc = tmp_path / "dc"
    assert run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--out", dc], capsys)[0] == 0
    code, out, err = run_cli(["evaluate", dc, "--metrics", "ppl", "--num-samples", "10", "--json"], capsys)
    assert code == 0 and json.loads(out)["protocol"]["space"] == "z", err
    code, _, err = run_cli(["evaluate", dc, "--metrics", "ppl", "--ppl-space", "w", "--num-samples", "10"], capsys)
    assert code == 2 and "has no mapping network" in err


def test_classifier_data_root_reaches_the_classifier_and_data_root_serves_the_reference(monkeypatch):
    """--data-root is the reference dataset's; a classifier of another dataset reads --classifier-data-root,
    and without it the missing-directory error names --classifier-data-root, not --data-root."""
    from types import SimpleNamespace

    import imagegen.metrics.classifier as classifier_module
    from imagegen.cli import evaluate as evaluate_cli
    from imagegen.errors import DataError

    seen = []

    def fake_load(name, data_root=None, cache=None, log=None):
        seen.append((name, data_root))
        if data_root is None:
            raise DataError(f"{name}: no data directory; pass --data-root DIR holding the zips, or set IMAGEGEN_DATA")
        return SimpleNamespace(dataset=name, weights_hash="0" * 12, test_accuracy=0.5)

    monkeypatch.setattr(classifier_module, "load_or_train_classifier", fake_load)
    zebras = SimpleNamespace(name="zebras.zip")
    select = evaluate_cli._select_extractor
    select("classifier", None, zebras, "cifar10-jpg", "/ref", None, False, classifier_root="/cifar")
    select("classifier", None, SimpleNamespace(name="mnist"), None, "/mnist", None, False)
    assert seen == [("cifar10-jpg", "/cifar"), ("mnist", "/mnist")]
    with pytest.raises(DataError, match="pass --classifier-data-root DIR"):
        select("classifier", None, zebras, "cifar10-jpg", "/ref", None, False)
