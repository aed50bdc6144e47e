"""CycleGAN (Zhu et al. 2017) and its building blocks: the cycle and identity losses (Eq. 2, §5.2) on a
constructed case, the LSGAN weighting, the history pool (probability ½, exact resume), the 70×70
PatchGAN, translation at any size that is a multiple of 4, the learning-rate schedule, and a CLI run
on tiny folders. Tiny widths and sizes only."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import run_cli
from imagegen.errors import ConfigError
from imagegen.models.base import StepContext
from imagegen.models.cyclegan import CycleGAN, CycleGANConfig
from imagegen.nn.image2image import (ImagePool, PatchDiscriminator, constant_then_linear_decay, decay_schedules,
                                     patch_output_size, random_jitter, receptive_field, translation_gan_losses)
from imagegen.sampling import load_run

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(resolution=16, channels=3, g_width=4, g_blocks=1, d_width=4, d_layers=2)


def tiny(**kw) -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(CycleGANConfig(**{**TINY, **kw}))


class Affine(nn.Module):
    """x ↦ scale·x + shift: a generator whose outputs are known."""

    def __init__(self, scale: float, shift: float) -> None:
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x):
        return self.scale * x + self.shift


class MeanPatch(nn.Module):
    """A 'discriminator' whose single patch output is the image's mean."""

    def forward(self, x):
        return x.mean(dim=(1, 2, 3), keepdim=True)


def constructed_model(**kw) -> CycleGAN:
    model = tiny(jitter=False, pool_size=0, **kw)
    model.G_AB, model.G_BA = Affine(0.5, 0.0), Affine(1.0, 0.25)
    model.D_A, model.D_B = MeanPatch(), MeanPatch()
    return model


def test_cycle_identity_and_adversarial_terms_on_a_constructed_case():
    a, b = torch.full((2, 3, 16, 16), 0.6), torch.full((2, 3, 16, 16), -0.2)
    out = constructed_model().training_step("G", {"A": a, "B": b})
    # G_AB(a) = 0.3, G_BA(0.3) = 0.55: |0.55 − 0.6|; G_BA(b) = 0.05, G_AB(0.05) = 0.025: |0.025 + 0.2|
    expected = {"cycle_A": 0.05, "cycle_B": 0.225,
                "idt_A": 0.25,   # |G_BA(a) − a| = 0.25
                "idt_B": 0.1,    # |G_AB(b) − b| = |−0.1 + 0.2|
                "adv_AB": 0.49,  # (D_B(G_AB(a)) − 1)² = (0.3 − 1)², not halved
                "adv_BA": 0.9025}  # (0.05 − 1)²
    for k, v in expected.items():
        assert out[k].item() == pytest.approx(v, abs=1e-6), k
    # Eq. 3 with λ = 10 plus the identity term at 0.5·λ
    assert out["loss"].item() == pytest.approx(0.49 + 0.9025 + 10 * (0.05 + 0.225) + 5 * (0.25 + 0.1), abs=1e-5)
    model = constructed_model()
    model.training_step("G", {"A": a, "B": b})
    d = model.training_step("D", {"A": a, "B": b})
    # ½[(D_A(a) − 1)² + D_A(G_BA(b))²] = ½[0.16 + 0.0025]; ½[(−0.2 − 1)² + 0.3²] = ½[1.44 + 0.09]
    assert d["loss_A"].item() == pytest.approx(0.08125, abs=1e-6)
    assert d["loss_B"].item() == pytest.approx(0.765, abs=1e-6)
    assert d["loss"].item() == pytest.approx(0.84625, abs=1e-6)
    no_idt = constructed_model(lambda_identity=0.0).training_step("G", {"A": a, "B": b})
    assert no_idt["idt_A"].item() == 0 and no_idt["loss"].item() == pytest.approx(0.49 + 0.9025 + 2.75, abs=1e-5)
    with pytest.raises(RuntimeError, match="after phase G"):
        constructed_model().training_step("D", {"A": a, "B": b})


def test_gan_losses_use_the_papers_weighting():
    d_ls, g_ls = translation_gan_losses("lsgan")
    assert d_ls(torch.zeros(4), torch.ones(4)).item() == pytest.approx(1.0)  # ½(1 + 1)
    assert g_ls(torch.zeros(4)).item() == pytest.approx(1.0)  # (0 − 1)², not halved
    d_bce, g_bce = translation_gan_losses("nonsaturating")
    assert d_bce(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(np.log(2))  # ½(log 2 + log 2)
    assert g_bce(torch.zeros(4)).item() == pytest.approx(np.log(2))
    with pytest.raises(ConfigError):
        translation_gan_losses("hinge")


# ---- the history pool ---------------------------------------------------------------------------------
def ids(x: torch.Tensor) -> list[int]:
    return x[:, 0, 0, 0].long().tolist()


def test_pool_fills_then_swaps_with_probability_one_half():
    torch.manual_seed(0)
    size, n = 10, 4000
    pool = ImagePool(size)
    first = pool.query(torch.arange(size).float()[:, None, None, None].expand(size, 1, 2, 2))
    assert ids(first) == list(range(size)) and len(pool) == size  # stored and returned as they are
    returned_old, seen = [], set(range(size))
    for start in range(size, size + n, 8):  # batches of 8 new images, ids start…start+7
        new = torch.arange(start, start + 8).float()[:, None, None, None].expand(8, 1, 2, 2)
        out = ids(pool.query(new))
        for i, got in zip(range(start, start + 8), out):
            if got != i:
                assert got in seen and got < i  # an earlier image from the pool …
                returned_old.append(got)
            seen.add(i)
    assert len(set(returned_old)) == len(returned_old)  # … swapped out: never returned twice
    frac = len(returned_old) / n
    assert abs(frac - 0.5) < 0.03, frac  # 4000 draws: σ ≈ 0.008
    assert len(pool) == size and len(set(ids(torch.stack(pool.images)))) == size


def test_pool_state_resumes_exactly_and_size_zero_is_off():
    torch.manual_seed(1)
    pool = ImagePool(5)
    for _ in range(4):
        pool.query(torch.randn(3, 2, 4, 4))
    state = pool.state()
    assert set(state) == {"images"} and state["images"].shape == (5, 2, 4, 4)
    copy = ImagePool(5)
    copy.load_state({k: v.clone() for k, v in state.items()})
    rng = torch.get_rng_state()
    batches = [torch.randn(3, 2, 4, 4) for _ in range(5)]
    torch.set_rng_state(rng)
    a = [pool.query(x) for x in batches]
    torch.set_rng_state(rng)
    b = [copy.query(x) for x in batches]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert any(not torch.equal(x, y) for x, y in zip(a, batches))  # the pool did swap
    empty = ImagePool(3)
    assert empty.state()["images"].numel() == 0
    empty.load_state(empty.state())
    assert len(empty) == 0
    off, x = ImagePool(0), torch.randn(2, 1, 4, 4)
    rng = torch.get_rng_state()
    assert torch.equal(off.query(x), x) and torch.equal(torch.get_rng_state(), rng)
    with pytest.raises(ConfigError):
        ImagePool(-1)


def test_model_pools_are_training_state():
    model = tiny(pool_size=3)
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    model.training_step("G", {"A": a, "B": b})
    model.training_step("D", {"A": a, "B": b})
    state = model.training_state()
    assert state["pool_A"]["images"].shape == (2, 3, 16, 16) and state["pool_B"]["images"].shape == (2, 3, 16, 16)
    other = tiny(pool_size=3)
    other.load_training_state(state)
    assert torch.equal(other.pool_B.state()["images"], state["pool_B"]["images"])


# ---- PatchGAN -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_layers, field", [(3, 70), (2, 34), (1, 16)])
def test_patchgan_receptive_field_by_formula_and_by_gradients(n_layers, field):
    assert receptive_field(n_layers) == field
    torch.manual_seed(0)
    D = PatchDiscriminator(1, width=2, n_layers=n_layers, norm="none").double()
    x = torch.randn(1, 1, 160, 160, dtype=torch.float64, requires_grad=True)
    out = D(x)
    h = patch_output_size(160, n_layers)
    assert out.shape == (1, 1, h, h)
    out[0, 0, h // 2, h // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert rows.min() > 0 and rows.max() < 159  # the whole field lies inside the image
    assert rows.max() - rows.min() + 1 == field and cols.max() - cols.min() + 1 == field


def test_discriminators_are_70x70_patchgans_with_instance_norm():
    model = tiny(d_layers=3, resolution=64)
    assert model.D_A.n_layers == 3 and receptive_field(model.D_A.n_layers) == 70
    assert any(isinstance(m, nn.InstanceNorm2d) for m in model.D_A.modules())
    assert model.D_B(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 6, 6)


# ---- use ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(16, 16), (24, 40), (8, 12)])
def test_translation_keeps_the_input_size_in_both_directions(size):
    model = tiny().train()
    img = torch.rand(2, 3, *size) * 2 - 1
    for direction in ("AB", "BA"):
        out = model.translate(img, direction)
        assert out.shape == img.shape and out.min() >= -1 and out.max() <= 1
    assert model.training and model.size_multiple == 4


def test_translate_rejects_bad_directions_sizes_and_channels():
    model = tiny()
    img = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ConfigError, match="AB and BA only"):
        model.translate(img, "BB")
    for bad in (torch.zeros(1, 3, 18, 16), torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 16, 16)):
        with pytest.raises(ConfigError):
            model.translate(bad, "AB")
    with pytest.raises(ConfigError):
        model.sample(2)


def test_predict_and_preview():
    model = tiny().train()
    a, b = torch.rand(5, 3, 16, 16) * 2 - 1, torch.rand(5, 3, 16, 16) * 2 - 1
    assert torch.equal(model.predict({"A": a, "B": b}), model.translate(a, "AB"))
    grid, nrow = model.preview({"A": a, "B": b}, torch.Generator(), 12)
    assert nrow == 6 and grid.shape == (12, 3, 16, 16) and model.training
    assert torch.equal(grid[0], a[0]) and torch.equal(grid[3], b[0]) and torch.equal(grid[6], a[1])
    torch.testing.assert_close(grid[2], model.translate(model.translate(a[:1], "AB"), "BA")[0])  # G_BA(G_AB(A))


def test_config_defaults_and_errors():
    cfg = CycleGANConfig()
    assert (cfg.lambda_cycle, cfg.lambda_identity, cfg.pool_size, cfg.lr, cfg.beta1) == (10.0, 0.5, 50, 2e-4, 0.5)
    assert (cfg.g_width, cfg.d_width, cfg.d_layers, cfg.g_blocks) == (64, 64, 3, 9)  # 256×256: 9 blocks
    assert CycleGANConfig(resolution=128).g_blocks == 6
    assert cfg.jitter and cfg.jitter_scale * 256 == 286
    for bad in (dict(resolution=30), dict(resolution=16), dict(channels=2), dict(g_blocks=0), dict(pool_size=-1),
                dict(decay_start=1.5), dict(lambda_cycle=-1.0), dict(jitter_scale=0.9)):
        with pytest.raises(ConfigError):
            CycleGANConfig(**bad)


def test_lr_is_constant_then_decays_linearly_to_zero():
    def at(fn, step, total=100):
        return fn(StepContext(step, total, 0))

    half = constant_then_linear_decay(0.5)
    assert [at(half, s) for s in (0, 25, 50)] == [1.0, 1.0, 1.0]
    assert at(half, 75) == pytest.approx(0.5) and at(half, 99) == pytest.approx(0.02) and at(half, 100) == 0.0
    assert at(half, 60, total=200) == 1.0  # a longer run moves the start of the decay
    assert at(constant_then_linear_decay(0.0), 50) == pytest.approx(0.5)
    assert at(constant_then_linear_decay(1.0), 99) == 1.0
    # the models' schedules: one per optimiser, none at all for a constant rate (so --minutes alone works)
    assert set(decay_schedules(0.5)) == {"G", "D"} and decay_schedules(1.0) == {}
    model = tiny(decay_start=0.8)
    schedules = model.lr_schedules()
    assert set(schedules) == {"G", "D"} and at(schedules["D"], 90) == pytest.approx(0.5)


def test_jitter_crops_at_random_and_keeps_the_size():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 16 * 16).reshape(1, 1, 16, 16).repeat(8, 1, 1, 1)
    out = random_jitter(x, 286 / 256)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert len({tuple(o.flatten()[:3].tolist()) for o in out}) > 2  # different offsets / flips per image
    torch.manual_seed(0)
    assert torch.equal(random_jitter(x, 286 / 256), out)  # torch's global RNG decides


# ---- CLI --------------------------------------------------------------------------------------------------
def write_pngs(folder, n: int, size: tuple[int, int], mode: str, seed: int):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")
    return folder


def test_cli_trains_unpaired_folders_and_the_run_translates(tmp_path, capsys):
    a = write_pngs(tmp_path / "horses", 6, (16, 16), "RGB", 0)
    b = write_pngs(tmp_path / "zebras", 4, (20, 20), "L", 1)  # greyscale: converted to domain A's 3 channels
    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data-a", a, "--data-b", b, "--resolution", "16", "--g-width", "4",
            "--g-blocks", "1", "--d-width", "4", "--d-layers", "2", "--pool-size", "3", "--steps", "4",
            "--batch-size", "2", "--log-every", "1", "--grid-size", "6", "--threads", "1", "--no-progress",
            "--out", run]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    meta = json.loads((run / "config.json").read_text())
    assert meta["model_config"]["channels"] == 3 and meta["sources"]["b"]["channels"] == 3
    rows = [json.loads(line) for line in (run / "logs" / "scalars.jsonl").read_text().splitlines()]
    assert {"G/cycle_A", "G/idt_B", "G/adv_AB", "D/loss_A", "D/d_fake_B"} <= set(rows[-1])
    assert [r["lr/G"] for r in rows] == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4])  # decay from step 2 of 4
    model = load_run(run)
    assert isinstance(model, CycleGAN) and model.config.channels == 3
    assert model.translate(torch.zeros(1, 3, 20, 28), "BA").shape == (1, 3, 20, 28)
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli([*args[:5], tmp_path / "empty", *args[6:-1], tmp_path / "run2"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "empty" in err, err


def test_cli_trains_one_image_per_step_by_default_as_the_reference(tmp_path, capsys):
    a = write_pngs(tmp_path / "a", 3, (16, 16), "RGB", 0)
    b = write_pngs(tmp_path / "b", 3, (16, 16), "RGB", 1)
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "cyclegan", "--data-a", a, "--data-b", b, "--resolution", "16",
                              "--g-width", "4", "--g-blocks", "1", "--d-width", "4", "--d-layers", "2",
                              "--steps", "1", "--threads", "1", "--no-progress", "--out", run], capsys)
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["train_config"]["batch_size"] == 1
    code, out, _ = run_cli(["train", "cyclegan", "--help"], capsys)
    assert code == 0 and "[default: 1]" in " ".join(out.split("--batch-size")[1].split()[:12])
    code, out, _ = run_cli(["train", "dcgan", "--help"], capsys)  # other models keep the trainer's 64
    assert code == 0 and "[default: 64]" in " ".join(out.split("--batch-size")[1].split()[:12])


# ---- semantic consistency (CyCADA) ---------------------------------------------------------------------
def saved_classifier(directory, seed: int = 0):
    from imagegen.metrics.classifier import ClassifierConfig, DatasetClassifier

    torch.manual_seed(seed)
    f = DatasetClassifier(ClassifierConfig(channels=3, num_classes=4, widths=(4, 4, 4, 8), input_size=16))
    f.save(directory)
    return f.eval()


def test_semantic_loss_is_cycadas_cross_entropy_to_the_fixed_classifiers_labels(tmp_path):
    f = saved_classifier(tmp_path / "f_S")
    cfg = CycleGANConfig(**TINY, semantic_weight=2.0, semantic_classifier=str(tmp_path / "f_S"))
    assert cfg.semantic_classifier_sha256 == f.weights_hash
    assert cfg.semantic_classifier == str((tmp_path / "f_S").resolve())
    torch.manual_seed(1)
    a, b = torch.rand(3, 3, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16) * 2 - 1
    plain = constructed_model().training_step("G", {"A": a, "B": b})
    model = constructed_model(semantic_weight=2.0, semantic_classifier=str(tmp_path / "f_S"))
    out = model.training_step("G", {"A": a, "B": b})
    with torch.no_grad():
        sem_AB = torch.nn.functional.cross_entropy(f(0.5 * a)[1], f(a)[1].argmax(1))  # G_AB = 0.5·x
        sem_BA = torch.nn.functional.cross_entropy(f(b + 0.25)[1], f(b)[1].argmax(1))  # G_BA = x + 0.25
    assert out["sem_AB"].item() == pytest.approx(sem_AB.item(), rel=1e-5)
    assert out["sem_BA"].item() == pytest.approx(sem_BA.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(plain["loss"].item() + 2.0 * (sem_AB + sem_BA).item(), rel=1e-5)
    # f_S is fixed and not a weight of the run; its gradient reaches the generators
    real = tiny(jitter=False, semantic_weight=1.0, semantic_classifier=str(tmp_path / "f_S"))
    real.semantic_losses(a, b, real.G_BA(b), real.G_AB(a))["sem_AB"].backward()
    assert all(p.grad is None for p in real.semantic_classifier().parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in real.G_AB.parameters())
    assert not any(k.startswith("_f_S") or "trunk" in k for k in real.state_dict())


def test_semantic_options_errors(tmp_path):
    with pytest.raises(ConfigError, match="--semantic-classifier"):
        CycleGANConfig(**TINY, semantic_weight=1.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no dataset classifier"):
        CycleGANConfig(**TINY, semantic_weight=1.0, semantic_classifier=str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="≥ 0"):
        CycleGANConfig(**TINY, semantic_weight=-1.0)
    saved_classifier(tmp_path / "f_S")
    model = tiny(semantic_weight=1.0, semantic_classifier=str(tmp_path / "f_S"))
    saved_classifier(tmp_path / "f_S", seed=1)  # replaced after the run started: refused
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ConfigError, match="this run trained with"):
        model.training_step("G", {"A": x, "B": x})


def test_cli_semantic_run_records_the_classifier_and_translates_without_it(tmp_path, capsys):
    a = write_pngs(tmp_path / "a", 3, (16, 16), "RGB", 0)
    b = write_pngs(tmp_path / "b", 3, (16, 16), "RGB", 1)
    f = saved_classifier(tmp_path / "f_S")
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "cyclegan", "--data-a", a, "--data-b", b, "--resolution", "16", "--g-width", "4",
                            "--g-blocks", "1", "--d-width", "4", "--d-layers", "2", "--steps", "2", "--log-every", "1",
                            "--semantic-weight", "1", "--semantic-classifier", tmp_path / "f_S", "--threads", "1",
                            "--no-progress", "--out", run], capsys)
    assert code == 0, err
    mc = json.loads((run / "config.json").read_text())["model_config"]
    assert mc["semantic_classifier_sha256"] == f.weights_hash and mc["semantic_weight"] == 1.0
    rows = [json.loads(line) for line in (run / "logs" / "scalars.jsonl").read_text().splitlines()]
    assert {"G/sem_AB", "G/sem_BA"} <= set(rows[-1])
    (tmp_path / "f_S").rename(tmp_path / "gone")
    assert load_run(run).translate(torch.zeros(1, 3, 16, 16), "AB").shape == (1, 3, 16, 16)
    code, _, err = run_cli(["train", "cyclegan", "--resume", run, "--steps", "3", "--no-progress"], capsys)
    assert code == 2 and "semantic classifier" in err and len(err.strip().splitlines()) == 1, err
