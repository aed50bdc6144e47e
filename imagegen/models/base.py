"""The contract between a model and the shared :class:`~imagegen.training.Trainer`.

A model is an ``nn.Module`` with a ``Config`` dataclass, registered by name with
:func:`imagegen.registry.register_model`. It declares what it trains on, its optimisers (and their
learning-rate schedules) and its phases; the trainer runs the phases in order every step and owns
everything else (devices, seeds, data streams, progress, logging, checkpoints, resume, interruption,
distributed training). Adding a model touches only its own file::

    @register_model("mymodel")
    class MyModel(GenerativeModel):
        Config = MyConfig
        def configure_optimizers(self): return {"G": Adam(self.G.parameters()), ...}
        def phases(self): return [Phase("D"), Phase("G", needs_batch=False)]
        def training_step(self, phase, batch): ... return {"loss": loss, "d_real": ...}
        def sample(self, n, generator=None, labels=None): ...

**Data.** :meth:`GenerativeModel.data_sources` names the sources a model trains on and the batch fields
each fills: one dataset (the default: fields ``img`` and ``label``), a paired dataset (``A`` and
``B`` of the same scene), or several independent unpaired sources (CycleGAN's ``A`` and ``B``; AdaIN's
``content`` and ``style``), each with its own resumable stream and its own CLI options (``--data``
for the unnamed source, ``--data-a`` / ``--data-b`` for sources named ``a`` and ``b``).
:meth:`~GenerativeModel.training_step` receives a :data:`Batch`: a dict of tensors by field name.

**Schedule.** Before and after every step the model sees a :class:`StepContext` (step, total steps,
images seen) in :meth:`~GenerativeModel.before_step` / :meth:`~GenerativeModel.after_step`, so that
schedules (fade-in, EMA ramp-up, augmentation probability) live in the model file.
:meth:`~GenerativeModel.lr_schedules` gives a learning-rate factor per optimiser as a function of
the step context; the trainer applies it before every step (``lr = initial_lr × factor``).

**State that is not a weight** (image pools, augmentation probability, running means) is returned by
:meth:`~GenerativeModel.training_state` and restored by :meth:`~GenerativeModel.load_training_state`;
the trainer keeps it in ``trainer_state.pt``, out of the inference weights file.

**Using the model.** :meth:`~GenerativeModel.predict` maps a batch of the model's inputs (labels, a
source image, a mask, a style image) to output images; :meth:`~GenerativeModel.preview` draws the
training-time grid from a fixed batch; :attr:`~GenerativeModel.evaluation` says which metrics apply
(``distribution``: FID/KID/IS/PR/DC; ``paired``: PSNR/SSIM against a target; ``likelihood``:
:meth:`~GenerativeModel.log_likelihood` in nats, for ``nll`` and bits/dim).

Before each phase the trainer enables gradients only for the parameters of that phase's optimiser
(so e.g. D's weight gradients are not computed in G's phase), zeroes them, calls the model (through
DistributedDataParallel when distributed), backpropagates ``out["loss"]`` and steps the optimiser.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Literal, Optional

import torch
from torch import nn

from ..config import check_choices
from ..errors import ConfigError

#: a batch: tensors by field name, e.g. ``{"img": [B, C, H, W] float32 in [-1, 1], "label": [B] int64}``
Batch = dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class DataSource:
    """One source of training data that a model declares.

    Attributes:
        name: ``""`` for a model's main (or only) source, whose CLI options are ``--data``,
            ``--data-root``, ``--split``; otherwise a short lower-case name whose options are
            ``--data-<name>``, ``--data-root-<name>``, ``--split-<name>`` (e.g. ``a`` → ``--data-a``).
        kind: ``images`` (an image dataset, optionally labelled) or ``paired`` (pairs of aligned
            images: side-by-side ``A|B`` files, or a folder with ``A/`` and ``B/`` subfolders whose
            files have matching names).
        image_key: batch field of the images (``images``) or of the first image of each pair.
        label_key: batch field of the labels (int64, -1 when unlabelled), or None for no labels.
        target_key: ``paired`` only: batch field of the second image of each pair.
        help: what the source is, shown in ``--help``.
        alias: another spelling of ``--data-<name>`` (with its dashes, e.g. ``--content``), or ``""``.
    """

    name: str = ""
    kind: Literal["images", "paired"] = "images"
    image_key: str = "img"
    label_key: Optional[str] = "label"
    target_key: Optional[str] = None
    help: str = "training images"
    alias: str = ""

    def __post_init__(self) -> None:
        if self.kind == "paired" and not self.target_key:
            raise ValueError("a paired DataSource needs target_key")

    @property
    def keys(self) -> tuple[str, ...]:
        """The batch fields this source fills."""
        return tuple(k for k in (self.image_key, self.target_key, self.label_key) if k)

    def option(self, field: str) -> str:
        """CLI option name (without dashes) of ``field`` (``data``, ``data_root``, ``split``)."""
        return field if not self.name else f"{field}_{self.name}"


@dataclasses.dataclass(frozen=True)
class StepContext:
    """Where training is, given to the model before and after every step.

    Attributes:
        step: steps completed before this one (0 at the first step; in :meth:`GenerativeModel.after_step`
            the count including it).
        total_steps: the run's length in steps (it changes when a resumed run is given a new length).
        images_seen: real images drawn so far, over all processes.
    """

    step: int
    total_steps: int
    images_seen: int

    @property
    def kimg(self) -> float:
        """Thousands of real images seen (the unit of StyleGAN's schedules)."""
        return self.images_seen / 1000.0

    @property
    def images_per_step(self) -> float:
        """Real images per step over all processes, averaged over the run so far (the batch size; after
        a resume with another batch size, the mean). Use in :meth:`GenerativeModel.after_step`, where
        ``step`` counts this one."""
        return self.images_seen / max(1, self.step)

    @property
    def progress(self) -> float:
        """``step / total_steps`` in [0, 1]."""
        return min(1.0, self.step / max(1, self.total_steps))


#: a learning-rate factor as a function of the step context (multiplies each group's initial lr)
LRSchedule = Callable[[StepContext], float]


@dataclasses.dataclass(frozen=True)
class Phase:
    """One optimisation phase of a training step.

    Attributes:
        name: phase name, used as the prefix of its logged scalars (``D/loss``) and as the default
            optimiser name.
        optimizer: key of the optimiser (in :meth:`GenerativeModel.configure_optimizers`) that this
            phase steps; defaults to ``name``.
        needs_batch: whether the phase draws a fresh batch from every data source. A phase that does
            not is given the step's most recent batch again (e.g. a GAN's G phase uses it only for the
            batch size and, in conditional models, the labels).
        every: run the phase only on steps where ``step % every == 0`` (lazy regularisation).
    """

    name: str
    optimizer: Optional[str] = None
    needs_batch: bool = True
    every: int = 1

    @property
    def optimizer_name(self) -> str:
        return self.optimizer or self.name


def batches_per_step(phases: list[Phase]) -> float:
    """Average number of fresh batches one step draws (phases running every N steps count 1/N); at
    least one batch is drawn by every step that runs a phase."""
    return max(sum(1.0 / ph.every for ph in phases if ph.needs_batch), 1.0 / min(ph.every for ph in phases))


class GenerativeModel(nn.Module):
    """Base class of every imagegen model.

    Subclasses set ``Config`` (a dataclass with at least ``resolution`` and ``channels`` fields and,
    for conditional models, ``num_classes``) and implement :meth:`configure_optimizers`,
    :meth:`phases`, :meth:`training_step` and either :meth:`sample` (models that generate from noise)
    or :meth:`predict` (models that transform an input). Everything else has a default.

    Attributes:
        config: the model's config dataclass (saved as ``config.json`` beside the weights).
        model_name: the registry name (set by ``@register_model``).
        evaluation: the kinds of evaluation that apply: ``distribution`` (FID, KID, IS, PR, DC of
            outputs against real images), ``paired`` (PSNR/SSIM of :meth:`predict` against the batch's
            target), ``likelihood`` (:meth:`log_likelihood`: ``nll`` in nats and bits/dim).
    """

    Config: ClassVar[type]
    model_name: ClassVar[str] = ""
    evaluation: ClassVar[tuple[str, ...]] = ("distribution",)
    #: trainer options whose CLI default differs for this model (``imagegen train MODEL`` shows and uses
    #: them unless the user gives the option), e.g. ``{"batch_size": 1}`` for the papers that train
    #: with one image per step; code that builds a :class:`~imagegen.training.TrainConfig` itself sets them
    train_defaults: ClassVar[dict[str, Any]] = {}
    #: named sets of model-option values (a published configuration), chosen with ``imagegen train MODEL
    #: --preset NAME``; options given on the command line override them; {} = no ``--preset`` option
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: whether :meth:`log_likelihood` is exact (autoregressive models) rather than an estimate
    #: (importance-weighted bounds of latent-variable models)
    exact_likelihood: ClassVar[bool] = False
    #: whether the model has a mapping network from z to per-layer w (StyleGAN family): its ``sample``
    #: takes ``truncation_psi``, ``truncation_cutoff`` and ``noise_mode``, and it offers ``mapping(z,
    #: labels, truncation_psi, truncation_cutoff) -> ws [N, num_ws, w_dim]``, ``synthesize(ws, noise_mode,
    #: generator) -> img`` and ``num_ws``
    has_style_latents: ClassVar[bool] = False
    #: directions :meth:`translate` maps, e.g. ``("AB", "BA")`` for CycleGAN, ``("AB",)`` for pix2pix
    #: and the restoration models (degraded → clean); empty for models that only sample
    directions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any) -> None:
        """Raises:
            ConfigError: a ``Literal`` option of ``config`` outside its choices (:func:`check_choices`)."""
        super().__init__()
        check_choices(config)
        self.config = config

    # ---- data ---------------------------------------------------------------------------------------
    @classmethod
    def data_resolution(cls, config: Any) -> Optional[int]:
        """Square size the training data is loaded at (default ``config.resolution``, None to keep the
        images' own size); a model that crops at random while training loads larger (``adain``'s
        ``load_size``)."""
        return getattr(config, "resolution", None)

    @classmethod
    def data_sources(cls) -> list[DataSource]:
        """The data the model trains on (default: one image dataset → fields ``img``, ``label``)."""
        return [DataSource()]

    # ---- training ---------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimisers by name (e.g. ``{"G": Adam(...), "D": Adam(...)}``)."""
        raise NotImplementedError

    def lr_schedules(self) -> dict[str, LRSchedule]:
        """Learning-rate factors by optimiser name (default: none, a constant rate).

        The trainer sets every parameter group's ``lr`` to ``initial_lr × factor(ctx)`` before each
        step and checkpoints the optimisers (``initial_lr`` included). A schedule is a function of
        the step context, so when ``--resume`` gives a run a new ``--steps``, schedules written in
        terms of ``ctx.total_steps`` stretch to the new end from the current step on (e.g. a linear
        decay to zero then reaches zero at the new last step).
        """
        return {}

    def lr_schedules_need_length(self) -> bool:
        """Whether :meth:`lr_schedules` read ``ctx.total_steps`` (default: yes). A run with ``--minutes``
        only has no length, so the trainer refuses such schedules there; a model whose schedules depend on
        ``ctx.step`` alone (e.g. inverse-time decay) returns False and trains open-ended."""
        return True

    def phases(self) -> list[Phase]:
        """The phases of one training step, in order (e.g. ``[Phase("D"), Phase("G")]``)."""
        raise NotImplementedError

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        """Compute one phase's loss.

        Args:
            phase: the phase name.
            batch: tensors by field name (see :meth:`data_sources`); for the default source ``img``
                float32 [B, C, H, W] in [-1, 1] and ``label`` int64 [B] (-1 for unlabelled data). For
                ``needs_batch=False`` phases, the step's most recent batch.

        Returns:
            dict with ``"loss"`` (scalar tensor to backpropagate) and other detached scalars to log.
        """
        raise NotImplementedError

    def forward(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        """Entry point used by the trainer (so DistributedDataParallel sees the computation)."""
        return self.training_step(phase, batch)

    def before_step(self, ctx: StepContext) -> None:
        """Called before the phases of every step (``ctx.step`` = steps completed so far)."""

    def after_step(self, ctx: StepContext) -> None:
        """Called after all phases of a step (``ctx.step`` includes it; e.g. the EMA update)."""

    def training_state(self) -> dict[str, Any]:
        """State that is not a weight but changes during training (image pools, augmentation
        probability, running means): plain data (tensors, numbers, strings, lists, dicts) that the
        trainer saves in ``trainer_state.pt`` and gives back to :meth:`load_training_state` on resume.
        Tensors registered as buffers are weights (saved with the model) and do not belong here."""
        return {}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`training_state` returned."""
        if state:
            raise NotImplementedError(f"{self.model_name} saved training state but cannot load it")

    def training_modules(self) -> dict[str, nn.Module]:
        """Trained networks by name, for parameter counts (default: the children with parameters,
        excluding EMA copies whose names end in ``_ema``)."""
        return {n: m for n, m in self.named_children()
                if not n.endswith("_ema") and any(True for _ in m.parameters())}

    # ---- using the model ----------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of classes the model is conditioned on (0 = unconditional)."""
        return int(getattr(self.config, "num_classes", 0) or 0)

    @property
    def can_sample(self) -> bool:
        """Whether :meth:`sample` draws images from noise (GANs, VAEs, autoregressive models)."""
        return type(self).sample is not GenerativeModel.sample

    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Draw ``n`` samples.

        Args:
            n: number of images.
            generator: torch.Generator (on the model's device) for reproducible sampling.
            labels: int64 [n] class labels for conditional models (uniform at random if None).

        Returns:
            float32 [n, C, H, W] in [-1, 1], on the model's device. Runs in eval mode without grad
            (using the EMA weights where the model keeps them).

        Raises:
            ConfigError: the model transforms inputs and cannot sample from noise (use :meth:`predict`).
        """
        raise ConfigError(f"{self.model_name} does not sample from noise; it transforms input images "
                          "(use its predict / translate / restore commands)")

    def predict(self, batch: Batch, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Output images for a batch of the model's inputs, in eval mode without grad.

        The default (models that sample) draws one sample per item of ``batch["label"]`` (or
        ``batch["n"]``-many unconditional samples, a 0-d int64 tensor). Models that transform images
        override it: e.g. a restorer maps ``batch["input"]`` to its restoration.

        Returns:
            float32 [N, C, H, W] in [-1, 1] on the model's device.
        """
        labels = batch.get("label")
        if labels is not None:
            n = len(labels)
            labels = labels if self.num_classes else None
        else:
            n = int(batch["n"])
        return self.sample(n, generator=generator, labels=labels)

    @property
    def size_multiple(self) -> int:
        """:meth:`translate` accepts inputs whose height and width are multiples of this (e.g. 4 for a
        ResNet generator with two stride-2 convolutions, 2**depth for a U-Net); callers pad to it."""
        return 1

    def translate(self, img: torch.Tensor, direction: str = "AB",
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Map images of one domain to the other (image-to-image models), eval mode without grad.

        Args:
            img: float32 [N, C_in, H, W] in [-1, 1]; H and W multiples of :attr:`size_multiple` (fully
                convolutional models take any such size, not only the training resolution).
            direction: one of :attr:`directions` (``"AB"``: domain A → B, ``"BA"``: B → A).
            generator: for stochastic models (e.g. random masks); deterministic models ignore it.

        Returns:
            float32 [N, C_out, H', W'] in [-1, 1] on the model's device (H' = H except for
            super-resolution, where H' = scale × H).

        Raises:
            ConfigError: the model does not translate images, or not in ``direction``.
        """
        self.check_direction(direction)
        raise NotImplementedError(f"{self.model_name} declares directions but does not implement translate")

    def check_direction(self, direction: str) -> None:
        """Raise :class:`ConfigError` unless ``direction`` is one of :attr:`directions`."""
        if not self.directions:
            raise ConfigError(f"{self.model_name} does not translate images; translate and restore need an "
                              "image-to-image run (e.g. cyclegan, pix2pix, or a restoration model)")
        if direction not in self.directions:
            raise ConfigError(f"--direction {direction}: {self.model_name} translates "
                              f"{' and '.join(self.directions)} only")

    def preview(self, batch: Batch, generator: torch.Generator, n: int) -> tuple[torch.Tensor, Optional[int]]:
        """The training-time preview grid from a fixed batch (drawn once per run, the same at every
        call) and a generator seeded identically at every call.

        The default draws ``n`` samples, class ``i mod K`` in column ``i`` for conditional models.
        Models that transform images show inputs beside outputs (and targets).

        Returns:
            ``(images, nrow)``: float32 [M, C, H, W] in [-1, 1] and the grid's images per row (None:
            square).
        """
        k = self.num_classes
        labels = (torch.arange(n, device=self.device) % k) if k else None
        return self.sample(n, generator=generator, labels=labels), (k or None)

    def log_likelihood(self, batch: Batch, *, generator: Optional[torch.Generator] = None,
                       num_samples: int = 1) -> dict[str, torch.Tensor]:
        """log p(x) of each image of ``batch`` in nats (likelihood models only).

        Args:
            batch: as in training (``img`` float32 [N, C, H, W] in [-1, 1], ``label`` for conditional
                models).
            generator: for stochastic estimates (importance samples, binarisation).
            num_samples: importance samples per image for latent-variable models (IWAE; exact models
                ignore it).

        Returns:
            dict with ``log_px`` float64 [N] (nats; an estimate for latent-variable models) and
            optionally other per-image bounds (e.g. ``elbo``).

        Raises:
            ConfigError: the model has no likelihood.
        """
        raise ConfigError(f"{self.model_name} has no likelihood; the nll metric needs a likelihood "
                          "model (e.g. vae, cvae)")

    def likelihood_targets(self, img: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """What :meth:`log_likelihood` scores for images float32 [N, C, H, W] in [-1, 1]: the images
        themselves (the default), or e.g. a binarisation for Bernoulli models, drawn with ``generator``
        so that an evaluation scores the same targets every time."""
        return img

    @property
    def has_likelihood(self) -> bool:
        """Whether :meth:`log_likelihood` is implemented."""
        return type(self).log_likelihood is not GenerativeModel.log_likelihood

    @property
    def num_dims(self) -> int:
        """Pixel values per image D = C·H·W (for bits/dim = nats / (D ln 2))."""
        c = getattr(self.config, "channels", None) or 1
        return c * self.config.resolution ** 2

    # ---- latent space and encoder (optional; used by interpolation and reconstruction) ----------
    def sample_latents(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw ``n`` latents from the model's prior (e.g. z [n, z_dim] float32 ~ N(0, I)).

        Raises:
            ConfigError: the model has no latent space (the default; latent models override this).
        """
        raise ConfigError(f"{self.model_name} has no latent space to sample or interpolate; use a "
                          "latent-variable model (e.g. dcgan, cgan, vae, cvae, aae)")

    def generate(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Map latents from :meth:`sample_latents` (and int64 [N] labels for conditional models) to
        images float32 [N, C, H, W] in [-1, 1], in eval mode without grad.

        Raises:
            ConfigError: the model has no latent space.
        """
        raise ConfigError(f"{self.model_name} has no latent space to generate from")

    def encode(self, img: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Encode images float32 [N, C, H, W] in [-1, 1] to latents [N, z_dim] (the posterior mean
        for VAEs), in eval mode without grad.

        Raises:
            ConfigError: the model has no encoder (the default; encoder models override this).
        """
        raise ConfigError(f"{self.model_name} has no encoder; encoding and reconstruction need an "
                          "autoencoder model (e.g. vae, cvae, aae)")

    def decode(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Decode latents [N, z_dim] to images float32 [N, C, H, W] in [-1, 1] (the mean of the
        decoder's distribution), in eval mode without grad.

        Raises:
            ConfigError: the model has no decoder.
        """
        raise ConfigError(f"{self.model_name} has no encoder/decoder pair; use an autoencoder model "
                          "(e.g. vae, cvae, aae)")

    @property
    def has_latents(self) -> bool:
        """Whether :meth:`sample_latents` and :meth:`generate` are implemented."""
        return type(self).sample_latents is not GenerativeModel.sample_latents

    @property
    def has_encoder(self) -> bool:
        """Whether :meth:`encode` and :meth:`decode` are implemented."""
        return type(self).encode is not GenerativeModel.encode

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def extra_repr(self) -> str:
        return f"config={self.config}"


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) in ``module``."""
    return sum(p.numel() for p in module.parameters())
