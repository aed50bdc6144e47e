"""The contract between a model and the shared :class:`~imagegen.training.Trainer`.

A model is an ``nn.Module`` with a ``Config`` dataclass, registered by name with
:func:`imagegen.registry.register_model`. It declares its optimisers and its phases; the trainer runs
the phases in order every step and owns everything else (devices, seeds, data, progress, logging,
checkpoints, resume, distributed training). Adding a model touches only its own file::

    @register_model("mymodel")
    class MyModel(GenerativeModel):
        Config = MyConfig
        def configure_optimizers(self): return {"G": Adam(self.G.parameters()), ...}
        def phases(self): return [Phase("D"), Phase("G", needs_batch=False)]
        def training_step(self, phase, img, label): ... return {"loss": loss, "d_real": ...}
        def sample(self, n, generator=None, labels=None): ...

Before each phase the trainer enables gradients only for the parameters of that phase's optimiser
(so e.g. D's weight gradients are not computed in G's phase), zeroes them, calls the model (through
DistributedDataParallel when distributed), backpropagates ``out["loss"]`` and steps the optimiser.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Optional

import torch
from torch import nn

from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Phase:
    """One optimisation phase of a training step.

    Attributes:
        name: phase name, used as the prefix of its logged scalars (``D/loss``) and as the default
            optimiser name.
        optimizer: key of the optimiser (in :meth:`GenerativeModel.configure_optimizers`) that this
            phase steps; defaults to ``name``.
        needs_batch: whether the phase draws a fresh batch of real data. A phase that does not is
            given the step's most recent batch again (e.g. a GAN's G phase uses it only for the batch
            size and, in conditional models, the labels).
        every: run the phase only on steps where ``step % every == 0`` (lazy regularisation).
    """

    name: str
    optimizer: Optional[str] = None
    needs_batch: bool = True
    every: int = 1

    @property
    def optimizer_name(self) -> str:
        return self.optimizer or self.name


class GenerativeModel(nn.Module):
    """Base class of every imagegen model.

    Subclasses set ``Config`` (a dataclass with at least ``resolution`` and ``channels`` fields and,
    for conditional models, ``num_classes``) and implement the abstract methods below.

    Attributes:
        config: the model's config dataclass (saved as ``config.json`` beside the weights).
        model_name: the registry name (set by ``@register_model``).
    """

    Config: ClassVar[type]
    model_name: ClassVar[str] = ""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    # ---- training ---------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimisers by name (e.g. ``{"G": Adam(...), "D": Adam(...)}``)."""
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        """The phases of one training step, in order (e.g. ``[Phase("D"), Phase("G")]``)."""
        raise NotImplementedError

    def training_step(self, phase: str, img: Optional[torch.Tensor],
                      label: Optional[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Compute one phase's loss.

        Args:
            phase: the phase name.
            img: real images float32 [B, C, H, W] in [-1, 1] (for ``needs_batch=False`` phases, the
                step's most recent batch).
            label: int64 [B] class labels (-1 for unlabelled data).

        Returns:
            dict with ``"loss"`` (scalar tensor to backpropagate) and other detached scalars to log.
        """
        raise NotImplementedError

    def forward(self, phase: str, img: Optional[torch.Tensor] = None,
                label: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """Entry point used by the trainer (so DistributedDataParallel sees the computation)."""
        return self.training_step(phase, img, label)

    def after_step(self, step: int) -> None:
        """Called after all phases of a step, with the number of completed steps (e.g. EMA update)."""

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
        """
        raise NotImplementedError

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
