"""The training data stream: an epoch-seeded permutation, sharded per process, resumable mid-epoch."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch.utils.data.distributed import DistributedSampler

from ..data import ImageDataset
from ..errors import ConfigError
from .distributed import DistInfo


class BatchStream:
    """Yields this process's batches of an in-memory dataset, in an order that depends only on the seed,
    the epoch and the number of batches drawn so far — so a resumed run sees exactly the batches an
    uninterrupted one would have seen.

    Every epoch is a fresh permutation (``DistributedSampler`` with ``seed`` and ``set_epoch``), split
    across processes; the last incomplete batch is dropped. Batches are moved to ``device`` (channels-last
    if asked) and augmented with a dedicated ``torch.Generator`` whose state is checkpointed.

    Args:
        dataset: the training set.
        batch: images per batch on this process.
        dist: this process's rank and the world size.
        seed: the run's seed.
        device: where batches go.
        channels_last: convert images to the channels-last memory format.
        augment: an :class:`imagegen.data.augment.AugmentConfig`, or None for no augmentation.

    Raises:
        ConfigError: the dataset holds fewer images than one batch per process.
    """

    def __init__(self, dataset: ImageDataset, batch: int, dist: DistInfo, seed: int, device: torch.device,
                 channels_last: bool = False, augment: Optional[Any] = None) -> None:
        self.dataset, self.batch, self.device = dataset, batch, device
        self.channels_last, self.augment = channels_last, augment
        self.sampler = DistributedSampler(range(len(dataset)), num_replicas=dist.world_size, rank=dist.rank,
                                          shuffle=True, seed=seed, drop_last=True)
        self.batches_per_epoch = len(self.sampler) // batch
        if self.batches_per_epoch == 0:
            raise ConfigError(f"dataset {dataset.name} has {len(dataset)} images, fewer than one batch of "
                              f"{batch * dist.world_size}; lower --batch-size")
        self.batches_drawn = 0
        self.generator = torch.Generator(device=device).manual_seed(seed * 7919 + 17 + dist.rank)
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.int64)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch: img float32 [B, C, H, W] in [-1, 1], label int64 [B] (-1 if unlabelled)."""
        epoch, pos = divmod(self.batches_drawn, self.batches_per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch, self._order = epoch, torch.tensor(list(iter(self.sampler)))
        img, label = self.dataset.get_batch(self._order[pos * self.batch:(pos + 1) * self.batch])
        self.batches_drawn += 1
        img = img.to(self.device, non_blocking=True)
        if self.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        if self.augment is not None:
            from ..data.augment import augment

            img = augment(img, self.augment, self.generator)
        return img, label.to(self.device, non_blocking=True)

    def state_dict(self) -> dict[str, Any]:
        return {"batches_drawn": self.batches_drawn, "augment_rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], restore_rng: bool = True) -> None:
        self.batches_drawn = int(state["batches_drawn"])
        if restore_rng:
            self.generator.set_state(state["augment_rng"])
