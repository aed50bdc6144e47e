"""Small models of the shapes the contract serves beyond one labelled dataset, for the contract tests.

* :class:`UnpairedPool` — two unpaired sources ``a`` and ``b`` (fields ``A`` and ``B``), a history
  pool of generated images (training state that is not a weight, Shrivastava et al. 2017 §2.3 as
  CycleGAN uses it), a linear learning-rate decay to zero over the run (Zhu et al. 2017 §4), and a
  step-context schedule (the pool is used only after ``warmup`` steps). ``forget_state=True`` makes
  a model that keeps the pool but does not declare it, which the exact-resume check must catch.
* :class:`PairedL1` — one paired source (fields ``A``, ``B``), trained with an L1 loss to map A to B,
  evaluated by paired metrics, previewed as input | output | target.

They are registered only inside the tests that use them (monkeypatched into the registry).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from imagegen.config import help_field
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


class ForgetfulPool(UnpairedPool):
    """Keeps the pool across steps but does not declare it as training state."""

    forget_state = True


class PairedL1(GenerativeModel):
    """A → B with an L1 loss on aligned pairs."""

    Config = TinyConfig
    evaluation = ("paired",)

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
