"""The shared model test suite: every registered model runs through the same checks with a tiny config.

Checks: construction and determinism of the initial weights, one training step of every phase
(finite scalar losses, every optimiser changes its weights, deterministic under a seed), sampling
(shape, dtype, range [-1, 1], reproducible under a seed, training mode restored), the latent and
encoder APIs where a model has them, conditional sampling that honours each item's label, a
save/load round trip through the checkpoint functions and ``load_run``, and a two-step run of the
real :class:`~imagegen.training.Trainer` on the bundled ``digits`` data followed by an exact resume.

A new model needs one entry in :data:`TINY_CONFIGS` (a config small enough that the whole suite
stays fast); the suite fails with a message naming the model otherwise.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from imagegen.errors import ConfigError, ImagegenError
from imagegen.models.base import StepContext
from imagegen.registry import get_model_class, list_models
from imagegen.sampling import generate, load_run
from imagegen.training import TrainConfig, Trainer
from imagegen import checkpoint as ckpt

#: per model: config overrides small enough for a sub-second CPU test (resolution 8 = native digits)
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "adain": dict(resolution=16, encoder="random", encoder_widths=(4, 8, 8, 8, 8)),
    "dcgan": dict(resolution=8, z_dim=8, g_width=8, d_width=8),
    "cgan": dict(resolution=8, z_dim=8, g_width=8, d_width=8, augment="diffaugment"),
    "vae": dict(resolution=8, z_dim=4, width=8, hidden=16),
    "cvae": dict(resolution=8, z_dim=4, width=8, hidden=16),
    "aae": dict(resolution=8, z_dim=4, width=8, hidden=16, d_hidden=16),
    "pixelcnn": dict(resolution=8, width=8, num_layers=2, head_hidden=4, num_mixtures=2, conditional=True,
                     distribution="logistic_mixture"),
    "pixelrnn": dict(resolution=8, width=4, num_layers=2, head_hidden=4, num_mixtures=2, conditional=True,
                     distribution="logistic_mixture"),
    # ADA adjusting p each step and DiffAugment's pairs: both must resume exactly
    "cyclegan": dict(resolution=16, g_width=4, g_blocks=1, d_width=4, d_layers=2, augment="ada", ada_interval=1,
                     ada_kimg=0.01),
    "pix2pix": dict(resolution=16, g_width=4, d_width=4, d_layers=2, dropout_layers=2, augment="diffaugment"),
    "dncnn": dict(resolution=8, depth=3, width=4),
    "srresnet": dict(resolution=8, scale=2, width=4, num_blocks=1, adv_weight=1e-3, d_width=4, d_layers=1,
                     augment="diffaugment"),
    "context-encoder": dict(resolution=8, width=4, num_down=2, num_blocks=1, d_width=4, d_layers=1, augment="ada",
                            ada_interval=1, ada_kimg=0.01),
    # grows 4 → 8 within the suite's few steps (10 images per stage), so resume is checked mid-growth
    "progan": dict(resolution=8, z_dim=8, channel_base=32, channel_max=8, mbstd_group=2, fade_kimg=0.01,
                   stable_kimg=0.01, augment="ada", ada_interval=1, ada_kimg=0.01),
    "stylegan": dict(resolution=8, z_dim=8, w_dim=8, mapping_layers=2, channel_base=32, channel_max=8,
                     mbstd_group=2, r1_interval=2, augment="diffaugment"),
    # every phase on every step (R1, path length), ADA adjusting p each step: all of it must resume exactly
    "stylegan2": dict(resolution=8, conditional=True, z_dim=8, w_dim=8, mapping_layers=2, channel_base=32,
                      channel_max=8, mbstd_group=2, r1_interval=1, pl_interval=1, augment="ada", ada_interval=1,
                      ada_kimg=0.01),
}
NUM_CLASSES = 3
MODELS = list_models()


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def tiny_config(name: str, channels: int = 1) -> Any:
    """The tiny config of model ``name`` with ``channels`` (and NUM_CLASSES classes if conditional)."""
    if name not in TINY_CONFIGS:
        pytest.fail(f"model {name!r} has no entry in TINY_CONFIGS of tests/test_models.py; add a config "
                    "small enough for a sub-second CPU test")
    cls = get_model_class(name)
    kwargs = dict(TINY_CONFIGS[name], channels=channels)
    if "num_classes" in _fields(cls.Config):
        kwargs["num_classes"] = NUM_CLASSES
    return cls.Config(**kwargs)


def build(name: str, seed: int = 0, channels: int = 1):
    torch.manual_seed(seed)
    return get_model_class(name)(tiny_config(name, channels))


def batch(model, n: int = 4, seed: int = 1) -> dict[str, torch.Tensor]:
    """A synthetic batch for every field of the model's data sources: 8-bit images on the [-1, 1]
    grid and labels (class indices or -1)."""
    g = torch.Generator().manual_seed(seed)
    c, r = model.config.channels, model.config.resolution
    out = {}
    for src in model.data_sources():
        for key in (src.image_key, src.target_key):
            if key:
                out[key] = torch.randint(0, 256, (n, c, r, r), generator=g).float() / 127.5 - 1
        if src.label_key:
            out[src.label_key] = (torch.randint(0, NUM_CLASSES, (n,), generator=g) if model.num_classes
                                  else torch.full((n,), -1))
    return out


def train_step(model, batch: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """One step of every phase, as the Trainer runs it (per-phase requires_grad, zero, backward, step)."""
    optimizers = model.configure_optimizers()
    params = {n: [p for g in o.param_groups for p in g["params"]] for n, o in optimizers.items()}
    outs = {}
    model.train()
    for ph in model.phases():
        for p in model.parameters():
            p.requires_grad_(False)
        for p in params[ph.optimizer_name]:
            p.requires_grad_(True)
        opt = optimizers[ph.optimizer_name]
        opt.zero_grad(set_to_none=True)
        out = model(ph.name, batch)
        out["loss"].backward()
        opt.step()
        outs[ph.name] = out
    model.after_step(StepContext(1, 1, len(next(iter(batch.values())))))
    return outs


def sample_labels(model, n: int) -> torch.Tensor | None:
    return torch.arange(n) % model.num_classes if model.num_classes else None


# ---- construction -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_config_and_init_are_deterministic(name):
    a, b = build(name, seed=3), build(name, seed=3)
    assert {"resolution", "channels"} <= _fields(type(a.config))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = build(name, seed=4)
    assert any(not torch.equal(sa[k], v) for k, v in c.state_dict().items())


# ---- training -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_changes_every_optimisers_weights(name):
    model = build(name)
    optimizers = model.configure_optimizers()
    phases = model.phases()
    assert phases and all(ph.optimizer_name in optimizers for ph in phases)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    outs = train_step(model, batch(model))
    for ph_name, out in outs.items():
        assert out["loss"].ndim == 0 and torch.isfinite(out["loss"]), (ph_name, out["loss"])
        assert all(v.numel() == 1 and torch.isfinite(v) for v in out.values()), (ph_name, out)
    after = model.state_dict()
    for opt_name, opt in optimizers.items():
        names = {id(p) for g in opt.param_groups for p in g["params"]}
        changed = [k for k, p in model.named_parameters() if id(p) in names and not torch.equal(before[k], after[k])]
        assert changed, f"{name}: optimiser {opt_name} changed no weights in one step"


@pytest.mark.parametrize("name", MODELS)
def test_training_step_is_deterministic_under_a_seed(name):
    results = []
    for _ in range(2):
        model = build(name, seed=5)
        b = batch(model)
        torch.manual_seed(6)
        train_step(model, b)
        results.append(model.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


# ---- sampling -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", MODELS)
def test_sample_shape_range_and_seed(name, channels):
    model = build(name, channels=channels)
    model.train()  # the trainer samples mid-training; sampling must not leave eval mode behind
    n, r = 5, model.config.resolution
    if not model.can_sample:  # a model that transforms inputs: noise sampling is a clear error
        with pytest.raises(ConfigError):
            model.sample(2)
        out = model.predict(batch(model, n=2))
        assert model.training
        assert out.shape == (2, channels, r, r) and torch.isfinite(out).all() and out.min() >= -1 and out.max() <= 1
        return
    labels = sample_labels(model, n)
    s1 = model.sample(n, generator=torch.Generator().manual_seed(0), labels=labels)
    s2 = model.sample(n, generator=torch.Generator().manual_seed(0), labels=labels)
    s3 = model.sample(n, generator=torch.Generator().manual_seed(1), labels=labels)
    assert model.training
    assert s1.shape == (n, channels, r, r) and s1.dtype == torch.float32
    assert torch.isfinite(s1).all() and s1.min() >= -1 and s1.max() <= 1
    assert torch.equal(s1, s2)
    assert not torch.equal(s1, s3)
    # the library entry point: labels drawn from the seed when not given
    g = generate(model, 3, seed=0)
    assert g.shape == (3, channels, r, r) and torch.equal(g, generate(model, 3, seed=0))


@pytest.mark.parametrize("name", MODELS)
def test_latent_api(name):
    model = build(name)
    if not model.has_latents:
        with pytest.raises(ConfigError):
            model.sample_latents(2)
        return
    labels = sample_labels(model, 4)
    z = model.sample_latents(4, torch.Generator().manual_seed(2))
    assert z.shape[0] == 4 and z.dtype == torch.float32
    img = model.generate(z, labels)
    assert img.shape == (4, model.config.channels, model.config.resolution, model.config.resolution)
    # sample(seed) == generate(sample_latents(seed)): interpolation endpoints are the seeds' samples
    assert torch.equal(img, model.sample(4, torch.Generator().manual_seed(2), labels=labels))


@pytest.mark.parametrize("name", MODELS)
def test_encoder_api(name):
    model = build(name)
    b = batch(model)
    img = b[model.data_sources()[0].image_key]
    labels = b["label"] if model.num_classes else None
    if not model.has_encoder:
        with pytest.raises(ConfigError):
            model.encode(img, labels)
        return
    train_step(model, b)
    model.train()
    z = model.encode(img, labels)
    assert model.training
    assert z.shape == model.sample_latents(len(img)).shape
    recon = model.decode(z, labels)
    assert recon.shape == img.shape and recon.min() >= -1 and recon.max() <= 1
    with pytest.raises(ConfigError):
        model.encode(img[:, :, :-2], labels)  # wrong size: a clear error, not a shape crash


@pytest.mark.parametrize("name", [m for m in MODELS if "num_classes" in _fields(get_model_class(m).Config)])
def test_conditional_sampling_honours_each_label(name):
    """Changing the label of item j (same latents) changes item j and nothing else."""
    model = build(name)
    with torch.no_grad():  # move away from initialisations that are label-symmetric (CBN γ = 1, β = 0)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    n = 6
    base = torch.tensor([0, 1, 2, 0, 1, 2])
    out = model.sample(n, torch.Generator().manual_seed(0), labels=base)
    for j in range(n):
        lab = base.clone()
        lab[j] = (lab[j] + 1) % NUM_CLASSES
        other = model.sample(n, torch.Generator().manual_seed(0), labels=lab)
        diff = (other - out).flatten(1).abs().amax(1)
        assert diff[j] > 1e-4, f"{name}: changing item {j}'s label did not change it"
        assert torch.all(diff[torch.arange(n) != j] == 0), f"{name}: a label leaked into other items"
    with pytest.raises(ImagegenError):
        generate(model, 2, labels=torch.tensor([0, NUM_CLASSES]))


# ---- checkpoints -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name, tmp_path):
    model = build(name)
    train_step(model, batch(model))  # non-trivial running statistics, EMA and power-iteration state
    model.eval()
    path = ckpt.save_checkpoint(tmp_path, "step-0000001", model, ckpt.checkpoint_meta(name, model.config), {"step": 1})
    loaded = load_run(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    sd, ld = model.state_dict(), loaded.state_dict()
    assert sd.keys() == ld.keys() and all(torch.equal(sd[k], ld[k]) for k in sd)
    if model.can_sample:
        labels = sample_labels(model, 4)
        assert torch.equal(model.sample(4, torch.Generator().manual_seed(0), labels=labels),
                           loaded.sample(4, torch.Generator().manual_seed(0), labels=labels))
    else:  # a model that transforms inputs: the same outputs for the same inputs
        b = batch(model)
        assert torch.equal(model.predict(b), loaded.predict(b))
    assert path == ckpt.resolve_checkpoint(tmp_path)


def source_options(model_cls, tmp_path) -> dict[str, Any]:
    """Train options giving every data source of a model the bundled digits (paired sources: digits
    beside their negatives, written side by side)."""
    opts: dict[str, Any] = {"data": "digits", "sources": {}}
    for src in model_cls.data_sources():
        data = "digits"
        if src.kind == "paired":
            data = str(write_side_by_side_digits(tmp_path / "pairs"))
        if src.name:
            opts["sources"][src.name] = {"data": data}
        else:
            opts["data"] = data
    return opts


def write_side_by_side_digits(folder, n: int = 64):
    """``n`` 16×8 PNGs: a digit (A, left) beside its negative (B, right)."""
    import numpy as np
    from PIL import Image

    from imagegen.data import build_dataset

    if folder.exists():
        return folder
    folder.mkdir(parents=True)
    imgs = build_dataset("digits").images[:n, 0].numpy()  # [n, 8, 8] uint8
    for i, x in enumerate(imgs):
        Image.fromarray(np.concatenate([x, 255 - x], 1)).save(folder / f"{i:03d}.png")
    return folder


def tiny_train_config(model_cls, tmp_path, steps: int, **kw) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=8, progress=False, grid_size=4, sample_every=100, ckpt_every=100,
                       ckpt_minutes=0, log_every=2, channels_last=False, flip=True,
                       **source_options(model_cls, tmp_path), **kw)


def trainable_config(name: str) -> Any:
    """The tiny config with channels (and classes) left for the trainer to fill from the data."""
    cfg = tiny_config(name)
    return dataclasses.replace(cfg, channels=None, **({"num_classes": None} if "num_classes" in _fields(type(cfg)) else {}))


def assert_exact_resume(name: str, tmp_path, steps: int = 6, stop_at: int = 3) -> None:
    """Run ``name`` for ``steps`` steps uninterrupted; run it again, stopped after ``stop_at`` steps as by
    SIGTERM (checkpoint, TrainingInterrupted), resumed by a new Trainer; assert that weights, optimiser
    states, the model's training state and every logged scalar are identical."""
    import json

    from imagegen.training.interrupt import TrainingInterrupted

    cls = get_model_class(name)
    ref, run = tmp_path / "ref", tmp_path / "stopped"
    Trainer(name, trainable_config(name), tiny_train_config(cls, tmp_path, steps), ref, echo=lambda s: None).fit()
    with pytest.raises(TrainingInterrupted) as info:
        Trainer(name, trainable_config(name), tiny_train_config(cls, tmp_path, steps), run, echo=lambda s: None,
                should_stop=lambda step: step == stop_at).fit()
    assert info.value.exit_code == 143 and f"step {stop_at}" in str(info.value)
    assert ckpt.resolve_checkpoint(run).name == f"step-{stop_at:07d}"
    res = Trainer(name, None, tiny_train_config(cls, tmp_path, steps), run, resume=True,
                  echo=lambda s: None).fit()
    assert res.steps == steps
    a, b = ckpt.resolve_checkpoint(ref), ckpt.resolve_checkpoint(run)
    wa, wb = load_run(a).state_dict(), load_run(b).state_dict()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{name}: weight {k} differs after stop and resume"
    sa, sb = ckpt.load_trainer_state(a), ckpt.load_trainer_state(b)
    assert sa["images_seen"] == sb["images_seen"]
    torch.testing.assert_close(sa["model_state"], sb["model_state"], rtol=0, atol=0,
                               msg=lambda m: f"{name}: training state differs after resume: {m}")
    torch.testing.assert_close(sa["optimizers"], sb["optimizers"], rtol=0, atol=0)

    def scalars(r):
        rows = [json.loads(line) for line in (r / "logs" / "scalars.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if k != "images_per_sec" and not k.endswith("grad_norm")} for row in rows]

    assert scalars(ref) == scalars(run), f"{name}: logged losses differ after stop and resume"


@pytest.mark.parametrize("name", MODELS)
def test_every_model_resumes_exactly_after_a_stop(name, tmp_path):
    """The contract's resume guarantee for every registered model: a model that keeps training state
    outside its weights and forgets to declare it (training_state/load_training_state) fails here."""
    assert_exact_resume(name, tmp_path)
    model = load_run(tmp_path / "stopped")
    if model.num_classes:
        assert model.num_classes == 10  # filled from the labelled dataset
    assert (tmp_path / "stopped" / "samples" / "step-0000003.png").is_file()  # the stop wrote a preview too
