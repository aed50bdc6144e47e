"""The model contract beyond one labelled dataset: named unpaired sources and their CLI options, paired
data (side-by-side and folders), lr schedules across resume, training state that is not a weight,
epochs → steps with lazy phases, paired metrics, list options, and the import layering."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Optional

import numpy as np
import pytest
import torch
from PIL import Image

from _contract_models import ForgetfulPool, PairedL1, UnpairedPool
from conftest import run_cli
from test_models import TINY_CONFIGS, assert_exact_resume, write_side_by_side_digits

from imagegen import checkpoint as ckpt
from imagegen import registry
from imagegen.config import from_dict, help_field
from imagegen.errors import ConfigError, DataError
from imagegen.models.base import Phase, batches_per_step
from imagegen.sampling import load_run
from imagegen.training import TrainConfig, Trainer


@pytest.fixture
def contract_models(monkeypatch):
    """Register the contract test models for one test."""
    for name, cls in (("unpaired-pool", UnpairedPool), ("forgetful-pool", ForgetfulPool), ("paired-l1", PairedL1)):
        registry._ensure_loaded()
        monkeypatch.setitem(registry._MODELS, name, cls)
        monkeypatch.setattr(cls, "model_name", name)
        monkeypatch.setitem(TINY_CONFIGS, name, {})
    yield


def test_unpaired_model_with_pool_and_schedule_resumes_exactly(contract_models, tmp_path):
    assert_exact_resume("unpaired-pool", tmp_path, steps=6, stop_at=3)
    state = ckpt.load_trainer_state(ckpt.resolve_checkpoint(tmp_path / "stopped"))
    assert len(state["model_state"][0]["pool"]) == 4  # the pool is saved per process, outside the weights
    assert set(state["data"][0]) == {"a", "b"}  # one resumable stream per source
    weights = load_run(tmp_path / "stopped").state_dict()
    assert not any("pool" in k for k in weights)


def test_a_model_that_forgets_its_training_state_fails_the_resume_check(contract_models, tmp_path):
    with pytest.raises(AssertionError):
        assert_exact_resume("forgetful-pool", tmp_path, steps=6, stop_at=3)


def test_named_sources_on_the_cli(contract_models, tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "unpaired-pool", "--data-a", "digits", "--data-b", "digits", "--steps", "3",
                              "--batch-size", "8", "--no-progress", "--out", run], capsys)
    assert code == 0, err
    assert "digits (1,500 images, 1×8²) + digits (1,500 images" in out
    meta = json.loads((run / "config.json").read_text())
    assert set(meta["sources"]) == {"a", "b"} and meta["train_config"]["sources"]["b"]["data"] == "digits"
    code, out, _ = run_cli(["train", "unpaired-pool", "--help"], capsys)
    assert "--data-a" in out and "--data-root-b" in out and "--split-a" in out
    assert "--data " not in out  # no unnamed source, so no --data
    code, _, err = run_cli(["train", "unpaired-pool", "--data-a", "digits", "--steps", "2", "--no-progress",
                            "--out", tmp_path / "x"], capsys)
    assert code == 2 and "missing --data-b" in err
    # resuming may change a source's data root, not its data
    code, _, err = run_cli(["train", "unpaired-pool", "--resume", run, "--data-b", "mnist", "--steps", "4"], capsys)
    assert code == 2 and "cannot change --data-b" in err


def test_lr_schedule_is_stepped_checkpointed_and_stretched_on_resume(contract_models, tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(steps=4, batch_size=8, progress=False, log_every=1, sample_every=100, ckpt_every=100,
                      sources={"a": {"data": "digits"}, "b": {"data": "digits"}})
    Trainer("unpaired-pool", UnpairedPool.Config(), cfg, run, echo=lambda s: None).fit()
    rows = [json.loads(x) for x in (run / "logs" / "scalars.jsonl").read_text().splitlines()]
    assert [r["lr/G"] for r in rows] == pytest.approx([1e-2 * (1 - s / 4) for s in range(4)])
    state = ckpt.load_trainer_state(ckpt.resolve_checkpoint(run))
    assert state["optimizers"]["G"]["param_groups"][0]["initial_lr"] == 1e-2
    # --resume --steps 8: the linear decay is re-evaluated with the new end, from step 4 on
    Trainer("unpaired-pool", None, dataclasses.replace(cfg, steps=8), run, resume=True, overrides={"steps"},
            echo=lambda s: None).fit()
    rows = [json.loads(x) for x in (run / "logs" / "scalars.jsonl").read_text().splitlines()]
    assert [r["lr/G"] for r in rows[4:]] == pytest.approx([1e-2 * (1 - s / 8) for s in range(4, 8)])
    # a schedule written in terms of the run's length cannot run open-ended (--minutes alone)
    with pytest.raises(ConfigError, match="needs the run's length"):
        Trainer("unpaired-pool", UnpairedPool.Config(), dataclasses.replace(cfg, steps=None, minutes=0.01),
                tmp_path / "open", echo=lambda s: None).fit()


def test_paired_side_by_side_is_split_before_resizing(tmp_path):
    from imagegen.data.paired import load_paired

    left = np.zeros((20, 20), np.uint8)
    right = np.full((20, 20), 255, np.uint8)
    for i in range(3):
        Image.fromarray(np.concatenate([left + i, right - i], 1)).save(tmp_path / f"{i}.png")  # 40×20, A|B
    ds = load_paired(tmp_path, resolution=8)
    a, b, label = ds.get_batch(torch.arange(3))
    assert a.shape == b.shape == (3, 1, 8, 8) and (label == -1).all()
    assert a.max() < -0.9 and b.min() > 0.9  # no half was cropped into the other
    (tmp_path / "odd.png").write_bytes(b"")
    with pytest.raises(DataError, match="odd.png"):
        load_paired(tmp_path, resolution=8)


def test_a_folder_of_unpaired_images_is_not_split_in_half(tmp_path):
    """layout auto: a file that is not twice as wide as high is not an A|B pair (no silent split);
    an explicit side-by-side layout still splits any even width."""
    from imagegen.data.paired import load_paired

    for i in range(2):
        Image.fromarray(np.full((16, 20), 40 * i, np.uint8)).save(tmp_path / f"photo{i}.png")  # 20×16
    with pytest.raises(DataError, match=r"photo0.png is 20x16, not an A\|B pair.*A/ and B/"):
        load_paired(tmp_path, resolution=8)
    assert len(load_paired(tmp_path, resolution=8, layout="side-by-side")) == 2


def test_paired_folders_match_names(tmp_path):
    from imagegen.data.paired import load_paired

    for side, value in (("A", 10), ("B", 200)):
        (tmp_path / side).mkdir()
        for name in ("x.png", "y.png"):
            Image.fromarray(np.full((12, 16, 3), value, np.uint8)).save(tmp_path / side / name)
    ds = load_paired(tmp_path, resolution=8)
    assert len(ds) == 2 and ds.channels == 3
    a, b, _ = ds.get_batch(torch.arange(2))
    assert float(a.mean()) < float(b.mean())
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "A" / "z.png")
    with pytest.raises(DataError, match="no partner in B/.*z.png"):
        load_paired(tmp_path, resolution=8)


def test_paired_model_trains_previews_and_gets_paired_metrics(contract_models, tmp_path):
    from imagegen.data.paired import load_paired
    from imagegen.metrics.paired import evaluate_paired, paired_scores

    pairs = write_side_by_side_digits(tmp_path / "pairs")
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(pairs), steps=60, batch_size=16, progress=False, sample_every=60, grid_size=4)
    res = Trainer("paired-l1", PairedL1.Config(lr=3e-2), cfg, run, echo=lambda s: None).fit()
    grid = np.asarray(Image.open(res.sample_grid))
    assert grid.shape[0] > grid.shape[1] / 2  # three rows: inputs, outputs, targets
    model = load_run(run)
    ds = load_paired(pairs, resolution=8)
    scores = evaluate_paired(model, ds, batch_size=16)
    identity = paired_scores(ds.get_batch(torch.arange(len(ds)))[0], ds.get_batch(torch.arange(len(ds)))[1])
    assert scores["num_images"] == 64 and 0 < scores["ssim"] <= 1
    assert scores["psnr"] > float(identity["psnr"].mean())  # learnt something beyond copying A
    with pytest.raises(ConfigError, match="not evaluated against targets"):
        evaluate_paired(_dcgan(), ds)


def _dcgan():
    from imagegen.models.dcgan import DCGAN, DCGANConfig

    return DCGAN(DCGANConfig(resolution=8, channels=1, z_dim=4, g_width=4, d_width=4))


def test_psnr_ssim_known_values():
    from imagegen.metrics.paired import paired_scores

    x = torch.rand(2, 3, 16, 16) * 2 - 1
    same = paired_scores(x, x)
    assert torch.isinf(same["psnr"]).all() and torch.allclose(same["ssim"], torch.ones(2))
    # a constant error of 2/255 in [0, 1] units after quantisation: PSNR = 20 log10(255 / 2)
    y = ((x + 1) * 127.5).round() / 127.5 - 1
    z = (y + 4 / 255).clamp(max=1 - 4 / 255)
    z = ((z + 1) * 127.5).round() / 127.5 - 1
    y = z - 4 / 255
    psnr = paired_scores(z, y)["psnr"]
    assert psnr == pytest.approx(torch.full((2,), 20 * np.log10(255 / 2)), abs=1e-3)


def test_epochs_count_lazy_phases_and_sources():
    assert batches_per_step([Phase("D"), Phase("G", needs_batch=False)]) == 1
    assert batches_per_step([Phase("D"), Phase("D"), Phase("G", needs_batch=False)]) == 2
    assert batches_per_step([Phase("D"), Phase("R1", every=16), Phase("G")]) == pytest.approx(2 + 1 / 16)
    assert batches_per_step([Phase("reg", every=4, needs_batch=False)]) == pytest.approx(0.25)


def test_list_options_parse_from_the_cli_form():
    @dataclasses.dataclass
    class C:
        channels: tuple[int, ...] = help_field((512, 256), "widths")
        names: Optional[list[str]] = help_field(None, "names")

    assert from_dict(C, {"channels": "512,256,128"}).channels == (512, 256, 128)
    assert from_dict(C, {"channels": [64]}).channels == (64,)
    assert from_dict(C, {"names": "a, b"}).names == ["a", "b"]
    with pytest.raises(ConfigError, match="channels='x' is not a valid int"):
        from_dict(C, {"channels": "64,x"})

    import click

    from imagegen.cli.options import dataclass_options

    @click.command()
    @dataclass_options(C)
    def cmd(**kw):
        click.echo(repr(from_dict(C, kw)))

    from click.testing import CliRunner

    r = CliRunner().invoke(cmd, ["--channels", "8,4"])
    assert r.exit_code == 0 and "channels=(8, 4)" in r.output
    assert "512,256" in CliRunner().invoke(cmd, ["--help"]).output


def test_import_layering():
    """`import imagegen`, sampling and evaluation do not import the training loop."""
    code = ("import sys, imagegen, imagegen.sampling, imagegen.metrics, imagegen.metrics.nll, imagegen.checkpoint;"
            "import imagegen.registry as r; r.list_models();"
            "bad = [m for m in sys.modules if m.startswith('imagegen.training')];"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_old_format_1_runs_still_load_and_resume(tmp_path):
    """A run written before the contract (format 1: one data stream, no model state) samples and
    resumes; a checkpoint from a newer format is a one-line error."""
    run = tmp_path / "run"
    cfg = TrainConfig(data="digits", steps=2, batch_size=8, progress=False, sample_every=100)
    from imagegen.models.dcgan import DCGANConfig

    small = DCGANConfig(resolution=8, z_dim=4, g_width=4, d_width=4)
    Trainer("dcgan", small, cfg, run, echo=lambda s: None).fit()
    c = ckpt.resolve_checkpoint(run)
    state = ckpt.load_trainer_state(c)
    state["data"] = [state["data"][0][""]]  # format 1 layout
    del state["model_state"]
    torch.save(state, c / "trainer_state.pt")
    meta = json.loads((c / "config.json").read_text())
    meta["format_version"] = 1
    (c / "config.json").write_text(json.dumps(meta))
    assert load_run(run).checkpoint_meta["format_version"] == 1
    res = Trainer("dcgan", None, dataclasses.replace(cfg, steps=3), run, resume=True, overrides={"steps"},
                  echo=lambda s: None).fit()
    assert res.steps == 3
    meta["format_version"] = 99
    (c / "config.json").write_text(json.dumps(meta))
    from imagegen.errors import CheckpointError

    with pytest.raises(CheckpointError, match="newer imagegen"):
        load_run(c)


def test_paired_run_evaluates_on_the_cli_and_during_training(contract_models, tmp_path, capsys):
    pairs = write_side_by_side_digits(tmp_path / "pairs")
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "paired-l1", "--data", pairs, "--steps", "4", "--batch-size", "16",
                            "--eval-every", "2", "--eval-metrics", "psnr,ssim", "--no-progress", "--out", run], capsys)
    assert code == 0, err
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(0 < r["ssim"] <= 1 for r in rows)
    code, out, err = run_cli(["evaluate", run, "--json"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    assert rec["psnr"] > 0 and "Wang et al. 2004" in rec["protocol"]["paired"]["ssim"]
    code, _, err = run_cli(["evaluate", run, "--metrics", "is"], capsys)
    assert code == 2 and "evaluated against targets" in err
    code, _, err = run_cli(["sample", run, "--out", tmp_path / "s.png"], capsys)
    assert code == 2 and "does not sample from noise" in err


def test_streamed_data_with_workers_trains_and_resumes_like_memory(tmp_path):
    """--storage stream --workers 2 feeds the same batches as the in-memory dataset, across a stop
    and resume (the workers read ahead; the stream position is what is checkpointed)."""
    from imagegen.data import build_dataset
    from imagegen.models.dcgan import DCGANConfig
    from imagegen.training.interrupt import TrainingInterrupted

    folder = tmp_path / "digits"
    ds = build_dataset("digits")
    for i in range(96):
        (folder / str(int(ds.labels[i]))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(ds.images[i, 0].numpy()).save(folder / str(int(ds.labels[i])) / f"{i:03d}.png")
    small = DCGANConfig(resolution=8, z_dim=4, g_width=4, d_width=4)

    def cfg(**kw):
        return TrainConfig(data=str(folder), steps=8, batch_size=16, progress=False, sample_every=100,
                           ckpt_every=100, ckpt_minutes=0, log_every=1, **kw)

    Trainer("dcgan", small, cfg(storage="memory"), tmp_path / "mem", echo=lambda s: None).fit()
    with pytest.raises(TrainingInterrupted):
        Trainer("dcgan", small, cfg(storage="stream", workers=2), tmp_path / "stream", echo=lambda s: None,
                should_stop=lambda step: step == 5).fit()  # mid-epoch (6 batches per epoch)
    Trainer("dcgan", None, cfg(storage="stream", workers=2), tmp_path / "stream", resume=True,
            echo=lambda s: None).fit()
    a, b = load_run(tmp_path / "mem").state_dict(), load_run(tmp_path / "stream").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nll_during_training_for_a_likelihood_model(tmp_path, capsys):
    """--eval-metrics nll goes through the contract's log_likelihood (any likelihood model), on the
    dataset's test split; a model without a likelihood gets a one-line error."""
    run = tmp_path / "vae"
    code, _, err = run_cli(["train", "vae", "--data", "digits", "--resolution", "8", "--z-dim", "4", "--width", "8",
                            "--hidden", "16", "--steps", "4", "--batch-size", "16", "--eval-every", "2",
                            "--eval-metrics", "nll", "--eval-samples", "50", "--eval-nll-k", "4", "--no-progress",
                            "--out", run], capsys)
    assert code == 0, err
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert all(r["nll"] > 0 and r["nll_bpd"] == pytest.approx(r["nll"] / (64 * np.log(2))) for r in rows)
    assert rows[0]["protocol"]["images"].startswith("50 evenly spaced of digits (test")
    assert rows[0]["protocol"]["k"] == 4  # a latent-variable model: importance samples, not "exact"
    assert rows[0]["neg_elbo"] >= rows[0]["nll"] - 1e-6
    code, _, err = run_cli(["train", "dcgan", "--data", "digits", "--resolution", "8", "--steps", "2",
                            "--eval-every", "1", "--eval-metrics", "nll", "--no-progress", "--out", tmp_path / "d"],
                           capsys)
    assert code == 2 and "needs a likelihood model" in err
    assert not (tmp_path / "d").exists()  # rejected before the run directory is created
