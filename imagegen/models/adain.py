"""Arbitrary style transfer with adaptive instance normalisation (Huang & Belongie 2017, "Arbitrary Style
Transfer in Real-time with Adaptive Instance Normalization", ICCV), registered as ``adain``.

A fixed VGG-19 encoder ``f`` (up to ``relu4_1``, or ``relu3_1`` with ``adain_layer``), an AdaIN layer and
a trained decoder ``g``:

* **AdaIN** (Eq. 8): ``AdaIN(x, y) = σ(y) (x − μ(x)) / σ(x) + μ(y)``, with ``μ`` and ``σ`` the
  per-image, per-channel mean and standard deviation over the spatial positions,
  ``σ(x) = sqrt(Var(x) + ε)`` with the population variance (divide by H·W) and ``ε = 1e-5``
  (:data:`EPS`, the official implementation's).
* **Output**: ``t = AdaIN(f(c), f(s))`` (Eq. 9), ``T(c, s) = g(t)`` (Eq. 10).
* **Encoder padding**: the official implementation's encoder (``vgg_normalised``, naoto0804/pytorch-AdaIN
  ``net.py``) puts ``ReflectionPad2d(1)`` before every 3×3 convolution where VGG itself zero-pads;
  ``encoder_padding`` chooses (``reflect`` by default; runs saved before the option existed used ``zeros``
  and load that way). With ``reflect`` the smallest image is 16 pixels (conv4_1 needs 2×2 to reflect).
* **AdaIN layer**: ``relu4_1`` as in the paper (§6); ``adain_layer = relu3_1`` moves AdaIN, the content
  loss and the decoder's input one block shallower — our option, not the paper's, for encoders whose
  ``relu4_1`` keeps too little of the photo to be decoded: the self-trained CIFAR-10 encoder's ``relu4_1``,
  inverted by optimisation from noise (average pooling), gives only the outlines of a face, where its
  ``relu3_1`` and a random VGG-19's ``relu4_1`` give the face back (docs/style_transfer.md). The style
  loss keeps its four layers. ``auto`` (the default) takes relu3_1 behind a weights file narrower than
  VGG-19 (``imagegen train-encoder``'s), else relu4_1.
* **Decoder** (§6): the encoder mirrored from the AdaIN layer down (``decoder_widths`` can widen it beyond a
  narrow offline encoder's mirror, e.g. the paper's full widths behind a half-width encoder): pooling
  layers become 2× nearest-neighbour upsampling, every 3×3 convolution uses reflection padding, no
  normalisation layer; ReLU after every convolution but the last, whose 3 output channels are the image
  (not squashed; :meth:`AdaIN.stylize` clamps to [-1, 1]). With VGG-19 widths (64, 128, 256, 512):
  512→256, up, 3× 256→256, 256→128, up, 128→128, 128→64, up, 64→64, 64→3 (the official decoder); from
  ``relu3_1`` its tail from 256→128 on.
* **Loss** (Eq. 11–13) with mean squared errors, as in the official implementation (``nn.MSELoss``; the
  paper writes Euclidean norms): content ``L_c = mean((f(g(t)) − t)²)`` at the AdaIN layer against the AdaIN
  target ``t`` (not the content image's features); style ``L_s = Σ_i [mean((μ(φ_i(g(t))) − μ(φ_i(s)))²)
  + mean((σ(φ_i(g(t))) − σ(φ_i(s)))²)]`` over ``φ_i`` = relu1_1, relu2_1, relu3_1, relu4_1 (means over
  batch and channels); ``L = L_c + λ L_s`` with λ = ``style_weight`` (10 in the paper).
* **Identity losses** (optional, off by default; not in the AdaIN paper): Park & Lee 2019 ("Arbitrary Style
  Transfer with Style-Attentional Networks", CVPR, §3.3) ask the decoder to give back an image from its own
  features: ``I_cc = g(AdaIN(f(c), f(c))) = g(f(c))`` (AdaIN of a feature map with itself is the map) and
  ``I_ss = g(f(s))``; ``L_identity1 = mean((I_cc − c)²) + mean((I_ss − s)²)`` on the images in [-1, 1] and
  ``L_identity2 = Σ_i [mean((φ_i(I_cc) − φ_i(c))²) + mean((φ_i(I_ss) − φ_i(s))²)]`` over the style layers;
  ``L += λ_identity1 L_identity1 + λ_identity2 L_identity2`` (``lambda_identity1``, ``lambda_identity2``).
  A public SANet training code (GlebSBrykin/SANET ``Train.ipynb``; its issue 2 reports that the paper's
  author gave these weights in dypark86/SANET issue 1) uses 50 and 1 with images in [0, 1] and
  relu1_1…relu5_1; on [-1, 1] images the same pixel weight is 50 / 4 = 12.5. Here it targets what α = 0
  shows: a decoder that does not give the photo back (docs/style_transfer.md).

**The encoder is not a weight of the run.** It is rebuilt from the config when the model is built
(including by :func:`imagegen.sampling.load_run`) and kept out of ``state_dict``: ``random`` from
``encoder_seed`` and ``encoder_widths`` (bit-identical on every machine, :func:`imagegen.nn.vgg.random_init_`),
``imagenet`` from the model-zoo file found by :func:`imagegen.weights.find_weights`, or a path (its
widths are read from the file, and its SHA-256 is recorded in ``encoder_sha256`` and checked whenever the
run is loaded, so a decoder is never paired with another encoder). ``auto`` is resolved when the config
is made (:func:`imagegen.nn.vgg.resolve_auto`: ``imagenet`` if the file is found locally, else the
self-trained encoder that ``imagegen train-encoder`` writes to the cache, else ``random``), so that
``config.json`` records the encoder the decoder was trained against.

Training: ``imagegen train adain --data-content PHOTOS --data-style PAINTINGS`` (two unpaired sources;
batch fields ``content`` and ``style``; item i of one batch is paired with item i of the other). With
``load_size`` the images are loaded at that square size and each step trains on a random
``resolution`` crop of every image (§6 resizes to 512 and crops 256 at random; here the crop is taken
inside the centre square the loader keeps, not anywhere in a wider image). Use
time: :func:`imagegen.style.adain.stylize_adain` (α, style interpolation, colour preservation, masks).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..config import help_field
from ..data.augment import random_crops
from ..errors import ConfigError
from ..nn.vgg import (VGG19_WIDTHS, VGG19Encoder, load_vgg19, min_image_size, parse_widths, pools_before,
                      resolve_auto, vgg19_file_widths)
from ..registry import register_model
from .base import Batch, DataSource, GenerativeModel, LRSchedule, Phase

#: ε of σ(x) = sqrt(Var(x) + ε) (the official implementation's)
EPS = 1e-5
#: the layer whose features AdaIN transforms, by default (the paper's)
CONTENT_LAYER = "relu4_1"
#: the layers ``adain_layer`` may name (``auto`` is resolved to one of them when the config is made)
ADAIN_LAYERS = ("relu4_1", "relu3_1")
#: the style loss layers (§6)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
ENCODERS = ("auto", "imagenet", "random")


def mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and ``sqrt(population variance + eps)`` over the spatial positions:
    [N, C, H, W] → two [N, C, 1, 1]."""
    mu = feat.mean(dim=(2, 3), keepdim=True)
    var = feat.var(dim=(2, 3), keepdim=True, unbiased=False)
    return mu, (var + eps).sqrt()


def adain(x: torch.Tensor, y: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """AdaIN (Eq. 8): ``σ(y) (x − μ(x)) / σ(x) + μ(y)`` per image and channel; x [N, C, H, W], y [N, C, H', W']
    (any spatial size). With ``eps = 0`` the output has exactly y's channel means and standard deviations."""
    mx, sx = mean_std(x, eps)
    my, sy = mean_std(y, eps)
    return sy * (x - mx) / sx + my


@dataclasses.dataclass
class AdaINConfig:
    resolution: int = help_field(
        128, "training crop size in pixels (a multiple of 8; the paper uses 256 crops of 512-pixel images; "
             "128 costs a quarter per step on a CPU, and the network is fully convolutional, so it stylises "
             "any size)")
    load_size: Optional[int] = help_field(
        None, "random-crop training: the content and style images are loaded at this square size (short side "
              "resized, centre crop) and every step cuts a random --resolution crop out of each (Huang & "
              "Belongie 2017 §6: 512-pixel images, random 256 crops); default: loaded at --resolution, no crop")
    channels: Optional[int] = help_field(
        3, "image channels: 3 (greyscale data is replicated to RGB for the encoder; with 1 the model's "
           "outputs are greyscale)")
    encoder: str = help_field(
        "auto", "VGG-19 encoder (fixed, not trained): imagenet (vgg19-dcbb9e9d.pth via $IMAGEGEN_VGG19_WEIGHTS "
                "or the cache, downloaded if missing), random (Kaiming-normal from --encoder-seed, works "
                "offline), auto (imagenet if the file is found locally, else the self-trained encoder of "
                "imagegen train-encoder in the cache, else random; resolved when the run starts), or the path "
                "of a torchvision-layout file")
    encoder_seed: int = help_field(0, "seed of the random encoder's weights")
    encoder_sha256: Optional[str] = help_field(
        None, "SHA-256 of the encoder weights file (set when the run starts, checked when it is loaded)")
    encoder_widths: tuple[int, ...] = help_field(
        VGG19_WIDTHS, "conv widths of VGG-19's five blocks (standard for imagenet; a weights file's own are "
                      "read from it; narrower ones for a random encoder); the decoder mirrors the first four "
                      "unless --decoder-widths is given")
    decoder_widths: Optional[tuple[int, ...]] = help_field(
        None, "conv widths of the decoder at the resolutions of the encoder's blocks 1-3 (the mirror of its "
              "w1,w2,w3; its input is the encoder's relu4_1 width); default: the encoder's own, as in the paper. "
              "With a half-width encoder, 64,128,256 gives the paper's full-width decoder")
    adain_layer: str = help_field(
        "auto", "the encoder layer AdaIN transforms and the decoder inverts: relu4_1 (the paper's), relu3_1 (one "
                "block shallower, for an encoder whose relu4_1 keeps too little of the photo, such as the "
                "self-trained CIFAR-10 one; see docs/style_transfer.md) or auto (relu3_1 for a weights file of "
                "narrower than VGG-19's widths, i.e. one of imagegen train-encoder, else relu4_1; resolved when "
                "the run starts)")
    encoder_padding: str = help_field(
        "reflect", "border handling of the encoder's 3×3 convolutions: reflect (ReflectionPad2d, the official "
                   "AdaIN encoder's) or zeros (VGG's own; runs saved before this option existed used it)")
    style_weight: float = help_field(10.0, "λ, weight of the style loss (Eq. 11)")
    lr: float = help_field(1e-4, "Adam learning rate of the decoder")
    lr_inverse_decay: float = help_field(
        0.0, "inverse-time learning-rate decay: step t trains at lr / (1 + d·t), as the official AdaIN code "
             "(d = 5e-5 there, halving the rate after 20,000 steps); 0 keeps the rate constant")
    lambda_identity1: float = help_field(
        0.0, "weight of the pixel identity loss (Park & Lee 2019, SANet §3.3): the decoder must give back the "
             "content and the style image from their own features, mean((g(f(c)) − c)²) + mean((g(f(s)) − s)²) "
             "on images in [-1, 1]; 0 = off, as in the AdaIN paper; SANet's code uses 50 on [0, 1] images, "
             "12.5 here")
    lambda_identity2: float = help_field(
        0.0, "weight of the feature identity loss: the same reconstructions compared with c and s at every "
             "style layer, Σ_i mean((φ_i(g(f(c))) − φ_i(c))²) + the same for s; 0 = off; 1 in SANet's code")
    beta1: float = help_field(0.9, "Adam β1")
    beta2: float = help_field(0.999, "Adam β2")

    #: runs saved before ``encoder_padding`` existed were trained against a zero-padded encoder, and those
    #: saved before ``adain_layer`` existed decoded from relu4_1
    SAVED_DEFAULTS = {"encoder_padding": "zeros", "adain_layer": "relu4_1"}

    def __post_init__(self) -> None:
        smallest = min_image_size(CONTENT_LAYER, self.encoder_padding)  # 8, or 16 with reflection padding
        if self.resolution < smallest or self.resolution % 8:
            raise ConfigError(f"resolution={self.resolution}: adain needs a multiple of 8 (the encoder pools 3 "
                              f"times before relu4_1) of at least {smallest}, e.g. 128 or 256")
        if self.load_size is not None and self.load_size < self.resolution:
            raise ConfigError(f"load_size={self.load_size}: the images are cropped to resolution={self.resolution}, "
                              "so load them at least that large (or leave --load-size unset)")
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels={self.channels}: use 3 (or 1 for greyscale data)")
        self.encoder_widths = parse_widths(self.encoder_widths, 5, what=f"encoder_widths={self.encoder_widths}",
                                           example=",".join(map(str, VGG19_WIDTHS)))
        if self.decoder_widths is not None:
            self.decoder_widths = parse_widths(self.decoder_widths, 3, what=f"decoder_widths={self.decoder_widths}",
                                               example="64,128,256 (or leave it unset to mirror the encoder)")
        if self.encoder == "auto":  # resolve now, so that config.json names the encoder the decoder learns
            # (non-standard widths mean a random encoder was asked for: never the ImageNet or a trained file)
            self.encoder = resolve_auto() if self.encoder_widths == VGG19_WIDTHS else "random"
        if self.encoder == "imagenet" and self.encoder_widths != VGG19_WIDTHS:
            raise ConfigError(f"encoder=imagenet needs the standard encoder_widths {VGG19_WIDTHS}")
        if self.encoder not in ENCODERS:  # a weights file: absolute, so a run loads from any directory
            import os

            self.encoder = os.path.abspath(os.path.expanduser(self.encoder))
            if os.path.isfile(self.encoder):  # the widths are the file's (a missing file fails when built)
                file_widths = vgg19_file_widths(self.encoder)
                if self.encoder_widths not in (VGG19_WIDTHS, file_widths):
                    raise ConfigError(f"encoder_widths={self.encoder_widths}: the encoder file {self.encoder} has "
                                      f"widths {file_widths}; leave --encoder-widths unset")
                self.encoder_widths = file_widths
                from ..weights import weights_sha256

                digest = weights_sha256(self.encoder)
                if self.encoder_sha256 is None:
                    self.encoder_sha256 = digest
                elif digest != self.encoder_sha256:
                    raise ConfigError(f"encoder file {self.encoder} has changed since this adain run was trained "
                                      f"(SHA-256 {digest[:12]}, the run expects {self.encoder_sha256[:12]}): "
                                      "restore that file, or train a new decoder against this one")
        if self.adain_layer == "auto":  # after the encoder is resolved: a file's widths are known now
            narrow_file = self.encoder not in ENCODERS and self.encoder_widths != VGG19_WIDTHS
            self.adain_layer = "relu3_1" if narrow_file else "relu4_1"
        if self.adain_layer not in ADAIN_LAYERS:
            raise ConfigError(f"adain_layer={self.adain_layer!r}: use auto or one of {', '.join(ADAIN_LAYERS)}")
        if self.style_weight < 0 or self.lr <= 0:
            raise ConfigError(f"style_weight={self.style_weight}, lr={self.lr}: need style_weight ≥ 0 and lr > 0")
        if not (self.lambda_identity1 >= 0 and self.lambda_identity2 >= 0):
            raise ConfigError(f"lambda_identity1={self.lambda_identity1}, lambda_identity2={self.lambda_identity2}: "
                              "need ≥ 0 (0 turns the identity loss off)")
        if not self.lr_inverse_decay >= 0:
            raise ConfigError(f"lr_inverse_decay={self.lr_inverse_decay}: need ≥ 0 (0 = constant; the official "
                              "code's is 5e-5)")


def _conv(c_in: int, c_out: int, relu: bool = True) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3)] + ([nn.ReLU()] if relu else [])


class AdaINDecoder(nn.Module):
    """relu4_1 features [N, w4, h, w] → image [N, 3, 8h, 8w], or with ``layer="relu3_1"`` relu3_1 features
    [N, w3, h, w] → [N, 3, 4h, 4w] (unbounded; see the module docstring).

    ``widths``: (w1, w2, w3), the widths of the encoder's first three blocks, mirrored, or the config's
    ``decoder_widths`` (kept as ``self.widths``; w3 is not used from relu3_1); ``in_channels``: the channels
    of the features it decodes (the encoder's width at that layer). ``scale``: output pixels per feature
    position (8 or 4)."""

    def __init__(self, widths: tuple[int, ...], in_channels: int, layer: str = CONTENT_LAYER) -> None:
        super().__init__()
        w1, w2, w3 = self.widths = tuple(widths)
        up = nn.Upsample(scale_factor=2, mode="nearest")
        layers: list[nn.Module] = []
        if layer == "relu4_1":
            layers += [*_conv(in_channels, w3), up]
            for _ in range(3):
                layers += _conv(w3, w3)
            in_channels = w3
        elif layer != "relu3_1":
            raise ConfigError(f"adain_layer={layer!r}: use one of {', '.join(ADAIN_LAYERS)}")
        layers += [*_conv(in_channels, w2), up, *_conv(w2, w2), *_conv(w2, w1), up, *_conv(w1, w1),
                   *_conv(w1, 3, relu=False)]
        self.scale = 2 ** pools_before(layer)  # the encoder's poolings, undone by the upsamplings
        self.net = nn.Sequential(*layers)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net(t)


def build_encoder(config: AdaINConfig) -> VGG19Encoder:
    """The config's frozen VGG-19 encoder (max pooling, the config's padding), built the same way every time."""
    if config.encoder == "random":
        return load_vgg19("random", seed=config.encoder_seed, widths=config.encoder_widths, pooling="max",
                          padding=config.encoder_padding)
    # imagenet: downloaded (checksum-verified) where the network allows and no local copy exists, as stylize does
    return load_vgg19(config.encoder, pooling="max", widths=config.encoder_widths, padding=config.encoder_padding,
                      download=config.encoder == "imagenet")


@register_model("adain")
class AdaIN(GenerativeModel):
    """AdaIN style transfer network (see the module docstring).

    Python API::

        from imagegen.sampling import load_run
        from imagegen.style import stylize_adain
        model = load_run("runs/adain")
        out = model.stylize(content, style)                        # [N, 3, H, W] in [-1, 1]
        out = stylize_adain(model, photo, [a, b], style_weights=[0.7, 0.3], alpha=0.8, size=512)
    """

    Config = AdaINConfig
    evaluation = ()  # no standard metric: the losses are the measure

    def __init__(self, config: AdaINConfig) -> None:
        super().__init__(config)
        # kept out of the module tree: not in state_dict, not in parameters(); moved by _apply
        self._encoder = [build_encoder(config)]
        self.layer = config.adain_layer
        self.decoder = AdaINDecoder(config.decoder_widths or config.encoder_widths[:3],
                                    in_channels=config.encoder_widths[pools_before(self.layer)],  # its block's
                                    layer=self.layer)

    @property
    def encoder(self) -> VGG19Encoder:
        return self._encoder[0]

    def _apply(self, fn, *args, **kwargs):  # noqa: ANN001 - .to()/.cuda()/.double() also move the encoder
        super()._apply(fn, *args, **kwargs)
        self._encoder[0] = self._encoder[0]._apply(fn, *args, **kwargs)
        return self

    @property
    def can_sample(self) -> bool:
        return False

    @classmethod
    def data_sources(cls) -> list[DataSource]:
        return [DataSource("content", image_key="content", label_key=None, help="content photos", alias="--content"),
                DataSource("style", image_key="style", label_key=None, help="style images (paintings)",
                           alias="--style")]

    # ---- network -----------------------------------------------------------------------------------
    def rgb(self, img: torch.Tensor) -> torch.Tensor:
        """[N, 1 or 3, H, W] → [N, 3, H, W] (greyscale replicated)."""
        return img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img

    def features(self, img: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:  # noqa: ANN001
        """The encoder's features of ``img`` [N, 1 or 3, H, W] at ``layers`` (default: the AdaIN layer)."""
        return self.encoder(self.rgb(img), layers or (self.layer,))

    def _out_channels(self, img: torch.Tensor) -> torch.Tensor:
        if (self.config.channels or 3) == 1:
            return img.mean(dim=1, keepdim=True)
        return img

    # ---- training ----------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"train": torch.optim.Adam(self.decoder.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))}

    def lr_schedules(self) -> dict[str, LRSchedule]:
        """Inverse-time decay lr / (1 + d·t) at step t when ``lr_inverse_decay`` d > 0 (naoto0804/pytorch-AdaIN
        ``adjust_learning_rate``, "imitating the original implementation"; the paper states no schedule)."""
        d = self.config.lr_inverse_decay
        return {"train": lambda ctx: 1.0 / (1.0 + d * ctx.step)} if d > 0 else {}

    def lr_schedules_need_length(self) -> bool:
        return False

    def phases(self) -> list[Phase]:
        return [Phase("train")]

    def losses(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        """``loss`` = L_c + λ L_s (Eq. 11–13, MSE), plus the identity losses when their weights are > 0, for
        ``content`` and ``style`` [N, C, r, r] in [-1, 1] (see the module docstring). Also returns the
        detached terms: ``content``, ``style`` and, when on, ``identity1`` and ``identity2``."""
        c = self.config
        identity = c.lambda_identity1 > 0 or c.lambda_identity2 > 0
        with torch.no_grad():
            c_feats = self.features(content, STYLE_LAYERS if identity else (self.layer,))
            s_feats = self.features(style, STYLE_LAYERS)
            t = adain(c_feats[self.layer], s_feats[self.layer])
            s_stats = [mean_std(s_feats[n]) for n in STYLE_LAYERS]
        out = self.decoder(t)
        o_feats = self.encoder(out, STYLE_LAYERS)
        l_c = F.mse_loss(o_feats[self.layer], t)
        l_s = out.new_zeros(())
        for name, (mu_s, sd_s) in zip(STYLE_LAYERS, s_stats):
            mu_o, sd_o = mean_std(o_feats[name])
            l_s = l_s + F.mse_loss(mu_o, mu_s) + F.mse_loss(sd_o, sd_s)
        loss = l_c + c.style_weight * l_s
        terms = {"content": l_c.detach(), "style": l_s.detach()}
        if identity:  # SANet §3.3: I_cc = g(f(c)), I_ss = g(f(s)), decoded as one batch
            n = len(content)
            rec = self.decoder(torch.cat([c_feats[self.layer], s_feats[self.layer]]))
            images = (self.rgb(content), self.rgb(style))
            l_id1 = sum(F.mse_loss(r, x) for r, x in zip(rec.split(n), images))
            loss = loss + c.lambda_identity1 * l_id1
            terms["identity1"] = l_id1.detach()
            if c.lambda_identity2 > 0:
                r_feats = self.encoder(rec, STYLE_LAYERS)
                l_id2 = out.new_zeros(())
                for name in STYLE_LAYERS:
                    r_c, r_s = r_feats[name].split(n)
                    l_id2 = l_id2 + F.mse_loss(r_c, c_feats[name]) + F.mse_loss(r_s, s_feats[name])
                loss = loss + c.lambda_identity2 * l_id2
                terms["identity2"] = l_id2.detach()
        return {"loss": loss, **terms}

    @classmethod
    def data_resolution(cls, config: AdaINConfig) -> Optional[int]:
        return config.load_size or config.resolution

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        content, style = batch["content"], batch["style"]
        r = self.config.resolution
        if tuple(content.shape[-2:]) != (r, r):  # load_size: a random crop per image (torch's RNG, checkpointed)
            content = random_crops(content, (r, r), torch.default_generator)
        if tuple(style.shape[-2:]) != (r, r):
            style = random_crops(style, (r, r), torch.default_generator)
        if len(style) != len(content):  # pair item i with item i mod len(style)
            style = style[torch.arange(len(content), device=style.device) % len(style)]
        return self.losses(content, style)

    # ---- using the model ---------------------------------------------------------------------------
    @torch.no_grad()
    def stylize(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """``g((1 − α) f(c) + α AdaIN(f(c), f(s)))`` (Eq. 14) for images [N, C, H, W] in [-1, 1] (H, W
        multiples of the decoder's scale, 8 or 4; style any size ≥ 8); returns [N, 3, H, W] in [-1, 1], eval
        mode, no grad."""
        was = self.training
        self.eval()
        try:
            fc = self.features(content)[self.layer]
            t = adain(fc, self.features(style)[self.layer])
            return self.decoder(alpha * t + (1 - alpha) * fc).clamp(-1, 1)
        finally:
            self.train(was)

    def predict(self, batch: Batch, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``batch["content"]`` styled by ``batch["style"]`` (item by item) → [N, C, H, W] in [-1, 1]."""
        content, style = batch["content"], batch["style"]
        if len(style) != len(content):
            style = style[torch.arange(len(content), device=style.device) % len(style)]
        return self._out_channels(self.stylize(content, style))

    def preview(self, batch: Batch, generator: torch.Generator, n: int) -> tuple[torch.Tensor, Optional[int]]:
        """Three rows: contents, styles, outputs."""
        m = min(n, len(batch["content"]), len(batch["style"]))
        content, style = batch["content"][:m], batch["style"][:m]
        out = self.predict({"content": content, "style": style})
        c = out.shape[1]
        rows = [content[:, :c] if content.shape[1] >= c else content.expand(-1, c, -1, -1),
                style[:, :c] if style.shape[1] >= c else style.expand(-1, c, -1, -1), out]
        return torch.cat(rows), m


def load_adain(model_or_run: Union[str, "AdaIN"]) -> AdaIN:
    """An :class:`AdaIN` model, or the one of a run directory / checkpoint (ConfigError otherwise)."""
    if isinstance(model_or_run, AdaIN):
        return model_or_run
    from ..sampling import load_run

    model = load_run(model_or_run)
    if not isinstance(model, AdaIN):
        raise ConfigError(f"{model_or_run}: a {model.model_name} run, not an adain run")
    return model
