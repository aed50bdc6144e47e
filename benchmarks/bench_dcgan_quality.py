"""DCGAN sample quality on MNIST: the toolkit's default ``dcgan`` vs a plain pytorch/examples-style DCGAN
of the same architecture, same epochs, several seeds, under the toolkit's dataset-classifier evaluation.

Issue 13, step 1. Each *variant* is a named function that trains one model for one seed and returns a
sampler (see ``VARIANTS``); step 2's ablation adds variants by name (``--models``).

Variants registered here:

* ``default`` — ``imagegen``'s DCGAN trained through the real toolkit (``Trainer.fit`` with
  ``TrainConfig(data="mnist", epochs=E, seed=S)`` and every other option at its default: resolution 32,
  ``--resize auto``, which zero-pads MNIST 28→32 (until issue 13: resized 28→32 bicubic, now the variant
  ``default-resize``), PyTorch's default init (``--init pytorch``; until issue 13 the default was
  N(0, 0.02), now the variant ``default-dcgan-init``), fresh z for the G step, epoch permutations, batch
  64, Adam(2e-4, β1 0.5), samples from the EMA generator ``G_ema`` with decay 0.999 since 2026-12-01
  (before: from ``G``, now the variant ``default-no-ema``)); sampled with
  ``imagegen.sampling.generate`` (eval mode, as ``imagegen sample``).
* ``plain`` — the issue's plain reference, a ~40-line loop in this file (``train_plain``): the
  architecture of ``bench_dcgan.plain_models(32, nc=1)`` (identical layers and widths to the
  toolkit's) with PyTorch's default weight initialisation, D's final ``Sigmoid`` dropped in favour of
  ``BCEWithLogitsLoss`` (equivalent), MNIST zero-padded 28→32 (uint8 → [-1, 1], so the border is -1),
  batches of 64 drawn *with replacement* (``torch.randint``), one fake batch per step reused for the D
  and the G update, Adam(2e-4, β1 0.5), as many steps as the toolkit takes for the same epochs
  (E × ⌊60000 / 64⌋ = 937 E). It is sampled the way pytorch/examples draws its samples: ``netG`` is never
  put in eval mode there (``fake = netG(fixed_noise)`` in train mode), so batch norm uses the statistics
  of each 64-sample batch; we do the same, in batches of ``--batch-size``.
* ablation switches (for step 2, one change each from ``plain``): ``plain-eval`` (sample in eval mode,
  running statistics), ``plain-dcgan-init`` (N(0, 0.02) init), ``plain-resize`` (train on 28→32 bicubic
  like the toolkit), ``plain-fresh-fake`` (a new z for the G update), ``plain-epochs`` (epoch
  permutations without replacement instead of draws with replacement); and one change each from
  ``default``: ``default-dcgan-init`` (N(0, 0.02), the paper's and the old default), ``default-pad``
  (``--resize pad``: the same as ``default`` since ``--resize auto``), ``default-resize`` (``--resize
  bicubic``), ``default-batch-stats`` (sampled with each batch's statistics, as ``plain``),
  ``default-no-ema`` (``--ema-decay 0``: samples from ``G``, the default until 2026-12-01) and
  ``default-ema`` (``--ema-decay 0.999`` given explicitly: the same as ``default`` since then).
* floors, not models: ``real-pad`` and ``real-resize`` score 10,000 real MNIST training digits framed to
  32×32 each way and re-framed to 28×28 like samples (``real_digits``): what a perfect model of each
  framing's training data would get, so the 28→32→28 round trip's own cost can be read off.

Evaluation protocol (identical for every variant; Heusel-style FID, not reimplemented here):

1. Draw N = ``--num-samples`` samples (latent seed = the training seed) and quantise them to uint8 as
   when saved to PNG (``imagegen.metrics.evaluate.quantize``).
2. Re-frame them the MNIST way, 28×28, so that padding vs resizing does not count: samples of a model
   trained on zero-padded data have the 2-pixel border cropped ([2:30, 2:30]); samples of a model
   trained on resized data are resized 32→28 with Pillow bicubic (``imagegen.data.transforms.resize_array``,
   the same filter the toolkit used to make its 32×32 training data).
3. ``imagegen.metrics.evaluate.evaluate_images`` against the full MNIST **test** split at its native
   28×28 (10,000 images), with the MNIST dataset classifier (``load_or_train_classifier("mnist")``, the
   extractor ``imagegen evaluate --extractor classifier`` uses; it resizes its input 28→32 bilinear
   internally, exactly as for the data it was trained on) as feature extractor, metrics
   ``fid,kid,pr,modes`` with the default ``EvalOptions`` (KID 100 subsets of ≤ 1000, precision/recall
   k = 3) and ``seed`` = the training seed. Reported: ``confident`` = share of samples whose top
   softmax probability is ≥ 0.9; ``classes_covered`` = classes (of 10) that are the predicted class of
   at least 1 % of the samples (the ``modes`` metric's "a tenth of the uniform share"); ``class_entropy``
   = normalised entropy of the predicted-class histogram; FID and KID in the classifier's 128-d
   feature space (comparable only with numbers from the same classifier weights); precision/recall.
   The same numbers come from ``imagegen evaluate --fake RUN/samples28.npz --real mnist:test
   --data-root DIR --extractor classifier --metrics fid,kid,pr,modes --seed S`` (with ``--out-dir``).
4. Wall time: seconds of the training loop only (data loading and evaluation excluded): the Trainer's
   own clock for ``default`` (which includes its periodic sample grids and checkpoints, as a user
   pays them), ``time.perf_counter`` around the loop for the plain variants.

Mean ± sample standard deviation (n - 1) over seeds per variant; a markdown table on stdout and,
with ``--json OUT``, every run's numbers and the protocol.

``--num-samples`` defaults to 10,000: the size of the MNIST test set the samples are compared with, and
the count ``imagegen evaluate`` is documented with; FID's upward bias shrinks as 1/N, so 2,000 would
shift both models' FID by a noticeable, model-dependent amount.

Usage (run alone; about 2 × 3 × 5 epochs of 32×32 DCGAN training — about 75 minutes on 2 CPU cores)::

    python benchmarks/bench_dcgan_quality.py --json dcgan_quality.json
    python benchmarks/bench_dcgan_quality.py --models default,plain,plain-eval --seeds 0 --epochs 1
    python benchmarks/bench_dcgan_quality.py --smoke --threads 1    # 20 steps, 300 samples, seed 0
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imagegen.data import ImageDataset, build_dataset
from imagegen.data.transforms import PAD, resize_array, resolve_resize
from imagegen.device import resolve_device
from imagegen.metrics.classifier import load_or_train_classifier
from imagegen.metrics.evaluate import EvalOptions, evaluate_images, quantize
from imagegen.models.dcgan import DCGANConfig
from imagegen.nn import dcgan_init
from imagegen.sampling import generate, load_run
from imagegen.training import Trainer, TrainConfig

sys.path.insert(0, str(Path(__file__).parent))
from bench_dcgan import plain_models  # noqa: E402
from machine import add_thread_and_json_options, start  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
METRICS = ("fid", "kid", "pr", "modes")
#: (result key, column header, scale, decimals) of the tables
COLUMNS = (("confident", "confident ≥0.9", 100, 1), ("classes_covered", "classes ≥1%", 1, 1),
           ("class_entropy", "class entropy", 1, 3), ("fid", "FID", 1, 2), ("kid", "KID ×10³", 1e3, 2),
           ("precision", "precision", 1, 3), ("recall", "recall", 1, 3), ("train_seconds", "train s", 1, 0))


# ------------------------------------------------------------------ shared state of one benchmark
@dataclasses.dataclass
class Context:
    """What every variant needs: options, device, and the MNIST training data (loaded once)."""

    data_root: str
    epochs: int
    steps: Optional[int]  # overrides epochs when set
    batch_size: int
    device: torch.device
    threads: int
    out_dir: Path
    _cache: dict = dataclasses.field(default_factory=dict)

    def mnist(self, framing: str) -> ImageDataset:
        """MNIST train: ``native`` 28×28, ``pad`` zero-padded to 32×32, ``resize`` 28→32 bicubic (the
        toolkit's ``build_dataset("mnist", resolution=32)``)."""
        if framing not in self._cache:
            if framing == "resize":
                ds = build_dataset("mnist", root=self.data_root, split="train", resolution=32, download=False)
            elif framing == "pad":
                nat = self.mnist("native")
                imgs = F.pad(nat.images, (2, 2, 2, 2), value=0)  # uint8 [N, 1, 32, 32], 0 = background
                ds = ImageDataset(imgs.permute(0, 2, 3, 1).numpy(), nat.labels.numpy(), name="mnist")
            elif framing == "native":
                ds = build_dataset("mnist", root=self.data_root, split="train", download=False)
            else:
                raise ValueError(f"unknown framing {framing!r}")
            self._cache[framing] = ds
        return self._cache[framing]

    def total_steps(self) -> int:
        """Training steps for the plain loops: the toolkit's count (⌊N / batch⌋ per epoch, last partial batch dropped)."""
        return self.steps if self.steps is not None else self.epochs * (len(self.mnist("native")) // self.batch_size)


@dataclasses.dataclass
class Trained:
    """A trained model: ``sample(n, seed)`` -> float [n, 1, 32, 32] in [-1, 1]; its training framing
    (``pad`` or ``resize``, which decides how samples are re-framed to 28×28); training seconds."""

    sample: Callable[[int, int], torch.Tensor]
    framing: str
    train_seconds: float
    steps: int
    run_dir: Path


VARIANTS: dict[str, Callable[[Context, int], Trained]] = {}


def variant(key: str, **kwargs):
    """Register ``fn(ctx, seed, name=key, **kwargs)`` as the variant ``key`` (its run directories are
    ``OUT/<key>-seed<S>``)."""
    def deco(fn):
        VARIANTS[key] = functools.partial(fn, name=key, **kwargs)
        return fn
    return deco


# ------------------------------------------------------------------ the toolkit's default dcgan
def train_default(ctx: Context, seed: int, name: str = "default", model: Optional[dict] = None,
                  train: Optional[dict] = None, sample_mode: str = "eval") -> Trained:
    """``imagegen train dcgan --data mnist --epochs E --seed S`` (``model``/``train`` override options;
    ``sample_mode="train"`` samples G with batch-norm statistics of each batch of ``--batch-size``, as
    pytorch/examples does, instead of ``imagegen sample``'s eval mode)."""
    run_dir = ctx.out_dir / f"{name}-seed{seed}"
    length = {"steps": ctx.steps} if ctx.steps is not None else {"epochs": ctx.epochs}
    cfg = TrainConfig(data="mnist", data_root=ctx.data_root, seed=seed, batch_size=ctx.batch_size,
                      device=ctx.device.type, threads=ctx.threads, progress=False, **length, **(train or {}))
    # the dataset the trainer would build itself (build_source: mnist train at 32), loaded once per framing
    framing = "pad" if resolve_resize(cfg.resize, 28, 28, 32) == PAD else "resize"
    ds = ctx.mnist(framing) if resolve_resize(cfg.resize, 28, 28, 32) in (PAD, "bicubic") else None
    result = Trainer("dcgan", DCGANConfig(resolution=32, **(model or {})), cfg, run_dir, force=True,
                     echo=lambda s: print(f"  [{name} seed {seed}] {s}", file=sys.stderr), dataset=ds).fit()
    m = load_run(result.run_dir, device=ctx.device)
    if sample_mode == "eval":
        return Trained(lambda n, s: generate(m, n, seed=s, batch_size=500), framing, result.seconds, result.steps,
                       run_dir)
    G = m.G_ema if m.G_ema is not None else m.G

    def sample_batch_stats(n: int, s: int) -> torch.Tensor:
        G.train()
        gen = torch.Generator(device=m.device).manual_seed(s)
        bs = ctx.batch_size
        z = m.sample_latents(math.ceil(n / bs) * bs, gen)  # whole batches only
        with torch.no_grad():
            return torch.cat([G(c).float().cpu() for c in z.split(bs)])[:n]

    return Trained(sample_batch_stats, framing, result.seconds, result.steps, run_dir)


variant("default")(train_default)
variant("default-dcgan-init", model={"init": "dcgan"})(train_default)  # the default before issue 13
variant("default-pad", train={"resize": "pad"})(train_default)  # = default since --resize auto
variant("default-resize", train={"resize": "bicubic"})(train_default)  # the framing before --resize auto
variant("default-batch-stats", sample_mode="train")(train_default)
variant("default-ema", model={"ema_decay": 0.999})(train_default)  # = default since 2026-12-01
variant("default-no-ema", model={"ema_decay": 0.0})(train_default)  # samples from G: the default before


# ------------------------------------------------------------------ the plain reference (pytorch/examples style)
def train_plain(ctx: Context, seed: int, name: str = "plain", init: str = "pytorch", framing: str = "pad",
                fake: str = "reused", order: str = "replacement", sample_mode: str = "train") -> Trained:
    """The issue's plain DCGAN; each keyword is one ablation switch (defaults = the plain reference)."""
    dev, bs, steps = ctx.device, ctx.batch_size, ctx.total_steps()
    x = ctx.mnist(framing).images.to(dev)  # uint8 [N, 1, 32, 32]
    torch.manual_seed(seed)
    netG, netD = plain_models(32, nc=1)
    netD = netD[:-1]  # drop the Sigmoid: BCEWithLogitsLoss below
    if init == "dcgan":
        netG.apply(dcgan_init)
        netD.apply(dcgan_init)
    netG.to(dev)
    netD.to(dev)
    criterion = nn.BCEWithLogitsLoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(bs, device=dev), torch.zeros(bs, device=dev)
    per_epoch, perm = len(x) // bs, None
    t0 = time.perf_counter()
    for step in range(steps):
        if order == "replacement":
            idx = torch.randint(0, len(x), (bs,), device=dev)
        else:  # epoch permutations, last partial batch dropped
            if step % per_epoch == 0:
                perm = torch.randperm(len(x), device=dev)
            idx = perm[(step % per_epoch) * bs:(step % per_epoch + 1) * bs]
        real = x[idx].float() / 127.5 - 1
        # (1) D: maximise log D(x) + log(1 - D(G(z)))
        netD.zero_grad()
        errD_real = criterion(netD(real).view(-1), ones)
        errD_real.backward()
        fake_img = netG(torch.randn(bs, 100, 1, 1, device=dev))
        errD_fake = criterion(netD(fake_img.detach()).view(-1), zeros)
        errD_fake.backward()
        optD.step()
        # (2) G: maximise log D(G(z)), on the same fake batch (or a fresh one)
        netG.zero_grad()
        if fake == "fresh":
            fake_img = netG(torch.randn(bs, 100, 1, 1, device=dev))
        errG = criterion(netD(fake_img).view(-1), ones)
        errG.backward()
        optG.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    run_dir = ctx.out_dir / f"{name}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"netG": netG.state_dict(), "netD": netD.state_dict()}, run_dir / "weights.pt")

    def sample(n: int, s: int) -> torch.Tensor:
        # pytorch/examples never calls netG.eval(): its samples use batch-norm statistics of each batch
        netG.train(sample_mode == "train")
        gen = torch.Generator().manual_seed(s)
        z = torch.randn(math.ceil(n / bs) * bs, 100, 1, 1, generator=gen)  # whole batches only
        with torch.no_grad():
            out = torch.cat([netG(c.to(dev)).cpu() for c in z.split(bs)])
        return out[:n]

    return Trained(sample, "resize" if framing == "resize" else "pad", seconds, steps, run_dir)


# ------------------------------------------------------------------ the floor: real digits, no model
def real_digits(ctx: Context, seed: int, name: str = "real-pad", framing: str = "pad") -> Trained:
    """Not a model: MNIST *training* digits framed to 32×32 the way a model's data would be (``pad`` or
    ``resize``), then re-framed to 28×28 by the same ``frame_28`` as generated samples. Scored against the
    test split, this is the floor each framing can reach: ``real-pad`` is the native digits (cropping undoes
    the padding exactly), ``real-resize`` adds the 28→32→28 bicubic round trip every resized model's
    samples go through for scoring. ``sample(n, s)`` draws n distinct training digits with seed s."""
    x = ctx.mnist(framing).images
    run_dir = ctx.out_dir / f"{name}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)

    def sample(n: int, s: int) -> torch.Tensor:
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(s))[:n]
        return x[idx].float() / 127.5 - 1  # quantize() maps these back to the same uint8 exactly

    return Trained(sample, framing, 0.0, 0, run_dir)


variant("real-pad", framing="pad")(real_digits)
variant("real-resize", framing="resize")(real_digits)


variant("plain")(train_plain)
variant("plain-eval", sample_mode="eval")(train_plain)
variant("plain-dcgan-init", init="dcgan")(train_plain)
variant("plain-resize", framing="resize")(train_plain)
variant("plain-fresh-fake", fake="fresh")(train_plain)
variant("plain-epochs", order="epochs")(train_plain)


# ------------------------------------------------------------------ evaluation
def frame_28(img: torch.Tensor, framing: str) -> torch.Tensor:
    """float [N, 1, 32, 32] in [-1, 1] -> uint8 [N, 1, 28, 28], quantised as a PNG, re-framed the MNIST way."""
    u8 = quantize(img)
    if framing == "pad":
        return u8[:, :, 2:30, 2:30].contiguous()
    if framing == "resize":
        arr = resize_array(u8.permute(0, 2, 3, 1).numpy(), 28, "bicubic")  # Pillow bicubic
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))
    raise ValueError(f"unknown framing {framing!r}")


def run_one(ctx: Context, name: str, seed: int, num_samples: int, reference: ImageDataset, classifier) -> dict:
    torch.set_num_threads(ctx.threads or os.cpu_count() or 1)  # the same threads for every variant
    trained = VARIANTS[name](ctx, seed)
    fake = frame_28(trained.sample(num_samples, seed), trained.framing)
    np.savez_compressed(trained.run_dir / "samples28.npz", images=fake.permute(0, 2, 3, 1).numpy())
    res = evaluate_images(fake, reference, extractor=classifier, metrics=METRICS, split="test",
                          options=EvalOptions(seed=seed), fake_source={"variant": name, "seed": seed},
                          device=ctx.device, batch_size=500, allow_few_samples=True)
    for w in res.warnings:
        print(f"  warning: {w}", file=sys.stderr)
    return {"model": name, "seed": seed, "steps": trained.steps, "train_seconds": trained.train_seconds,
            "framing": trained.framing, "run_dir": str(trained.run_dir), **res.metrics, "protocol": res.protocol}


def fmt(values: list[float], scale: float, dec: int) -> str:
    v = [x * scale for x in values]
    mean = statistics.fmean(v)
    if len(v) < 2:
        return f"{mean:.{dec}f}"
    return f"{mean:.{dec}f} ± {statistics.stdev(v):.{dec}f}"


def print_runs_header() -> None:
    """The header of the one-row-per-run table."""
    print("| model | seed | steps | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS), flush=True)


def print_run(r: dict) -> None:
    """One run's row (a result of :func:`run_one`)."""
    print(f"| {r['model']} | {r['seed']} | {r['steps']} | "
          + " | ".join(fmt([r[k]], s, d) for k, _, s, d in COLUMNS) + " |", flush=True)


def summarise(runs: list[dict], models: list[str]) -> dict:
    """Print the mean ± sample-std table over seeds per model and return it as a dict."""
    summary = {}
    print("\n| model | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for name in models:
        rs = [r for r in runs if r["model"] == name]
        summary[name] = {k: {"mean": statistics.fmean(r[k] for r in rs),
                             "std": statistics.stdev(r[k] for r in rs) if len(rs) > 1 else None}
                         for k, *_ in COLUMNS}
        print(f"| {name} | {len(rs)} | " + " | ".join(fmt([r[k] for r in rs], s, d) for k, _, s, d in COLUMNS) + " |")
    print("\nconfident = % of samples with top-class probability ≥ 0.9; classes ≥1% = classes (of 10) predicted "
          "for ≥ 1% of samples; FID/KID/precision/recall in the dataset classifier's feature space; "
          "mean ± sample std over seeds; train s = seconds of the training loop")
    return summary


def combine(paths: list[Path], out: Optional[Path]) -> int:
    """Merge the runs of earlier ``--json`` files (e.g. one per seed, run one at a time) into one table."""
    runs: list[dict] = []
    for path in paths:
        try:
            runs += json.loads(path.read_text())["runs"]
        except (OSError, ValueError, KeyError) as e:
            print(f"error: cannot read runs from {path} ({e}); pass JSON files written by --json", file=sys.stderr)
            return 2
    weights = {r["protocol"]["extractor"]["weights_sha256"][:12] for r in runs}
    if len(weights) > 1:  # FID, KID, precision/recall live in the classifier's feature space
        print(f"error: the runs were scored under different classifier weights ({', '.join(sorted(weights))}), so "
              "their numbers are not comparable; run them again on one machine (its cached MNIST classifier)",
              file=sys.stderr)
        return 2
    seen = set()
    for r in runs:
        if (r["model"], r["seed"]) in seen:
            print(f"error: {r['model']} seed {r['seed']} appears twice; pass each run's JSON once", file=sys.stderr)
            return 2
        seen.add((r["model"], r["seed"]))
    models = list(dict.fromkeys(r["model"] for r in runs))
    print_runs_header()
    for r in sorted(runs, key=lambda r: (models.index(r["model"]), r["seed"])):
        print_run(r)
    summary = summarise(runs, models)
    if out:
        out.write_text(json.dumps({"settings": {"combined": [str(p) for p in paths]},
                                   "summary": summary, "runs": runs}, indent=2))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data-root", default=str(REPO.parent / "shared" / "data" / "mnist"),
                    help="directory with the MNIST IDX files")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=None, help="train this many steps instead of --epochs")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    ap.add_argument("--num-samples", type=int, default=10000, help="generated samples per run")
    ap.add_argument("--models", default="default,plain", help=f"comma-separated variants of {sorted(VARIANTS)}")
    ap.add_argument("--batch-size", type=int, default=64, help="pytorch/examples default")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--out-dir", type=Path, default=None, help="keep run directories here (default: a temp dir)")
    ap.add_argument("--smoke", action="store_true", help="tiny check: 20 steps, 300 samples, seed 0")
    ap.add_argument("--combine", type=Path, nargs="+", default=None, metavar="JSON",
                    help="train nothing: merge the runs of earlier --json files into one mean ± std table")
    add_thread_and_json_options(ap)
    args = ap.parse_args()
    if args.combine:
        return combine(args.combine, args.json)
    if args.smoke:
        args.steps, args.num_samples, args.seeds = 20, 300, "0"
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in VARIANTS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {sorted(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    root = Path(args.data_root)
    if not (root / "train-images-idx3-ubyte.gz").exists() and not (root / "train-images-idx3-ubyte").exists():
        print(f"skipped: no MNIST under {root} (give --data-root DIR with the IDX files)")
        return 0

    start(args)
    device = resolve_device(args.device)
    tmp = None
    if args.out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_dcgan_quality-")
        out_dir = Path(tmp.name)
    else:
        out_dir = args.out_dir
    ctx = Context(str(root), args.epochs, args.steps, args.batch_size, device, args.threads, out_dir)
    reference = build_dataset("mnist", root=str(root), split="test", download=False)  # native 28×28
    classifier = load_or_train_classifier("mnist", data_root=str(root), device=device,
                                          log=lambda s: print(s, file=sys.stderr))
    length = f"{args.steps} steps" if args.steps is not None else f"{args.epochs} epochs"
    print(f"# MNIST, {length}, batch {args.batch_size}, seeds {seeds}, {args.num_samples:,} samples per run, device "
          f"{device}; evaluated at 28×28 against mnist:test ({len(reference):,} images) with the MNIST dataset "
          f"classifier (weights {classifier.weights_hash[:12]}, test accuracy "
          f"{100 * (classifier.test_accuracy or 0):.2f}%)")

    runs = []
    print()
    print_runs_header()
    try:
        for name in models:
            for seed in seeds:
                r = run_one(ctx, name, seed, args.num_samples, reference, classifier)
                runs.append(r)
                print_run(r)
    finally:
        if tmp is not None:
            tmp.cleanup()

    summary = summarise(runs, models)
    if args.json:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"settings": settings, "summary": summary, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
