"""AdaIN style transfer (Huang & Belongie 2017): the AdaIN layer, the use-time controls, training, the
checkpoint's encoder handling and ``imagegen stylize --method adain``. Tiny random encoders only."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imagegen import checkpoint as ckpt
from imagegen.cli import main
from imagegen.errors import ConfigError
from imagegen.models.adain import AdaIN, AdaINConfig, adain, mean_std
from imagegen.sampling import load_run
from imagegen.style import stylize_adain
from imagegen.style.adain import EPS

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors in Python loops (conftest.py)


TINY = dict(resolution=16, channels=3, encoder="random", encoder_widths=(4, 8, 8, 8, 8))


def tiny_model(seed: int = 0, **kw) -> AdaIN:
    torch.manual_seed(seed)
    return AdaIN(AdaINConfig(**{**TINY, **kw})).eval()


def images(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_adain_gives_the_style_statistics_exactly():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 6, 7, generator=g) * 3 + 1
    y = torch.randn(2, 5, 4, 9, generator=g) * 0.5 - 2
    out = adain(x, y, eps=0.0)
    mo, so = mean_std(out, eps=0.0)
    my, sy = mean_std(y, eps=0.0)
    torch.testing.assert_close(mo, my, rtol=0, atol=1e-5)
    torch.testing.assert_close(so, sy, rtol=1e-5, atol=1e-6)
    # with the default ε = 1e-5 the std is sqrt(σ_y² + ε)·σ_x/sqrt(σ_x² + ε): within ~ε/σ² relative
    so_eps = mean_std(adain(x, y), eps=0.0)[1]
    torch.testing.assert_close(so_eps, sy, rtol=1e-4, atol=0)


def test_encoder_is_not_in_the_state_dict_and_is_rebuilt_identically(tmp_path):
    model = tiny_model(0)
    assert not any(k.startswith("encoder") or "features" in k for k in model.state_dict())
    assert all(not p.requires_grad for p in model.encoder.parameters())
    path = ckpt.save_checkpoint(tmp_path, "step-0000001", model, ckpt.checkpoint_meta("adain", model.config),
                                {"step": 1})
    assert path.exists()
    loaded = load_run(tmp_path)
    for a, b in zip(model.encoder.state_dict().values(), loaded.encoder.state_dict().values()):
        assert torch.equal(a, b)
    c, s = images(1, 16, 1), images(1, 16, 2)
    assert torch.equal(model.stylize(c, s), loaded.stylize(c, s))
    other = AdaIN(AdaINConfig(**{**TINY, "encoder_seed": 1}))
    assert not torch.equal(other.encoder.features[0].weight, model.encoder.features[0].weight)


def test_config_refuses_bad_values():
    with pytest.raises(ConfigError):
        AdaINConfig(**{**TINY, "resolution": 12})
    with pytest.raises(ConfigError):
        AdaINConfig(**{**TINY, "channels": 4})
    with pytest.raises(ConfigError):
        AdaINConfig(resolution=16, encoder="imagenet", encoder_widths=(4, 8, 8, 8, 8))
    # auto resolves when the config is made (no ImageNet file here → random)
    assert AdaINConfig(resolution=16, encoder="auto", encoder_widths=(4, 8, 8, 8, 8)).encoder == "random"


def test_decoder_widths_widen_the_decoder_behind_a_narrow_encoder():
    """decoder_widths sets the decoder's own widths (input still the encoder's relu4_1 width); unset, it
    mirrors the encoder as in the paper; a wrong count is refused."""
    mirror = tiny_model(0)
    convs = [m for m in mirror.decoder.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (8, 8), (8, 8), (8, 8), (8, 8), (8, 8), (8, 8), (8, 4), (4, 4), (4, 3)]
    wide = tiny_model(0, decoder_widths=(6, 10, 12))
    convs = [m for m in wide.decoder.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (8, 12), (12, 12), (12, 12), (12, 12), (12, 10), (10, 10), (10, 6), (6, 6), (6, 3)]
    x = images(2, 16, 1)
    assert wide.stylize(x, images(2, 16, 2)).shape == (2, 3, 16, 16)
    with pytest.raises(ConfigError, match="decoder_widths"):
        AdaINConfig(**{**TINY, "decoder_widths": (8, 8, 8, 8)})


def test_alpha_zero_decodes_the_content_features_and_one_is_full_adain():
    model = tiny_model(0)
    c, s = images(1, 24, 1), images(1, 24, 2)  # the style is resized to the output's long side: keep it 24
    fc = model.features(c)["relu4_1"]
    fs = model.features(s)["relu4_1"]
    with torch.no_grad():
        plain = model.decoder(fc).clamp(-1, 1)
        full = model.decoder(adain(fc, fs)).clamp(-1, 1)
    torch.testing.assert_close(stylize_adain(model, c, s, alpha=0.0), plain)
    torch.testing.assert_close(stylize_adain(model, c, s, alpha=1.0), full)
    torch.testing.assert_close(model.stylize(c, s), full)
    with pytest.raises(ConfigError):
        stylize_adain(model, c, s, alpha=1.5)


def test_style_weights_one_zero_equal_a_single_style_and_all_ones_mask_too():
    model = tiny_model(0)
    c, a, b = images(1, 24, 1), images(1, 16, 2), images(1, 16, 3)
    single = stylize_adain(model, c, a)
    torch.testing.assert_close(stylize_adain(model, c, [a, b], style_weights=[1, 0]), single)
    mask = torch.stack([torch.ones(24, 24), torch.zeros(24, 24)])
    torch.testing.assert_close(stylize_adain(model, c, [a, b], mask=mask), single, rtol=1e-4, atol=1e-5)
    mixed = stylize_adain(model, c, [a, b], style_weights=[0.5, 0.5])
    assert not torch.allclose(mixed, single)


def test_masks_are_checked_and_masked_regions_use_their_style():
    model = tiny_model(0)
    c, a, b = images(1, 32, 1), images(1, 16, 2), images(1, 16, 3)
    with pytest.raises(ConfigError):  # wrong size
        stylize_adain(model, c, [a, b], mask=torch.stack([torch.ones(16, 16), torch.zeros(16, 16)]))
    with pytest.raises(ConfigError):  # overlapping
        stylize_adain(model, c, [a, b], mask=torch.ones(2, 32, 32))
    half = torch.zeros(2, 32, 32)
    half[0, :, :16], half[1, :, 16:] = 1, 1
    out = stylize_adain(model, c, [a, b], mask=half)
    assert out.shape == (1, 3, 32, 32) and out.min() >= -1 and out.max() <= 1

    # 128×128: relu4_1 is a 16×16 grid, columns 0-7 the first style's region, 8-15 the second's. The decoder's
    # input has, within each region, that region's style statistics (AdaIN over the region's positions), and
    # changing the second style leaves the first region's features, and the output far from the seam, as they
    # were (output columns 0-31 see feature columns 0-7 only: the decoder's 3×3 convs reach ±1 feature at 16×16,
    # ±4 pixels at 32×32, ±2 at 64×64 and ±2 at 128×128)
    c, a, b, b2 = images(1, 128, 1), images(1, 128, 2), images(1, 128, 3), images(1, 128, 4)
    half = torch.zeros(2, 128, 128)
    half[0, :, :64], half[1, :, 64:] = 1, 1
    seen = []
    hook = model.decoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    out = stylize_adain(model, c, [a, b], mask=half)
    out2 = stylize_adain(model, c, [a, b2], mask=half)
    hook.remove()
    t, t2 = seen
    fc = model.features(c)["relu4_1"]
    for cols, region, style in ((slice(0, 8), t[..., :8], a), (slice(8, 16), t[..., 8:], b),
                                (slice(8, 16), t2[..., 8:], b2)):
        mu, sd = mean_std(model.features(style)["relu4_1"])  # sd = sqrt(Var + eps)
        var_c = fc[..., cols].var(dim=(2, 3), keepdim=True, correction=0)  # the region's content variance
        torch.testing.assert_close(region.mean(dim=(2, 3), keepdim=True), mu, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(region.std(dim=(2, 3), keepdim=True, correction=0),
                                   sd * (var_c / (var_c + EPS)).sqrt(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(t[..., :8], t2[..., :8], rtol=0, atol=0)
    assert (t[..., 8:] - t2[..., 8:]).abs().max() > 0.01
    torch.testing.assert_close(out[..., :32], out2[..., :32], rtol=1e-6, atol=1e-7)
    assert not torch.equal(out[..., 64:], out2[..., 64:])


def test_any_size_preserve_color_and_size():
    model = tiny_model(0)
    c, s = images(1, 21, 1)[..., :19], images(1, 16, 2)  # 19 wide, 21 high: not multiples of 8
    out = stylize_adain(model, c, s)
    assert out.shape == (1, 3, 21, 19)
    assert stylize_adain(model, c, s, size=40).shape == (1, 3, 40, 36)
    for mode in ("luminance", "histogram"):
        o = stylize_adain(model, c, s, preserve_color=mode)
        assert o.shape == out.shape and torch.isfinite(o).all() and o.abs().max() <= 1


def test_luminance_preservation_keeps_the_content_chrominance():
    """Gatys et al. 2017 §5.1 as stylize_adain applies it: the output's YIQ chroma (I, Q) is the content's
    wherever no channel was clipped; only the luma comes from the stylised image."""
    from imagegen.style.gatys import rgb_to_yiq

    model = tiny_model(0)
    c, s = images(1, 24, 1) * 0.4, images(1, 24, 2)  # moderate colours: little clipping
    out = stylize_adain(model, c, s, preserve_color="luminance")
    yiq_out, yiq_c = rgb_to_yiq((out + 1) / 2), rgb_to_yiq((c + 1) / 2)
    unclipped = ((out > -1) & (out < 1)).all(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    assert unclipped.float().mean() > 0.9
    torch.testing.assert_close(yiq_out[:, 1:][unclipped], yiq_c[:, 1:][unclipped], atol=1e-5, rtol=0)
    assert float((yiq_out[:, :1] - yiq_c[:, :1]).abs().mean()) > 1e-3  # the luma is the decoder's


def test_training_reduces_the_loss_on_a_fixed_batch():
    # zero padding: at init the decoder's output is almost constant (std ~1e-4), and this tiny random encoder
    # with reflection padding maps a constant image to constant features, whose σ has no gradient (a saddle
    # real encoders on real images leave at once); zero padding's border responses break the symmetry
    model = tiny_model(0, lr=3e-3, encoder_padding="zeros").train()
    opt = model.configure_optimizers()["train"]
    batch = {"content": images(4, 16, 1), "style": images(4, 16, 2)}
    losses = []
    for _ in range(30):
        opt.zero_grad()
        out = model.training_step("train", batch)
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses[::5]


def test_predict_and_preview_shapes():
    model = tiny_model(0).train()
    batch = {"content": images(3, 16, 1), "style": images(3, 16, 2)}
    out = model.predict(batch)
    assert out.shape == (3, 3, 16, 16) and model.training and not model.can_sample
    grid, nrow = model.preview(batch, torch.Generator(), 2)
    assert grid.shape == (6, 3, 16, 16) and nrow == 2


def write_pngs(folder, n: int, size: int, seed: int):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("adain")
    content, style = write_pngs(root / "content", 4, 16, 0), write_pngs(root / "style", 4, 16, 1)
    run = root / "run"
    # --content/--style: the short spellings of --data-content/--data-style
    code = cli(["train", "adain", "--content", str(content), "--style", str(style), "--resolution", "16",
              "--encoder", "random", "--encoder-widths", "4,8,8,8,8", "--steps", "2", "--batch-size", "2",
              "--out", str(run), "--no-progress"])
    assert code == 0
    return root, run


def cli(args) -> int:
    try:
        rv = main(args)
    except SystemExit as e:
        return e.code or 0
    return rv or 0


def test_train_with_imagenet_encoder_and_no_file_offline_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    """--encoder imagenet tries the download (checksum-verified) where no local copy exists; offline the
    error is one line naming the file, its checksum and where to put it, exit 2, and no run is left."""
    from imagegen.data.download import DownloadError
    from imagegen.weights import VGG19

    def offline(*args, **kwargs):
        raise DownloadError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr("imagegen.weights.download_file", offline)
    monkeypatch.setenv("IMAGEGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IMAGEGEN_VGG19_WEIGHTS", raising=False)
    content, style = write_pngs(tmp_path / "content", 2, 16, 0), write_pngs(tmp_path / "style", 2, 16, 1)
    capsys.readouterr()
    code = cli(["train", "adain", "--content", str(content), "--style", str(style), "--resolution", "16",
                "--encoder", "imagenet", "--steps", "1", "--batch-size", "2", "--out", str(tmp_path / "run"),
                "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert VGG19.filename in err and "SHA-256 starts with dcbb9e9d" in err and "cannot download" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_load_size_trains_on_random_crops_of_larger_images(tmp_path):
    """--load-size 32 --resolution 16: the data are loaded at 32×32 and each step trains on one random
    16×16 crop per image (the decoder sees 16-pixel inputs); a load size below the resolution is refused."""
    import json

    content, style = write_pngs(tmp_path / "content", 4, 40, 0), write_pngs(tmp_path / "style", 4, 40, 1)
    run = tmp_path / "run"
    assert cli(["train", "adain", "--data-content", str(content), "--data-style", str(style), "--resolution", "16",
                "--load-size", "32", "--encoder", "random", "--encoder-widths", "4,8,8,8,8", "--steps", "2",
                "--batch-size", "2", "--threads", "1", "--out", str(run), "--no-progress"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["model_config"]["load_size"] == 32
    assert {d["resolution"] for d in saved["sources"].values()} == {32}  # loaded at 32, not 16
    model = tiny_model(load_size=32).train()
    seen = []
    model.decoder.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    batch = {"content": torch.rand(3, 3, 32, 32) * 2 - 1, "style": torch.rand(3, 3, 32, 32) * 2 - 1}
    torch.manual_seed(0)
    loss = model.training_step("train", batch)["loss"]
    assert seen == [(3, 8, 2, 2)] and torch.isfinite(loss)  # relu4_1 of a 16×16 crop
    torch.manual_seed(0)
    assert torch.equal(model.training_step("train", batch)["loss"], loss)  # the crops follow torch's RNG
    assert not torch.equal(model.training_step("train", batch)["loss"], loss)  # ... and differ per step
    with pytest.raises(ConfigError, match="load_size=8"):
        AdaINConfig(**{**TINY, "load_size": 8})

def test_cli_stylizes_with_a_trained_run(trained_run, capsys):
    root, run = trained_run
    photo = root / "photo.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(photo)
    out = root / "out.png"
    style = root / "style" / "0.png"
    assert cli(["stylize", "--method", "adain", str(run), "--content", str(photo), "--style", str(style),
                "--style", str(root / "style" / "1.png"), "--style-weights", "0.5,0.5", "--alpha", "0.8",
                "--size", "24", "--out", str(out)]) == 0
    assert Image.open(out).size == (24, 16)
    mask = root / "mask.png"
    m = np.zeros((20, 30), np.uint8)
    m[:, :15] = 255
    Image.fromarray(m).save(mask)
    assert cli(["stylize", "--method", "adain", str(run), "--content", str(photo), "--style", str(style),
                "--style", str(root / "style" / "1.png"), "--mask", str(mask), "--preserve-color", "luminance",
                "--size", "24", "--out", str(root / "masked.png")]) == 0
    assert Image.open(root / "masked.png").size == (24, 16)
    capsys.readouterr()
    bad = [
        ([], "needs the run directory"),
        ([str(root / "nope")], "no such run"),
        ([str(run), "--alpha", "1.5"], "--alpha"),
        ([str(run), "--mask", str(root / "style" / "0.png")], "give a mask of the content's size"),
        ([str(run), "--encoder", "random"], "--encoder is an option of --method gatys"),
        ([str(run), "--steps", "10"], "--steps is an option of --method gatys"),
        ([str(run), "--raw-features"], "--normalize-features/--raw-features is an option of --method gatys"),
    ]
    for extra, words in bad:
        args = ["stylize", "--method", "adain", *extra[:1], "--content", str(photo), "--style", str(style),
                *(["--style", str(root / "style" / "1.png")] if "--mask" in extra else []),
                *extra[1:], "--out", str(root / "bad.png")]
        assert cli(args) == 2, extra
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
    # a CMYK style image (a JPEG) is converted to RGB, and the user is told
    cmyk = root / "cmyk.jpg"
    Image.open(style).convert("RGB").resize((24, 24)).convert("CMYK").save(cmyk)
    assert cli(["stylize", "--method", "adain", str(run), "--content", str(photo), "--style", str(cmyk),
                "--size", "24", "--out", str(root / "cmyk-out.png")]) == 0
    err = capsys.readouterr().err
    assert f"--style {cmyk} is CMYK (mode CMYK); converted to RGB" in err


def test_encoder_padding_reflect_by_default_zeros_for_runs_saved_before_it(tmp_path):
    """New runs use the reference encoder's reflection padding; a checkpoint written before the option
    existed (no ``encoder_padding`` in its config) loads with the zero padding it was trained against."""
    from imagegen.config import from_saved, to_dict

    model = tiny_model(0)
    assert model.config.encoder_padding == "reflect"
    assert all(m.padding_mode == "reflect" for m in model.encoder.features if isinstance(m, torch.nn.Conv2d))
    saved = to_dict(model.config)
    del saved["encoder_padding"]
    old = from_saved(AdaINConfig, saved)
    assert old.encoder_padding == "zeros"
    zeros = AdaIN(old).eval()
    zeros.load_state_dict(model.state_dict())
    # same weights, different borders: the padding changes the outputs
    c, s = images(1, 16, 1), images(1, 16, 2)
    assert not torch.equal(model.stylize(c, s), zeros.stylize(c, s))
    with pytest.raises(ConfigError, match="padding"):
        AdaINConfig(**{**TINY, "encoder_padding": "circular"})
    with pytest.raises(ConfigError, match="at least 16"):  # relu4_1's conv needs 2 pixels to reflect
        AdaINConfig(**{**TINY, "resolution": 8})
    assert AdaINConfig(**{**TINY, "resolution": 8, "encoder_padding": "zeros"}).resolution == 8


def test_adain_layer_relu3_1_decodes_from_relu3_1():
    """adain_layer=relu3_1: AdaIN, the content loss and the decoder's input move to relu3_1 (4× upsampling,
    the relu4_1 decoder's tail); α = 0 decodes the content's relu3_1 features; an odd size is padded to a
    multiple of 4 and cropped back; another layer name is refused."""
    model = tiny_model(0, adain_layer="relu3_1", encoder_widths=(4, 6, 8, 10, 10))
    assert model.decoder.scale == 4
    convs = [m for m in model.decoder.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(8, 6), (6, 6), (6, 4), (4, 4), (4, 3)]
    c, s = images(1, 20, 1), images(1, 20, 2)
    fc = model.features(c)["relu3_1"]
    assert fc.shape == (1, 8, 5, 5)
    with torch.no_grad():
        plain = model.decoder(fc).clamp(-1, 1)
        full = model.decoder(adain(fc, model.features(s)["relu3_1"])).clamp(-1, 1)
    torch.testing.assert_close(stylize_adain(model, c, s, alpha=0.0), plain)
    torch.testing.assert_close(model.stylize(c, s), full)
    assert stylize_adain(model, images(1, 22, 3), s).shape == (1, 3, 22, 22)
    model.train()
    out = model.losses(images(2, 16, 4), images(2, 16, 5))
    with torch.no_grad():
        t = adain(model.features(images(2, 16, 4))["relu3_1"], model.features(images(2, 16, 5))["relu3_1"])
        expected = torch.nn.functional.mse_loss(model.encoder(model.decoder(t), ("relu3_1",))["relu3_1"], t)
    torch.testing.assert_close(out["content"], expected)
    with pytest.raises(ConfigError, match="adain_layer"):
        AdaINConfig(**{**TINY, "adain_layer": "relu5_1"})


def test_adain_layer_auto_is_relu3_1_for_a_narrow_encoder_file_and_relu4_1_otherwise(tmp_path):
    """auto: relu3_1 behind a narrow weights file (imagegen train-encoder's), relu4_1 for the random and
    ImageNet encoders; runs saved before the option existed load as relu4_1, as they were trained."""
    from imagegen.config import from_saved, to_dict
    from imagegen.nn.vgg import load_vgg19
    from imagegen.style.encoder_training import save_vgg_encoder

    assert tiny_model(0).config.adain_layer == "relu4_1"  # random encoder
    path = save_vgg_encoder(load_vgg19("random", widths=(4, 6, 8, 10, 10)), tmp_path / "narrow.pth")
    cfg = AdaINConfig(resolution=16, encoder=str(path))
    assert cfg.encoder_widths == (4, 6, 8, 10, 10) and cfg.adain_layer == "relu3_1"
    assert AdaIN(cfg).decoder.scale == 4
    assert AdaINConfig(resolution=16, encoder=str(path), adain_layer="relu4_1").adain_layer == "relu4_1"
    saved = to_dict(cfg)
    del saved["adain_layer"]
    assert from_saved(AdaINConfig, saved).adain_layer == "relu4_1"


def test_lr_inverse_decay_follows_the_official_schedule_and_trains_open_ended(tmp_path):
    """lr / (1 + d·t) at step t (pytorch-AdaIN's adjust_learning_rate); a step-only schedule needs no run
    length, so --minutes alone is accepted; a negative d is refused; d = 0 schedules nothing."""
    import json

    from imagegen.models.base import StepContext

    assert tiny_model().lr_schedules() == {}
    factor = tiny_model(lr_inverse_decay=5e-5).lr_schedules()["train"]
    assert factor(StepContext(0, 0, 0)) == 1.0 and factor(StepContext(20000, 0, 0)) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="lr_inverse_decay"):
        AdaINConfig(**{**TINY, "lr_inverse_decay": -1e-5})
    content, style = write_pngs(tmp_path / "content", 4, 16, 0), write_pngs(tmp_path / "style", 4, 16, 1)
    run = tmp_path / "run"
    assert cli(["train", "adain", "--data-content", str(content), "--data-style", str(style), "--resolution", "16",
                "--encoder", "random", "--encoder-widths", "4,8,8,8,8", "--minutes", "0.02", "--lr", "1e-3",
                "--lr-inverse-decay", "0.5", "--batch-size", "2", "--log-every", "1", "--threads", "1",
                "--out", str(run), "--no-progress"]) == 0
    # every invocation trains at least one step before it reads the clock, so a resumed second budget
    # trains at step index >= 1 however slow the machine is
    assert cli(["train", "adain", "--resume", str(run), "--minutes", "0.02", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (run / "logs" / "scalars.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "lr/train" in r]
    assert len(rows) >= 2 and max(r["step"] for r in rows) >= 2  # the step logged as k trained at index k - 1
    for r in rows:
        assert r["lr/train"] == pytest.approx(1e-3 / (1 + 0.5 * (r["step"] - 1)))


def test_identity_losses_follow_sanet_and_are_off_by_default():
    """Park & Lee 2019 §3.3: I_cc = g(f(c)), I_ss = g(f(s)); identity1 compares them with c and s in pixels,
    identity2 at every style layer; the total adds them with their weights; weight 0 leaves the AdaIN loss."""
    import torch.nn.functional as F

    from imagegen.models.adain import STYLE_LAYERS

    content, style = images(3, 16, 1), images(3, 16, 2)
    plain = tiny_model(0).losses(content, style)
    assert set(plain) == {"loss", "content", "style"}
    model = tiny_model(0, style_weight=3.0, lambda_identity1=12.5, lambda_identity2=2.0)
    out = model.losses(content, style)
    torch.testing.assert_close(out["content"], plain["content"])  # the same decoder weights (seed 0)
    with torch.no_grad():
        rec_c = model.decoder(model.features(content)[model.layer])
        rec_s = model.decoder(model.features(style)[model.layer])
        id1 = F.mse_loss(rec_c, content) + F.mse_loss(rec_s, style)
        fc, fs = model.features(content, STYLE_LAYERS), model.features(style, STYLE_LAYERS)
        frc, frs = model.features(rec_c, STYLE_LAYERS), model.features(rec_s, STYLE_LAYERS)
        id2 = sum(F.mse_loss(frc[n], fc[n]) + F.mse_loss(frs[n], fs[n]) for n in STYLE_LAYERS)
    torch.testing.assert_close(out["identity1"], id1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["identity2"], id2, rtol=1e-5, atol=1e-6)
    total = out["content"] + 3.0 * out["style"] + 12.5 * out["identity1"] + 2.0 * out["identity2"]
    torch.testing.assert_close(out["loss"].detach(), total, rtol=1e-5, atol=1e-6)
    assert "identity2" not in tiny_model(0, lambda_identity1=1.0).losses(content, style)
    with pytest.raises(ConfigError, match="lambda_identity"):
        AdaINConfig(**{**TINY, "lambda_identity1": -1.0})


def test_identity_loss_teaches_the_decoder_to_give_the_content_back():
    """Trained with the pixel identity loss (style_weight 0, so only L_c besides it), alpha = 0 gives the
    content back much better than after training on L_c alone, and than the untrained decoder (smooth
    images: a decoder from the 4x4 relu3_1 of a tiny random encoder cannot give back pixel noise)."""
    import torch.nn.functional as F

    def smooth(n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return F.interpolate(torch.rand(n, 3, 2, 2, generator=g) * 2 - 1, size=16, mode="bilinear",
                             align_corners=False)

    content, style = smooth(4, 1), smooth(4, 2)

    def alpha0_error(steps: int = 40, **kw) -> float:
        model = tiny_model(0, lr=1e-2, encoder_padding="zeros", adain_layer="relu3_1", style_weight=0.0, **kw)
        model.train()
        opt = model.configure_optimizers()["train"]
        for _ in range(steps):
            opt.zero_grad()
            model.training_step("train", {"content": content, "style": style})["loss"].backward()
            opt.step()
        return float(((model.stylize(content, style, alpha=0.0) - content) ** 2).mean())

    untrained = alpha0_error(steps=0)
    identity, adain_only = alpha0_error(lambda_identity1=50.0), alpha0_error()
    assert identity < 0.5 * adain_only and identity < 0.5 * untrained, (identity, adain_only, untrained)
