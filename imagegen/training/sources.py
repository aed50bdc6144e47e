"""Building the datasets of a model's data sources from the train config."""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from ..data import build_dataset
from ..errors import ConfigError, DataError
from ..models.base import DataSource
from .config import TrainConfig


def source_options(cfg: TrainConfig, source: DataSource) -> dict[str, Any]:
    """``{data, data_root, split}`` of ``source``: the main options for the unnamed source, else
    ``cfg.sources[name]``.

    Raises:
        ConfigError: a named source without data (names the missing ``--data-NAME`` option).
    """
    if not source.name:
        return {"data": cfg.data, "data_root": cfg.data_root, "split": cfg.split}
    opts = dict(cfg.sources.get(source.name) or {})
    if not opts.get("data"):
        raise ConfigError(f"missing --data-{source.name}: the model trains on {source.help}; give its "
                          f"folder, .zip or dataset name with --data-{source.name}")
    return {"data": opts["data"], "data_root": opts.get("data_root"), "split": opts.get("split") or "train"}


def build_source(cfg: TrainConfig, source: DataSource, resolution: Optional[int], channels: Optional[int]) -> Any:
    """The dataset of one source at the model's resolution and channels.

    Returns:
        An :class:`~imagegen.data.ImageDataset` (``images``) or a
        :class:`~imagegen.data.paired.PairedDataset` (``paired``).

    Raises:
        ConfigError, DataError: missing options, missing or corrupt data.
    """
    opts = source_options(cfg, source)
    if source.kind == "paired":
        import os

        from ..data.paired import load_paired

        if not os.path.exists(opts["data"]):
            raise DataError(f"{opts['data']} does not exist; paired data is a folder or .zip with A/ and B/ "
                            "subfolders, or of side-by-side A|B images")
        return load_paired(opts["data"], resolution=resolution, channels=channels, resize=cfg.resize,
                           layout=cfg.paired_layout, strict=cfg.strict)
    return build_dataset(opts["data"], root=opts["data_root"], split=opts["split"], resolution=resolution,
                         channels=channels, resize=cfg.resize, strict=cfg.strict, storage=cfg.storage)


def fill_from_data(model_config: Any, dataset: Any) -> Any:
    """Fill ``channels`` and ``num_classes`` left as None from the main dataset; check the rest.

    Raises:
        ConfigError: a class-conditional model on unlabelled data.
    """
    updates: dict[str, Any] = {}
    fields = {f.name for f in dataclasses.fields(model_config)}
    if "channels" in fields and model_config.channels is None:
        updates["channels"] = dataset.channels
    if "num_classes" in fields and model_config.num_classes is None:
        if dataset.num_classes == 0:
            raise ConfigError(f"dataset {dataset.name} has no labels but the model is class-conditional; "
                              "use a labelled dataset (class subfolders for an image folder)")
        updates["num_classes"] = dataset.num_classes
    return dataclasses.replace(model_config, **updates) if updates else model_config


def describe(source: DataSource, dataset: Any) -> dict[str, Any]:
    """Facts about a source's dataset recorded in ``config.json``."""
    return {"name": dataset.name, "kind": source.kind, "num_images": len(dataset), "resolution": dataset.resolution,
            "channels": dataset.channels, "num_classes": dataset.num_classes,
            "class_names": getattr(dataset, "class_names", None)}
