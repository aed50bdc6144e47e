"""``imagegen evaluate``, ``imagegen train-classifier`` and ``imagegen report``: thin wrappers over
:mod:`imagegen.metrics` and :mod:`imagegen.report`."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import click
import numpy as np
import torch

from ..errors import CheckpointError, ConfigError, DataError
from ..sampling.api import SAMPLE_BATCH


def _info(msg: str) -> None:
    click.echo(msg, err=True)


# ---- inputs --------------------------------------------------------------------------------------
def load_fake_images(spec: str, data_root: Optional[str] = None, resolution: Optional[int] = None
                     ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Images to evaluate: an ``.npz`` (``images`` uint8 [N, H, W, C] or [N, H, W], optional ``labels``),
    an image folder / zip, or a named dataset split ``NAME[:SPLIT]`` (e.g. ``mnist:train``, to measure
    the floor of a metric: real images against the reference; loaded at ``resolution`` if given, bicubic).
    Returns uint8 [N, C, H, W] and int64 [N] labels (or None).

    Raises:
        DataError: missing or unreadable file, missing ``images`` array, wrong dtype or shape.
    """
    from ..data import build_dataset, dataset_loaders

    path = Path(spec)
    if not path.exists():
        name, _, split = spec.partition(":")
        if name in dataset_loaders():
            ds = build_dataset(name, root=data_root, split=split or "train", resolution=resolution)
            return ds.images, ds.labels
        raise DataError(f"--fake {spec}: no such file or folder (nor a dataset name such as mnist:train)")
    if path.is_file() and path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "images" not in z.files:
                    raise DataError(f"{path} has no 'images' array (found {', '.join(z.files) or 'nothing'}); "
                                    "save uint8 [N, H, W, C] images under the key 'images'")
                images = z["images"]
                labels = z["labels"] if "labels" in z.files else None
        except DataError:
            raise
        except Exception as e:  # zipfile/numpy raise several types for corrupt files
            raise DataError(f"cannot read {path}: {type(e).__name__}: {e}") from None
        if images.ndim == 3:
            images = images[..., None]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(f"{path}: 'images' must be uint8 [N, H, W, C] with C = 1 or 3, got {images.dtype} "
                            f"{list(images.shape)}")
        lab = None
        if labels is not None:
            if labels.shape != (len(images),):
                raise DataError(f"{path}: 'labels' must have shape [{len(images)}], got {list(labels.shape)}")
            lab = torch.from_numpy(labels.astype(np.int64))
        return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))), lab
    ds = build_dataset(str(path))
    return ds.images, None


def parse_real(real: Optional[str], data: Optional[str], split: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """``--real NAME[:SPLIT]`` or ``--real FOLDER`` or ``--data NAME --split SPLIT`` -> (name, split)."""
    if real and data:
        raise ConfigError("give the reference either as --real NAME:SPLIT or as --data NAME --split SPLIT, not both")
    if real:
        if os.path.exists(real) or ":" not in real:
            return real, split
        name, _, sp = real.rpartition(":")
        if split and sp != split:
            raise ConfigError(f"--real {real} and --split {split} disagree")
        return name, sp
    return data, split


def _kimg_of(ckpt_dir: Path, meta: dict[str, Any]) -> Optional[float]:
    from ..checkpoint import load_trainer_state

    try:
        return round(float(load_trainer_state(ckpt_dir)["images_seen"]) / 1000, 4)
    except (CheckpointError, KeyError, TypeError, ValueError):
        step, bs = meta.get("step"), (meta.get("train_config") or {}).get("batch_size")
        return round(step * bs / 1000, 4) if step is not None and bs else None


def _select_extractor(kind: str, weights: Optional[str], dataset: Optional[Any], classifier_data: Optional[str],
                      data_root: Optional[str], cache: Optional[str], need_classifier: bool,
                      classifier_root: Optional[str] = None):
    """(extractor, classifier or None, human-readable note). The classifier's dataset is read from
    ``classifier_root`` if given, else from ``data_root`` when it is the reference dataset, else from the
    dataset's default place (``$IMAGEGEN_DATA/<name>``)."""
    from ..metrics.classifier import load_or_train_classifier
    from ..metrics.inception import build_inception, find_inception_weights

    def classifier():
        name = classifier_data or (dataset.name if dataset is not None else None)
        if name is None:
            raise ConfigError("the dataset classifier needs a labelled dataset: give --classifier-data NAME")
        own = classifier_data is None or dataset is None or classifier_data == dataset.name
        root = classifier_root or (data_root if own else None)
        try:
            return load_or_train_classifier(name, data_root=root, cache=cache, log=_info)
        except DataError as e:  # --data-root is the reference's: name the option that reaches the classifier
            if root is None and not own:
                raise DataError(str(e).replace("pass --data-root", "pass --classifier-data-root")) from None
            raise

    if kind == "classifier" or (kind == "auto" and find_inception_weights(weights, cache) is None):
        clf = classifier()
        why = "no Inception weights found" if kind == "auto" else "--extractor classifier"
        note = (f"feature extractor: dataset classifier of {clf.dataset} ({why}; weights {clf.weights_hash[:12]}, "
                f"test accuracy {100 * (clf.test_accuracy or 0):.2f}%); values are comparable only with values "
                "from the same classifier, not with published Inception FIDs")
        return clf, clf, note
    inc = build_inception(weights, cache, download=kind == "inception")
    p = inc.protocol()
    note = (f"feature extractor: FID Inception-v3 (pytorch-fid port of the TF 2015-12-05 weights, sha256 "
            f"{p['weights_sha256'][:12]}{'' if p['standard_weights'] else ', NOT the standard file'}); "
            "resize: bilinear to 299x299 as pytorch-fid")
    clf = classifier() if need_classifier else None
    return inc, clf, note


def _format_table(metrics: dict[str, float]) -> str:
    width = max([len("metric"), *map(len, metrics)]) + 2
    rows = []
    for k, v in metrics.items():
        if k.endswith("_std"):
            continue
        std = metrics.get(f"{k}_std")
        text = f"{v:.6g}" + (f" ± {std:.2g}" if std is not None else "")
        rows.append(f"  {k:<{width}}{text}")
    return "\n".join([f"  {'metric':<{width}}value", *rows])


# ---- evaluate ---------------------------------------------------------------------------------------
@click.command(context_settings={"show_default": True})
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--fake", default=None,
              help="images instead of a run: .npz ('images' uint8 [N,H,W,C], optional 'labels'), a folder/zip of "
                   "images, or NAME:SPLIT of a dataset (e.g. mnist:train, for the floor)")
@click.option("--real", default=None, help="reference set: NAME[:SPLIT] (e.g. mnist:test) or an image folder/zip")
@click.option("--data", default=None, help="reference dataset name or path (default for a run: its training data)")
@click.option("--split", default=None, help="reference split (default: test for named datasets)")
@click.option("--data-root", default=None, help="directory holding the reference dataset's files")
@click.option("--metrics", "metrics_spec", default=None,
              help="comma-separated: fid,kid,is,pr,dc,nn,acc,modes,cas,ppl,nll (default fid,kid,is,pr,dc; plus acc "
                   "for conditional runs)")
@click.option("--num-samples", type=int, default=10000,
              help="generated samples (a run), or a random subset of N of the --fake images (drawn with --seed)")
@click.option("--num-real", type=int, default=None, help="use a seeded subset of N reference images (default: all)")
@click.option("--seed", type=int, default=0,
              help="seed of sample generation and KID subsets; for restoration runs also the degradation seed "
                   "(image i degraded as `imagegen degrade --seed` does)")
@click.option("--batch-size", type=int, default=SAMPLE_BATCH,
              help="images per forward pass; the statistics do not depend on it, but which images a seed gives "
                   "does (the default is sample's)")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu")
@click.option("--extractor", type=click.Choice(["auto", "inception", "classifier"]), default="auto",
              help="auto: Inception if weights are found, else the dataset classifier; inception downloads "
                   "the weights (checksum-verified) if they are not local")
@click.option("--inception-weights", default=None, type=click.Path(dir_okay=False),
              help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (or $IMAGEGEN_INCEPTION_WEIGHTS)")
@click.option("--classifier-data", default=None, help="dataset whose classifier to use (default: the reference)")
@click.option("--classifier-data-root", default=None,
              help="directory holding --classifier-data's files when it is not the reference dataset (default: "
                   "$IMAGEGEN_DATA/<name>; --data-root serves the reference dataset)")
@click.option("--cache-dir", default=None, help="cache for classifiers and reference statistics "
                                                "(default $IMAGEGEN_CACHE or ~/.cache/imagegen)")
@click.option("--resolution", type=int, default=None,
              help="load dataset images (the reference and --fake NAME:SPLIT) at RxR, bicubic (default for a "
                   "run: the model's resolution, loaded with the run's --resize; a run trained on zero-padded "
                   "images, e.g. MNIST 28x28 at 32, is scored at the native 28x28, its samples cropped)")
@click.option("--resize-real", is_flag=True, help="load the reference at the generated images' size and channels")
@click.option("--allow-few-samples", is_flag=True, help="accept FID from fewer samples than feature dimensions")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object (metric names as keys) on stdout")
@click.option("--ppl-space", type=click.Choice(["w", "z"]), default=None,
              help="metric ppl: interpolate in w (style-based models, the default there) or z (slerp)")
@click.option("--ppl-sampling", type=click.Choice(["end", "full"]), default="end", show_default=True,
              help="metric ppl: t in {0, 1} (end) or uniform in [0, 1] (full); --num-samples pairs")
@click.option("--cas-per-class", type=int, default=None,
              help="metric cas: samples generated per class to train the classifier on  [default: --num-samples "
                   "/ classes]")
@click.option("--truncation-psi", type=float, default=None,
              help="style-based runs: sample with w truncated toward w_avg, w_avg + psi (w - w_avg), psi in [0, 1] "
                   "(1 = off, the default; the truncation trick of Karras et al. 2019 Appendix B); sample metrics "
                   "and cas, not ppl")
@click.option("--truncation-cutoff", type=int, default=None,
              help="style-based runs: truncate only the first N layers' w  [default: all]")
@click.option("--noise-mode", type=click.Choice(["random", "const", "none"]), default=None,
              help="style-based runs: per-pixel noise inputs  [default: random]")
@click.option("--raw-generator", is_flag=True,
              help="a run that keeps an EMA generator G_ema: score samples of the raw generator G instead "
                   "(same run, same seed: what averaging the weights changed)")
@click.option("--nll-k", type=int, default=5000, help="metric nll: importance samples per image (IWAE); "
                                                       "--num-real N limits it to N evenly spaced reference images (i·L//N)")
def evaluate(run_dir: Optional[Path], fake: Optional[str], real: Optional[str], data: Optional[str],
             split: Optional[str], data_root: Optional[str], metrics_spec: Optional[str], num_samples: int,
             num_real: Optional[int], seed: int, batch_size: int, device: str, extractor: str,
             inception_weights: Optional[str], classifier_data: Optional[str], classifier_data_root: Optional[str],
             cache_dir: Optional[str], resolution: Optional[int], resize_real: bool, allow_few_samples: bool,
             as_json: bool, ppl_space: Optional[str], ppl_sampling: str, cas_per_class: Optional[int],
             truncation_psi: Optional[float], truncation_cutoff: Optional[int], noise_mode: Optional[str],
             raw_generator: bool, nll_k: int) -> None:
    """Compute FID, KID, IS, precision/recall and density/coverage of RUN_DIR's model (or of --fake
    images) against a reference set, print a table and append a JSON line to RUN_DIR/metrics.jsonl.

    \b
    Examples:
      imagegen evaluate runs/mnist-dcgan --data mnist --data-root DIR --split test --num-samples 10000
      imagegen evaluate --fake samples.npz --real mnist:test --data-root DIR --json
    """
    from ..data import build_dataset, dataset_loaders
    from ..data.transforms import PAD, crop_padding, describe_resize, resolve_resize
    from ..metrics.evaluate import EvalOptions, evaluate_images, parse_metrics, quantize
    from ..metrics.reference import seeded_subset
    from ..sampling import generate, load_run
    from ..sampling.api import run_dir_of, run_resize, run_train_config
    from .sample import style_options
    from ..checkpoint import append_metrics
    from ..device import resolve_device

    if (run_dir is None) == (fake is None):
        raise ConfigError("give either RUN_DIR (a training run) or --fake FILE_OR_FOLDER")
    for name, v in (("--num-samples", num_samples), ("--batch-size", batch_size)):
        if v < 1:
            raise ConfigError(f"{name} {v}: must be >= 1")
    if num_real is not None and num_real < 1:
        raise ConfigError(f"--num-real {num_real}: must be >= 1")
    if resolution is not None and resolution < 1:
        raise ConfigError(f"--resolution {resolution}: must be >= 1")
    name, split = parse_real(real, data, split)

    model, meta, labels, source = None, {}, None, {}
    sample_options: dict[str, Any] = {}
    if run_dir is None and (truncation_psi is not None or truncation_cutoff is not None or noise_mode is not None):
        raise ConfigError("--truncation-psi, --truncation-cutoff and --noise-mode apply to a run's samples, "
                          "not to --fake images; drop them")
    if run_dir is None and raw_generator:
        raise ConfigError("--raw-generator applies to a run's samples, not to --fake images; drop it")
    if run_dir is not None:
        model = load_run(run_dir, device=device)
        meta = model.checkpoint_meta  # type: ignore[attr-defined]
        sample_options = style_options(model, truncation_psi, truncation_cutoff, noise_mode)
        if metrics_spec and "cas" in [m.strip().lower() for m in metrics_spec.split(",")]:
            from ..metrics.cas import check_conditional

            check_conditional(model)  # before any data is loaded
        tc = run_train_config(model)
        name = name or tc.get("data")
        data_root = data_root or tc.get("data_root")
        if resolution is not None and resolution != model.config.resolution:
            raise ConfigError(f"--resolution {resolution}: the model generates {model.config.resolution}x"
                              f"{model.config.resolution} images; drop --resolution")
        resolution, channels = model.config.resolution, model.config.channels
        resize = run_resize(model)
        source = {"run": str(run_dir), "checkpoint": meta.get("checkpoint"), "step": meta.get("step"),
                  "model": meta.get("model")}
        has_ema = getattr(model, "G_ema", None) is not None
        if raw_generator and not has_ema:
            raise ConfigError(f"--raw-generator: {run_dir} keeps no EMA generator (G_ema), so its samples "
                              "already come from G; drop --raw-generator")
        if raw_generator:
            model.G_ema = model.G  # every sampling path reads G_ema: point it at the raw generator
            source["generator"] = "G (raw weights; --raw-generator)"
        elif has_ema:
            source["generator"] = "G_ema"
    else:
        fake_img, labels = load_fake_images(fake, data_root, resolution)
        source = {"file": str(fake)}
        idx = seeded_subset(len(fake_img), num_samples, seed)  # not the first N: files may be ordered by class
        if idx is not None:
            source["subset"] = f"{len(idx):,} of {len(fake_img):,} images, drawn with seed {seed}"
            fake_img = fake_img[idx]
            labels = None if labels is None else labels[idx]
        if resize_real:
            resolution = fake_img.shape[2]
        channels = fake_img.shape[1] if resize_real else None
        resize = "bicubic"
    if not name:
        raise ConfigError("no reference set: give --real NAME:SPLIT or --data NAME")
    if model is not None and "paired" in model.evaluation:
        _evaluate_paired_run(model, meta, name, metrics_spec, num_real, batch_size, seed, run_dir, as_json,
                             extractor, inception_weights, classifier_data, data_root, cache_dir, device, split=split,
                             classifier_root=classifier_data_root)
        return
    named = name in dataset_loaders()
    if split is None:
        split = "test" if named else ""
    unpad = None  # (H, W) to crop generated images to when the run's data was zero-padded
    reference = None
    wants_nll = bool(metrics_spec) and "nll" in metrics_spec.split(",")  # likelihoods need the model's input size
    if model is not None and named and resolution is not None and not wants_nll:
        native = build_dataset(name, root=data_root, split=split or "train", channels=channels)
        h, w = native.images.shape[2:]
        if (h, w) == (resolution, resolution):  # nothing to resize: do not load the set twice
            reference = native
        elif resolve_resize(resize, h, w, resolution) == PAD:
            # trained on zero-padded images: score at the native size (the border is not part of the data)
            reference, unpad, resize = native, (h, w), PAD
    if reference is None:
        reference = build_dataset(name, root=data_root, split=split or "train", resolution=resolution,
                                  channels=channels, resize=resize)
        if resolution is not None and reference.images.shape[2] != resolution:
            raise DataError(f"reference {name} loaded at {reference.images.shape[2]} px, not {resolution}")
    if wants_nll:  # likelihood models: imagegen.metrics.nll
        from ..metrics.nll import nll_command

        metrics_spec = nll_command(model, reference, metrics_spec, k=nll_k, num_images=num_real, seed=seed,
                                   run_dir=run_dir, as_json=as_json, echo=click.echo, info=_info)
        if not metrics_spec:
            return

    conditional = model is not None and model.num_classes > 0
    default = "fid,kid,is,pr,dc" + (",acc" if conditional else "")
    metrics = parse_metrics(metrics_spec or default)
    cas_metrics, cas_proto = {}, None
    if "cas" in metrics:  # a classifier trained on the samples, tested on the reference: imagegen.metrics.cas
        cas_metrics, cas_proto = _cas(model, None if model is not None else fake_img, labels, reference, name,
                                      cas_per_class, num_samples, seed, batch_size, unpad, device, data_root,
                                      cache_dir, fake, sample_options, fake_source=None if model is not None else source)
        metrics = [m for m in metrics if m != "cas"]
        if not metrics:
            cas_extra: dict[str, Any] = {}
            if model is not None:
                cas_extra = {"step": meta.get("step"), "kimg": _kimg_of(Path(meta["checkpoint"]), meta)}
            record = {**cas_extra, **cas_metrics, "protocol": {"cas": cas_proto}}
            if model is not None:
                append_metrics(run_dir_of(model), {**record, "source": "evaluate"})
            what = f"{run_dir} (step {meta.get('step')})" if run_dir is not None else str(fake)
            click.echo(json.dumps(record) if as_json else f"{what}: {_cas_summary(cas_proto)}\n"
                       + _format_table(cas_metrics))
            return
    need_classifier = "acc" in metrics
    ext, clf, note = _select_extractor(extractor, inception_weights, reference if reference.labels is not None
                                       else None, classifier_data, data_root, cache_dir, need_classifier,
                                       classifier_root=classifier_data_root)

    ppl_metrics, ppl_proto = {}, None
    if "ppl" in metrics:  # a property of the generator, not of a sample set: imagegen.metrics.ppl
        from ..metrics.ppl import perceptual_path_length, ppl_protocol

        if model is None:
            raise ConfigError("metric ppl needs a run directory (a generator), not --fake images")
        space = ppl_space or ("w" if getattr(model, "has_style_latents", False) else "z")
        _info(f"ppl: {num_samples:,} interpolation pairs in {space} ({ppl_sampling}) ...")
        ext_device = next(ext.parameters()).device

        def features(img: torch.Tensor):
            return ext(img.to(ext_device))

        ppl_metrics = perceptual_path_length(model, features, num_samples=num_samples, space=space,
                                             sampling=ppl_sampling, seed=seed, batch_size=min(batch_size, 100))
        ppl_proto = ppl_protocol(ext, space, ppl_sampling, num_samples, seed)
        metrics = [m for m in metrics if m != "ppl"]
        if not metrics:
            record = {"step": meta.get("step"), "kimg": _kimg_of(Path(meta["checkpoint"]), meta), **ppl_metrics,
                      **cas_metrics, "protocol": ppl_proto if cas_proto is None else {**ppl_proto, "cas": cas_proto},
                      "source": "evaluate"}
            append_metrics(run_dir_of(model), record)
            click.echo(json.dumps(record) if as_json else f"{run_dir} (step {meta.get('step')}): {note}\n"
                       + _format_table({k: v for k, v in {**ppl_metrics, **cas_metrics}.items()
                                        if k != "num_samples"}))
            return

    if model is not None:
        if conditional:
            labels = torch.arange(num_samples) % model.num_classes  # balanced classes 0..K-1
            source["labels"] = f"balanced over {model.num_classes} classes"
        _info(f"generating {num_samples:,} samples (seed {seed}) ...")
        fake_img = quantize(generate(model, num_samples, seed=seed, batch_size=batch_size, labels=labels,
                                     **sample_options))
        if sample_options:  # style-based: truncation and noise are part of what was measured
            source.update(sample_options)
        if unpad is not None:
            fake_img = crop_padding(fake_img, *unpad)
            source["cropped"] = f"centre {unpad[0]}x{unpad[1]}: the zero padding of the run's training data removed"
    elif "acc" in metrics and labels is None:
        raise ConfigError(f"metric acc needs the class labels of the samples: save them as 'labels' in {fake}")

    result = evaluate_images(fake_img, reference, extractor=ext, metrics=metrics, split=split,
                             num_real=num_real, options=EvalOptions(seed=seed), fake_labels=labels,
                             classifier=clf, fake_source=source, cache=cache_dir, batch_size=batch_size,
                             device=resolve_device(device), allow_few_samples=allow_few_samples)
    if unpad is not None:  # the reference at its native size, samples cropped to it
        result.protocol["reference"]["loaded_at"] = {"resolution": list(unpad), "channels": channels,
                                                     "resize": "native size (the run padded it to "
                                                               f"{resolution}x{resolution}; samples cropped)"}
    elif resolution is not None:  # the reference was resized at load time (as the run's training data)
        result.protocol["reference"]["loaded_at"] = {"resolution": resolution, "channels": channels,
                                                     "resize": describe_resize(resize)}
    if ppl_proto is not None:
        result.metrics.update(ppl_metrics)
        result.protocol["ppl"] = ppl_proto
    if cas_proto is not None:
        result.metrics.update(cas_metrics)
        result.protocol["cas"] = cas_proto
    for w in result.warnings:
        _info(f"warning: {w}")
    extra: dict[str, Any] = {}
    if model is not None:
        extra = {"step": meta.get("step"), "kimg": _kimg_of(Path(meta["checkpoint"]), meta)}
    record = result.record(**extra)
    if model is not None:
        metrics_file = append_metrics(run_dir_of(model), {**record, "source": "evaluate"})
    if as_json:
        click.echo(json.dumps(record))
        return
    p = result.protocol
    what = f"{run_dir} (step {meta.get('step')})" if run_dir is not None else str(fake)
    ref = p["reference"]
    click.echo(f"{what}: {p['num_fake']:,} generated vs {p['num_real']:,} real images of "
               f"{ref['dataset']}{':' + split if split else ''} ({p['channels']}x{p['resolution'][0]}x"
               f"{p['resolution'][1]}), seed {seed}")
    click.echo(note)
    click.echo(_format_table(result.metrics))
    if run_dir is not None:
        click.echo(f"appended to {metrics_file}")


def _cas(model: Any, fake_img: Optional[torch.Tensor], labels: Optional[torch.Tensor], reference: Any,
         dataset: str, per_class: Optional[int], num_samples: int, seed: int, batch_size: int,
         unpad: Optional[tuple[int, int]], device: str, data_root: Optional[str], cache_dir: Optional[str],
         fake: Optional[str], sample_options: Optional[dict[str, Any]] = None,
         fake_source: Optional[dict[str, Any]] = None) -> tuple[dict[str, float], dict[str, Any]]:
    """The ``cas`` metric ({"cas": accuracy}, protocol) of a conditional run's samples (``per_class`` per
    class, default ``num_samples`` / K) or of labelled ``--fake`` images (described by ``fake_source``:
    the file and, where ``--num-samples`` chose a subset, which), tested on ``reference``."""
    from ..data.transforms import crop_padding
    from ..device import resolve_device
    from ..errors import ImagegenError
    from ..metrics.cas import (CAS_RECIPE, CAS_WIDTHS, check_conditional, classification_accuracy_score,
                               generate_labelled)
    from ..metrics.classifier import load_or_train_classifier

    if reference.labels is None:
        raise ConfigError(f"metric cas tests on labelled real images, but the reference {reference.name} has no "
                          "labels; give a labelled reference (--real NAME:test, or a folder with class sub-folders)")
    if per_class is not None and per_class < 1:
        raise ConfigError(f"--cas-per-class {per_class}: must be >= 1")
    if model is not None:
        check_conditional(model)
        k = model.num_classes
        n = per_class or max(1, num_samples // k)
        _info(f"cas: generating {n:,} samples per class for {k} classes (seed {seed}) ...")
        images, lab = generate_labelled(model, n, seed=seed, batch_size=batch_size, **(sample_options or {}))
        source: dict[str, Any] = {"run": str(model.checkpoint_meta.get("checkpoint")), "seed": seed,
                                  "labels": f"{n} per class, interleaved", **(sample_options or {})}
        if unpad is not None:
            images = crop_padding(images, *unpad)
            source["cropped"] = f"centre {unpad[0]}x{unpad[1]} (the run's zero padding removed)"
    else:
        if labels is None or fake_img is None:
            raise ConfigError(f"metric cas needs the class labels of the images: save them as 'labels' in {fake}")
        if per_class is not None:
            raise ConfigError("--cas-per-class applies to a run; for --fake images choose them with --num-samples")
        images, lab, source = fake_img, labels, dict(fake_source or {"file": str(fake)})
    acc, proto = classification_accuracy_score(images, lab, reference, device=resolve_device(device),
                                               name="generated" if model is not None else str(fake), log=_info)
    proto["samples"] = source
    baseline = None
    try:  # the same architecture and recipe trained on the real training split, if cached
        clf = load_or_train_classifier(dataset, data_root=data_root, cache=cache_dir, train_if_missing=False,
                                       recipe=CAS_RECIPE)
        if tuple(clf.config.widths) == tuple(CAS_WIDTHS):
            baseline = clf.test_accuracy
    except ImagegenError:
        pass
    proto["real_data_accuracy"] = baseline
    return {"cas": acc}, proto


def _cas_summary(proto: dict[str, Any]) -> str:
    """One line saying what a CAS value is."""
    real = proto.get("real_data_accuracy")
    return (f"CAS: a classifier trained on {proto['num_train']:,} generated images, tested on "
            f"{proto['test']['num_images']:,} real images of {proto['test']['dataset']} ({proto['recipe']['steps']} "
            "steps)" + (f"; the same classifier trained on real data: {real:.4f}" if real is not None else ""))


def _evaluate_paired_run(model: Any, meta: dict[str, Any], data: str, metrics_spec: Optional[str],
                         num_real: Optional[int], batch_size: int, seed: int, run_dir: Path, as_json: bool,
                         extractor: str, inception_weights: Optional[str], classifier_data: Optional[str],
                         data_root: Optional[str], cache_dir: Optional[str], device: str,
                         split: Optional[str] = None, classifier_root: Optional[str] = None) -> None:
    """``evaluate`` for translation/restoration models: PSNR/SSIM of ``predict`` against the targets of
    the paired data (default: the run's training pairs, or ``--data``), and FID/KID of the outputs
    against the targets when asked. Restoration models are scored on the clean images of ``data``
    (``--data NAME --split S`` or ``--real NAME:S``; default split ``test`` for named datasets) as
    targets, with inputs degraded as in training (:func:`imagegen.metrics.paired.evaluate_restorer`,
    degradation seed ``--seed``)."""
    from ..checkpoint import append_metrics
    from ..data import ImageDataset, build_dataset, dataset_loaders, spread_description
    from ..data.paired import load_paired
    from ..device import resolve_device
    from ..metrics.evaluate import EvalOptions, evaluate_images, parse_metrics
    from ..metrics.paired import evaluate_paired, restoration_degradation
    from ..sampling.api import run_dir_of, run_resize, run_train_config

    metrics = parse_metrics(metrics_spec or "psnr,ssim")
    allowed = {"psnr", "ssim", "fid", "kid", "pr", "dc"}
    if set(metrics) - allowed:
        raise ConfigError(f"{model.model_name} is evaluated against targets: use metrics from {sorted(allowed)}")
    tc = run_train_config(model)
    degradation = restoration_degradation(model)
    if degradation is not None:  # clean images as targets, degraded as in training
        split = split or ("test" if data in dataset_loaders() else "train")
        pairs = build_dataset(data, root=data_root, split=split, resolution=model.config.resolution,
                              channels=model.config.channels, resize=run_resize(model))
        if data in dataset_loaders():
            pairs.name = f"{data}:{split}"
        _info(f"restoring {degradation.describe()} on {pairs.name} ...")
    else:
        pairs = load_paired(data, resolution=model.config.resolution, channels=model.config.channels,
                            resize=run_resize(model), layout=tc.get("paired_layout", "auto"))
        _info(f"translating the inputs of {pairs.name} ...")
    res = evaluate_paired(model, pairs, num_images=num_real, batch_size=batch_size, seed=seed, keep_outputs=True)
    n = res["num_images"]
    values = {m: res[m] for k in ("psnr", "ssim") if k in metrics for m in (k, f"{k}_std")}
    protocol: dict[str, Any] = {"paired": {**res["protocol"], "pairs": spread_description(n, len(pairs), pairs.name)}}
    dist_metrics = [m for m in metrics if m not in ("psnr", "ssim")]
    if dist_metrics:
        targets = ImageDataset(res["targets"].permute(0, 2, 3, 1).numpy(), name=f"{pairs.name} (targets)")
        ext, clf, note = _select_extractor(extractor, inception_weights, None, classifier_data, data_root,
                                           cache_dir, False, classifier_root=classifier_root)
        _info(note)
        result = evaluate_images(res["outputs"], targets, extractor=ext, metrics=dist_metrics, split="targets",
                                 options=EvalOptions(seed=seed), cache=cache_dir, batch_size=batch_size,
                                 device=resolve_device(device), allow_few_samples=True)
        values.update(result.metrics)
        protocol["distribution"] = result.protocol
    record = {"step": meta.get("step"), **values, "protocol": protocol, "source": "evaluate"}
    metrics_file = append_metrics(run_dir_of(model), record)
    if as_json:
        click.echo(json.dumps(record))
        return
    click.echo(f"{run_dir} (step {meta.get('step')}): {n:,} outputs vs targets of {pairs.name}; PSNR in dB and SSIM "
               "on [0, 1] 8-bit images (torchmetrics; SSIM Gaussian 11x11, sigma 1.5)")
    click.echo(_format_table(values))
    click.echo(f"appended to {metrics_file}")


# ---- train-classifier --------------------------------------------------------------------------------
@click.command("train-classifier", context_settings={"show_default": True})
@click.option("--data", required=True, help="labelled dataset: name (mnist, ...) or folder/zip with class sub-folders")
@click.option("--data-root", default=None, help="directory holding the dataset's files")
@click.option("--epochs", type=int, default=2, help="passes over the training split (at least --min-steps steps)")
@click.option("--min-steps", type=int, default=1000, help="minimum optimiser steps (for small datasets)")
@click.option("--batch-size", type=int, default=128)
@click.option("--lr", type=float, default=3e-3, help="peak learning rate (Adam, one-cycle)")
@click.option("--seed", type=int, default=0)
@click.option("--widths", default="16,32,64,128", help="channels of the four conv stages (last = feature dim)")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu")
@click.option("--cache-dir", default=None, help="cache root (default $IMAGEGEN_CACHE or ~/.cache/imagegen)")
@click.option("--retrain", is_flag=True, help="train again even if a classifier is cached")
def train_classifier_cmd(data: str, data_root: Optional[str], epochs: int, min_steps: int, batch_size: int, lr: float,
                         seed: int, widths: str, device: str, cache_dir: Optional[str], retrain: bool) -> None:
    """Train (or find in the cache) the dataset classifier used as the offline feature extractor, and
    report its test accuracy."""
    from ..data import build_dataset
    from ..metrics.classifier import ClassifierConfig, TrainRecipe, load_or_train_classifier

    try:
        w = tuple(int(x) for x in widths.split(","))
    except ValueError:
        w = ()
    if len(w) != 4 or min(w) < 1:
        raise ConfigError(f"--widths {widths}: give four positive integers, e.g. 16,32,64,128")
    for opt, v in (("--epochs", epochs), ("--batch-size", batch_size), ("--min-steps", min_steps + 1)):
        if v < 1:
            raise ConfigError(f"{opt} {v}: must be >= 1")
    recipe = TrainRecipe(epochs=epochs, min_steps=min_steps, batch_size=batch_size, lr=lr, seed=seed)
    train = build_dataset(data, root=data_root, split="train")
    config = ClassifierConfig(channels=train.channels, num_classes=max(train.num_classes, 1), widths=w)  # type: ignore[arg-type]
    model = load_or_train_classifier(data, data_root=data_root, cache=cache_dir, retrain=retrain, recipe=recipe,
                                     config=config, device=device, log=_info)
    acc = model.test_accuracy
    click.echo(f"{data} classifier: test accuracy {100 * (acc or 0):.2f}% | features {model.feature_dim}-d | "
               f"weights sha256 {model.weights_hash[:16]} | {model.directory}")


# ---- report ---------------------------------------------------------------------------------------------
@click.command(context_settings={"show_default": True})
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="output directory (default RUN_DIR/report)")
def report(run_dir: Path, out: Optional[Path]) -> None:
    """Write PNG plots (losses, gradient norms, metrics against images seen) and an HTML page with the
    plots and the sample grids over time."""
    from ..report import write_report

    page = write_report(run_dir, out)
    click.echo(str(page))


def register(cli: click.Group) -> None:
    cli.add_command(evaluate)
    cli.add_command(train_classifier_cmd)
    cli.add_command(report)

