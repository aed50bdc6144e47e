"""Small models of the shapes the contract serves beyond one labelled dataset, for the contract tests.

* :class:`UnpairedPool` — two unpaired sources ``a`` and ``b`` (fields ``A`` and ``B``), a history
  pool of generated images (training state that is not a weight, Shrivastava et al. 2017 §2.3 as
  CycleGAN uses it), a linear learning-rate decay to zero over the run (Zhu et al. 2017 §4), and a
  step-context schedule (the pool is used only after ``warmup`` steps). ``forget_state=True`` makes
  a model that keeps the pool but does not declare it, which the exact-resume check must catch.
* :class:`PairedL1` — one paired source (fields ``A``, ``B``), trained with an L1 loss to map A to B,
  evaluated by paired metrics, previewed as input | output | target.

Both translate A → B (``directions = ("AB",)``, :meth:`~imagegen.models.base.GenerativeModel.translate`).

* :class:`TinyRestorer` (and :class:`TinyUpscaler`, :class:`TinyInpainter`) — restoration models of the
  image-to-image contract (``restoration_task``, ``restore(degraded, mask)``, a ``degradation`` config
  field) whose outputs are known exactly: a 1×1 convolution (the identity unless re-initialised), then
  missing pixels set to white (inpainting) or nearest-neighbour upsampling by ``scale`` (super-resolution);
  ``size_multiple`` is a config field, and inputs of other sizes are refused as real models do.

They are registered only inside the tests that use them (monkeypatched into the registry).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from imagegen.config import help_field
from imagegen.errors import ConfigError
from imagegen.models.base import Batch, DataSource, GenerativeModel, Phase, StepContext
from imagegen.nn import adam


@dataclasses.dataclass
class TinyConfig:
    resolution: int = help_field(8, "image size")
    channels: Optional[int] = help_field(None, "channels")
    pool_size: int = help_field(4, "history pool size")
    warmup: int = help_field(2, "steps before the pool is used")
    lr: float = help_field(1e-2, "learning rate")


def _net(c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, c, 3, padding=1), nn.Tanh())


class UnpairedPool(GenerativeModel):
    """G_AB maps A to B; D_B tells real B from pooled fakes (LSGAN loss)."""

    Config = TinyConfig
    forget_state = False
    directions = ("AB",)

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        c = config.channels or 1
        self.G_AB = _net(c)
        self.D_B = nn.Sequential(nn.Conv2d(c, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 4))
        self.pool: list[torch.Tensor] = []
        self.use_pool = False

    @classmethod
    def data_sources(cls) -> list[DataSource]:
        return [DataSource("a", image_key="A", label_key=None, help="domain A images"),
                DataSource("b", image_key="B", label_key=None, help="domain B images")]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": adam(self.G_AB.parameters(), self.config.lr), "D": adam(self.D_B.parameters(), self.config.lr)}

    def lr_schedules(self) -> dict[str, Any]:
        decay = lambda ctx: 1.0 - ctx.step / max(1, ctx.total_steps)  # noqa: E731 - linear to zero at the end
        return {"G": decay, "D": decay}

    def phases(self) -> list[Phase]:
        return [Phase("G"), Phase("D", needs_batch=False)]

    def before_step(self, ctx: StepContext) -> None:
        self.use_pool = ctx.step >= self.config.warmup

    def _query_pool(self, fake: torch.Tensor) -> torch.Tensor:
        """Return a batch mixing new fakes and stored ones (random 50 %), storing the new ones."""
        out = []
        for img in fake.detach():
            if len(self.pool) < self.config.pool_size:
                self.pool.append(img.clone())
                out.append(img)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(len(self.pool), ()))
                out.append(self.pool[i].clone())
                self.pool[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        if phase == "G":
            self._fake = self.G_AB(batch["A"])
            return {"loss": (self.D_B(self._fake) - 1).square().mean()}
        fake = self._query_pool(self._fake) if self.use_pool else self._fake.detach()
        loss = 0.5 * ((self.D_B(batch["B"]) - 1).square().mean() + self.D_B(fake).square().mean())
        return {"loss": loss}

    def training_state(self) -> dict[str, Any]:
        return {} if self.forget_state else {"pool": [p.cpu() for p in self.pool]}

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.pool = [p.to(self.device) for p in state.get("pool", [])]

    @torch.no_grad()
    def predict(self, batch: Batch, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.G_AB(batch["A"].to(self.device))

    def preview(self, batch: Batch, generator: torch.Generator, n: int) -> tuple[torch.Tensor, Optional[int]]:
        a = batch["A"][:n]
        return torch.cat([a, self.predict({"A": a})]), len(a)

    def translate(self, img: torch.Tensor, direction: str = "AB",
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
        self.check_direction(direction)
        return self.predict({"A": img})


class ForgetfulPool(UnpairedPool):
    """Keeps the pool across steps but does not declare it as training state."""

    forget_state = True


class PairedL1(GenerativeModel):
    """A → B with an L1 loss on aligned pairs."""

    Config = TinyConfig
    evaluation = ("paired",)
    directions = ("AB",)

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.G = _net(config.channels or 1)

    @classmethod
    def data_sources(cls) -> list[DataSource]:
        return [DataSource(kind="paired", image_key="A", target_key="B", label_key=None, help="A|B pairs")]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": adam(self.G.parameters(), self.config.lr)}

    def phases(self) -> list[Phase]:
        return [Phase("G")]

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        return {"loss": F.l1_loss(self.G(batch["A"]), batch["B"])}

    @torch.no_grad()
    def predict(self, batch: Batch, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        was = self.training
        self.eval()
        try:
            return self.G(batch["A"].to(self.device))
        finally:
            self.train(was)

    def preview(self, batch: Batch, generator: torch.Generator, n: int) -> tuple[torch.Tensor, Optional[int]]:
        a, b = batch["A"][:n], batch["B"][:n]
        return torch.cat([a, self.predict({"A": a}), b]), len(a)

    def translate(self, img: torch.Tensor, direction: str = "AB",
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
        self.check_direction(direction)
        return self.predict({"A": img})


def _default_degradation() -> dict[str, Any]:
    return {"task": "denoise", "sigma": 25.0}


@dataclasses.dataclass
class RestorerConfig:
    resolution: int = help_field(8, "image size")
    channels: Optional[int] = help_field(1, "channels")
    multiple: int = help_field(4, "size_multiple: inputs' sides must be multiples of it")
    scale: int = help_field(1, "super-resolution factor")
    degradation: dict[str, Any] = dataclasses.field(default_factory=_default_degradation,
                                                    metadata={"help": "what the model undoes", "cli": False})


class TinyRestorer(GenerativeModel):
    """A denoiser whose output is a 1×1 convolution of its input (the identity at initialisation)."""

    Config = RestorerConfig
    evaluation = ("paired",)
    directions = ("AB",)
    restoration_task = "denoise"

    def __init__(self, config: RestorerConfig) -> None:
        super().__init__(config)
        c = config.channels or 1
        self.net = nn.Conv2d(c, c, 1)
        with torch.no_grad():
            self.net.weight.copy_(torch.eye(c)[:, :, None, None])
            self.net.bias.zero_()

    @property
    def size_multiple(self) -> int:
        return self.config.multiple

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": adam(self.net.parameters(), 1e-3)}

    def phases(self) -> list[Phase]:
        return [Phase("G")]

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        return {"loss": self.net(batch["img"]).abs().mean()}

    @torch.no_grad()
    def restore(self, degraded: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """degraded [N, C, H, W] in [-1, 1] (H, W multiples of ``multiple``) → [N, C, s·H, s·W]."""
        h, w = degraded.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ConfigError(f"{self.model_name} needs sides that are multiples of {self.size_multiple}, not {w}x{h}")
        out = self.net(degraded).clamp(-1, 1)
        if self.restoration_task == "inpaint":
            if mask is None:  # the default: the centre quarter of the area
                mask = torch.zeros(len(out), 1, h, w, dtype=torch.bool, device=out.device)
                mask[..., h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = True
            out = torch.where(mask, torch.ones_like(out), out)
        elif mask is not None:
            raise ValueError("only inpainting models take masks")
        return F.interpolate(out, scale_factor=self.config.scale, mode="nearest") if self.config.scale > 1 else out

    def translate(self, img: torch.Tensor, direction: str = "AB",
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
        self.check_direction(direction)
        return self.restore(img)


class TinyUpscaler(TinyRestorer):
    """Super-resolution by nearest-neighbour upsampling (``scale`` in the config)."""

    restoration_task = "super-resolution"


class TinyInpainter(TinyRestorer):
    """Fills missing pixels with white (the centre when no mask is given)."""

    restoration_task = "inpaint"
