"""The training data streams: one per data source, each an epoch-seeded permutation, sharded per
process and resumable mid-epoch."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch.utils.data.distributed import DistributedSampler

from ..errors import ConfigError
from ..models.base import Batch, DataSource
from .distributed import DistInfo


class BatchStream:
    """Yields this process's batches of one data source, in an order that depends only on the seed,
    the epoch and the number of batches drawn so far — so a resumed run sees exactly the batches an
    uninterrupted one would have seen.

    Every epoch is a fresh permutation (``DistributedSampler`` with ``seed`` and ``set_epoch``), split
    across processes; the last incomplete batch is dropped. Batches are moved to ``device`` (channels-last
    if asked) and augmented with a dedicated ``torch.Generator`` whose state is checkpointed; the two
    images of a pair get the same flip, crop, rotation, smoothing and colour jitter.

    Args:
        dataset: the source's dataset: ``get_batch(indices)`` returns ``(img, label)`` for an image
            dataset or ``(a, b, label)`` for a paired one (float32 [B, C, H, W] in [-1, 1], int64 [B]).
        source: the model's :class:`~imagegen.models.base.DataSource` (which batch fields to fill).
        batch: images per batch on this process.
        dist: this process's rank and the world size.
        seed: the run's seed (each source's order also depends on its position ``index``).
        device: where batches go.
        channels_last: convert images to the channels-last memory format.
        augment: an :class:`imagegen.data.augment.AugmentConfig`, or None for no augmentation.
        index: the source's position among the model's sources (0 for the main source, whose order
            is the same as in earlier versions).

    Raises:
        ConfigError: the dataset holds fewer images than one batch per process.
    """

    def __init__(self, dataset: Any, source: DataSource, batch: int, dist: DistInfo, seed: int,
                 device: torch.device, channels_last: bool = False, augment: Optional[Any] = None,
                 index: int = 0, workers: int = 0) -> None:
        self.dataset, self.source, self.batch, self.device = dataset, source, batch, device
        self.channels_last, self.augment = channels_last, augment
        stream_seed = seed + 1_000_003 * index
        self._sampler_args = dict(num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=stream_seed,
                                  drop_last=True)
        self.sampler = DistributedSampler(range(len(dataset)), **self._sampler_args)
        # worker processes decode ahead (streamed image datasets); the order stays the same
        self.workers = workers if hasattr(dataset, "get_batch_uint8") else 0
        self._prefetched: Optional[Any] = None
        self.batches_per_epoch = len(self.sampler) // batch
        if self.batches_per_epoch == 0:
            what = f"--data-{source.name}" if source.name else "dataset"
            raise ConfigError(f"{what} {dataset.name} has {len(dataset)} images, fewer than one batch of "
                              f"{batch * dist.world_size}; lower --batch-size")
        self.batches_drawn = 0
        self.generator = torch.Generator(device=device).manual_seed(stream_seed * 7919 + 17 + dist.rank)
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.int64)

    def _prepare(self, img: torch.Tensor) -> torch.Tensor:
        img = img.to(self.device, non_blocking=True)
        return img.contiguous(memory_format=torch.channels_last) if self.channels_last else img

    def next(self) -> Batch:
        """The next batch as fields of the source (e.g. ``img`` float32 [B, C, H, W] in [-1, 1] and
        ``label`` int64 [B], -1 if unlabelled)."""
        if self.workers:
            if self._prefetched is None:
                from ..data import iterate_batches

                self._prefetched = iterate_batches(self.dataset, self._index_batches(self.batches_drawn), self.workers)
            images = list(next(self._prefetched))
            label = images.pop()
        else:
            epoch, pos = divmod(self.batches_drawn, self.batches_per_epoch)
            if epoch != self._epoch:
                self.sampler.set_epoch(epoch)
                self._epoch, self._order = epoch, torch.tensor(list(iter(self.sampler)))
            *images, label = self.dataset.get_batch(self._order[pos * self.batch:(pos + 1) * self.batch])
        self.batches_drawn += 1
        images = [self._prepare(x) for x in images]
        if self.augment is not None:
            from ..data.augment import augment

            groups = [x.shape[1] for x in images]
            joint = augment(torch.cat(images, 1), self.augment, self.generator, groups)  # pairs: one transform
            images = list(joint.split(groups, 1))
        return self.fields(images, label.to(self.device, non_blocking=True))

    def fields(self, images: list[torch.Tensor], label: torch.Tensor) -> Batch:
        """Name a dataset batch's tensors by the source's keys (image, target for pairs, label)."""
        keys = [self.source.image_key] + ([self.source.target_key] if self.source.kind == "paired" else [])
        out = dict(zip(keys, images))
        if self.source.label_key:
            out[self.source.label_key] = label
        return out

    def _index_batches(self, start: int):
        """Endless index batches from batch ``start`` on, in the order :meth:`next` uses (its own
        sampler, since the workers' loader reads ahead)."""
        sampler = DistributedSampler(range(len(self.dataset)), **self._sampler_args)
        epoch, pos = divmod(start, self.batches_per_epoch)
        while True:
            sampler.set_epoch(epoch)
            order = torch.tensor(list(iter(sampler)))
            for p in range(pos, self.batches_per_epoch):
                yield order[p * self.batch:(p + 1) * self.batch]
            epoch, pos = epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        return {"batches_drawn": self.batches_drawn, "augment_rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], restore_rng: bool = True) -> None:
        self._prefetched = None
        self.batches_drawn = int(state["batches_drawn"])
        if restore_rng:
            self.generator.set_state(state["augment_rng"])


class DataStreams:
    """The streams of all of a model's sources; :meth:`next` draws one batch from each and merges
    their fields into one :data:`~imagegen.models.base.Batch`."""

    def __init__(self, streams: dict[str, BatchStream]) -> None:
        self.streams = streams

    @property
    def batch(self) -> int:
        """Items per batch on this process (the same for every source)."""
        return next(iter(self.streams.values())).batch

    @property
    def batches_per_epoch(self) -> int:
        """Batches in one epoch of the largest source (CycleGAN's convention: an epoch is a pass over
        the larger domain)."""
        return max(s.batches_per_epoch for s in self.streams.values())

    def next(self) -> Batch:
        out: Batch = {}
        for s in self.streams.values():
            out.update(s.next())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {name: s.state_dict() for name, s in self.streams.items()}

    def load_state_dict(self, state: dict[str, Any], restore_rng: bool = True) -> None:
        if "batches_drawn" in state:  # format 1: the single stream's state
            state = {"": state}
        missing = sorted(set(self.streams) - set(state))
        if missing:
            raise ConfigError(f"the checkpoint has no data-stream state for source(s) {missing}")
        for name, s in self.streams.items():
            s.load_state_dict(state[name], restore_rng)

    def preview_batch(self, n: int, seed: int) -> Batch:
        """A fixed batch of up to ``n`` items per source (a seeded choice, the same at every call and
        on every process, independent of the training order), for preview grids."""
        out: Batch = {}
        for s in self.streams.values():
            g = torch.Generator().manual_seed(seed)
            idx = torch.randperm(len(s.dataset), generator=g)[:n]
            *images, label = s.dataset.get_batch(idx)
            out.update(s.fields([x.to(s.device) for x in images], label.to(s.device)))
        return out
