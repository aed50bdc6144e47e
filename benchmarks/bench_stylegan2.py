"""StyleGAN2 training and sampling throughput (issue 9): images/s at 32×32 and 64×64 with the widths
of the proofs (the ``stylegan2`` defaults unless ``--channel-base/--channel-max`` say otherwise), for
both modulated-convolution paths (``grouped``: per-sample weights in one grouped convolution;
``scaled``: input and output scaling around one shared convolution), with

* where the time goes: seconds per step of each phase (D, Dreg = lazy R1 every 16 steps, G, Greg =
  lazy path length every 4 steps), amortised over a whole number of R1 intervals;
* FLOPs per training image (``torch.utils.flop_counter``'s formulas, every phase weighted by how often it runs)
  and per sampled image, the achieved GFLOP/s of training and of sampling and their share of the
  machine's fp32 matmul peak measured in the same run;
* sampling at ``--sample-batch`` images per call (default: the training batch), at least 256 images
  timed (whole calls);
* peak resident memory of the process that ran the configuration (each configuration runs in its
  own subprocess, so the figure is its own, read before the FLOP count builds a second model; CUDA:
  ``torch.cuda.max_memory_allocated``);
* at 32×32, the ratio to lucidrains' stylegan2-pytorch as quoted in issue 9 (below);
* with ``--ada-p 0.2,...``: the same with adaptive discriminator augmentation held at each ``p``
  (``--augment ada --ada-p P``, the paper's filtered resampling), i.e. what augmenting every image D sees
  costs per step (``none`` in the list: without augmentation).

The training loop is the trainer's (one real batch per step, each phase: enable only its optimiser's
parameters, forward, backward, step) on random data, so data loading is not measured.

For comparison (issue 9): lucidrains' stylegan2-pytorch was measured on one of these 2-core machines
at 11–13 training images/s and 76–101 sampling images/s at 32×32 (batch 8/16).

Usage (run alone)::

    python benchmarks/bench_stylegan2.py --json bench_stylegan2.json
    python benchmarks/bench_stylegan2.py --resolutions 32 --modes scaled --steps 16   # quick
    python benchmarks/bench_stylegan2.py --resolutions 64 --modes scaled --ada-p none,0.2   # ADA's cost
    python benchmarks/bench_stylegan2.py --resolutions 32 --modes scaled --batch-size 16 \\
        --channel-base 1024 --channel-max 256          # lucidrains' default widths, its batch
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

sys.path.insert(0, str(Path(__file__).parent))
from machine import add_thread_and_json_options, start  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LUCIDRAINS_TRAIN = (11, 13)  # images/s at 32x32, batch 8/16, as quoted in issue 9 (not measured here)
LUCIDRAINS_SAMPLE = (76, 101)
sys.path.insert(0, str(REPO))


class FlopCount(TorchDispatchMode):
    """FLOPs of every operator that ``torch.utils.flop_counter`` knows (convolutions, matmuls and their
    gradients), counted at the dispatcher: unlike ``FlopCounterMode`` it installs no module hooks, which
    ``torch.autograd.grad`` inside R1 and path-length regularisation does not support."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


def build(res: int, mode: str, channel_base: int, channel_max: int, device: torch.device,
          ada_p: Optional[float] = None):
    """A StyleGAN2 at these widths; with ``ada_p`` ADA augments every image D sees at that fixed ``p``."""
    from imagegen.models.stylegan2 import StyleGAN2, StyleGAN2Config

    torch.manual_seed(0)
    augment = {} if ada_p is None else {"augment": "ada", "ada_p": ada_p}
    cfg = StyleGAN2Config(resolution=res, channels=3, channel_base=channel_base, channel_max=channel_max,
                          conv_mode=mode, **augment)
    return StyleGAN2(cfg).to(device)


def random_batch(res: int, batch: int, device: torch.device) -> dict:
    """A batch of random RGB "real" images [batch, 3, res, res] in [-1, 1] without labels."""
    return {"img": torch.rand(batch, 3, res, res, device=device) * 2 - 1,
            "label": torch.full((batch,), -1, device=device)}


def prepare_phase(opts: dict, ph) -> torch.optim.Optimizer:
    """As the trainer does before a phase: only the phase's optimiser's parameters need gradients (so
    G's phase back-propagates through D without D's weight gradients); returns that optimiser, zeroed."""
    for name, opt in opts.items():
        for g in opt.param_groups:
            for p in g["params"]:
                p.requires_grad_(name == ph.optimizer_name)
    opts[ph.optimizer_name].zero_grad(set_to_none=True)
    return opts[ph.optimizer_name]


def count_flops(res: int, batch: int, sample_batch: int, channel_base: int, channel_max: int,
                device: torch.device, ada_p: Optional[float] = None) -> tuple[float, float]:
    """FLOPs of one training step (every phase weighted by how often it runs) and of one sampling call of
    ``sample_batch`` images, counted on the ``scaled`` path for both paths: they compute the same
    products, but the formulas of ``torch.utils.flop_counter`` do not divide a grouped convolution's
    count by its groups (they over-count the grouped path N-fold)."""
    model = build(res, "scaled", channel_base, channel_max, device, ada_p)
    opts = model.configure_optimizers()
    real = random_batch(res, batch, device)
    total = 0.0
    for ph in model.phases():
        prepare_phase(opts, ph)
        with FlopCount() as fc:
            model.training_step(ph.name, real)["loss"].backward()
        total += fc.total / ph.every
    model.eval()
    with FlopCount() as fc:
        model.sample(sample_batch, torch.Generator(device=device).manual_seed(0))
    return total, float(fc.total)


def run_one(res: int, mode: str, steps: int, batch: int, sample_batch: int, channel_base: int, channel_max: int,
            device: torch.device, ada_p: Optional[float] = None) -> dict:
    """Train ``steps`` steps at ``batch`` and sample at least 256 images in calls of ``sample_batch``; return the
    figures of one configuration. Peak memory is read before the FLOPs are counted (that builds a second
    model)."""
    model = build(res, mode, channel_base, channel_max, device, ada_p)
    opts = model.configure_optimizers()
    phases = model.phases()
    real = random_batch(res, batch, device)

    def run_phase(ph) -> None:
        opt = prepare_phase(opts, ph)
        model.training_step(ph.name, real)["loss"].backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for step in range(2):
        for ph in phases:
            run_phase(ph)
    seconds = {ph.name: 0.0 for ph in phases}
    sync()
    t0 = time.perf_counter()
    for step in range(steps):
        for ph in phases:
            if step % ph.every:
                continue
            t = time.perf_counter()
            run_phase(ph)
            sync()
            seconds[ph.name] += time.perf_counter() - t
    total = time.perf_counter() - t0
    train_ips = steps * batch / total

    model.eval()
    gen = torch.Generator(device=device).manual_seed(0)
    sb = sample_batch
    n_calls = -(-256 // sb)  # at least 256 images, whole calls
    model.sample(sb, gen)  # warm-up
    sync()
    t = time.perf_counter()
    for _ in range(n_calls):
        model.sample(sb, gen)
    sync()
    sample_seconds = time.perf_counter() - t
    sample_ips = n_calls * sb / sample_seconds
    peak_mb = (torch.cuda.max_memory_allocated() if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2 ** 20
    flops_per_step, flops_per_sample_call = count_flops(res, batch, sb, channel_base, channel_max, device, ada_p)
    return {"resolution": res, "mode": mode, "ada_p": ada_p, "batch": batch, "sample_batch": sb, "steps": steps,
            "params_G": sum(p.numel() for p in model.G.parameters()),
            "params_D": sum(p.numel() for p in model.D.parameters()),
            "train_img_per_s": train_ips, "sample_img_per_s": sample_ips,
            "seconds_per_step": {k: v / steps for k, v in seconds.items()},
            "mflop_per_train_image": flops_per_step / batch / 1e6,
            "train_gflop_per_s": flops_per_step * steps / total / 1e9,
            "mflop_per_sample_image": flops_per_sample_call / sb / 1e6,
            "sample_gflop_per_s": flops_per_sample_call * n_calls / sample_seconds / 1e9, "peak_memory_mb": peak_mb}


def parse_p(text: str) -> Optional[float]:
    """``"none"`` -> None (no augmentation), else a probability in [0, 1]; raises ValueError otherwise."""
    if text.strip().lower() in ("none", "-"):
        return None
    try:
        p = float(text)
    except ValueError:
        p = -1.0
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"--ada-p {text!r}: use probabilities in [0, 1] or none, comma-separated")
    return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resolutions", default="32,64")
    ap.add_argument("--modes", default="scaled,grouped")
    ap.add_argument("--steps", type=int, default=32, help="timed training steps (a multiple of 16 includes R1 fairly)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sample-batch", type=int, default=None, help="images per sampling call (default: --batch-size)")
    ap.add_argument("--channel-base", type=int, default=2048)
    ap.add_argument("--channel-max", type=int, default=128)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--ada-p", default="none", help="comma-separated ADA probabilities to measure at "
                                                     "(none: no augmentation), e.g. none,0.2")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # "RES,MODE,P": run in this process, print JSON
    add_thread_and_json_options(ap)
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.sample_batch is not None and args.sample_batch < 1:
        ap.error(f"--sample-batch {args.sample_batch}: give at least 1 image per call")
    sample_batch = args.sample_batch or args.batch_size
    try:
        ada_ps = [parse_p(v) for v in args.ada_p.split(",")]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.one:
        if args.threads:
            torch.set_num_threads(args.threads)
        res, mode, p = args.one.split(",")
        print(json.dumps(run_one(int(res), mode, args.steps, args.batch_size, sample_batch, args.channel_base,
                                 args.channel_max, device, parse_p(p))))
        return 0
    peak = start(args)
    print(f"# stylegan2, channel_base {args.channel_base}, channel_max {args.channel_max}, batch {args.batch_size}, "
          f"sampling batch {sample_batch}, {args.steps} timed steps, device {device}")
    print("\n| res | conv | ADA p | train img/s | sample img/s | MFLOP/train img | train GFLOP/s (% of peak) | "
          "sample GFLOP/s (% of peak) | s/step D · Dreg/16 · G · Greg/4 | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for res in [int(r) for r in args.resolutions.split(",")]:
        for mode, p in [(m, p) for m in args.modes.split(",") for p in ada_ps]:
            cmd = [sys.executable, __file__, "--one", f"{res},{mode},{p}", "--steps", str(args.steps),
                   "--batch-size", str(args.batch_size), "--sample-batch", str(sample_batch),
                   "--channel-base", str(args.channel_base),
                   "--channel-max", str(args.channel_max), "--device", args.device,
                   "--threads", str(args.threads or torch.get_num_threads())]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            sp = r["seconds_per_step"]
            parts = " · ".join(f"{sp[k]:.3f}" for k in ("D", "Dreg", "G", "Greg") if k in sp)
            print(f"| {res} | {mode} | {'–' if p is None else p} | {r['train_img_per_s']:.1f} | "
                  f"{r['sample_img_per_s']:.0f} | {r['mflop_per_train_image']:.0f} | "
                  f"{r['train_gflop_per_s']:.0f} ({100 * r['train_gflop_per_s'] / peak:.0f}%) | "
                  f"{r['sample_gflop_per_s']:.0f} ({100 * r['sample_gflop_per_s'] / peak:.0f}%) | "
                  f"{parts} | {r['peak_memory_mb']:.0f} |", flush=True)
    print("\ns/step: seconds per training step spent in each phase, averaged over all steps (Dreg runs every 16th "
          "step, Greg every 4th); GFLOP/s = FLOPs (flop_counter) / seconds of training or sampling")
    for r in rows:
        if r["resolution"] == 32 and r["ada_p"] is None:
            def ratio(ips: float, quoted: tuple[int, int]) -> str:
                return f"{ips / quoted[1]:.1f}-{ips / quoted[0]:.1f}x"

            train = ratio(r["train_img_per_s"], LUCIDRAINS_TRAIN)
            sample = ratio(r["sample_img_per_s"], LUCIDRAINS_SAMPLE)
            print(f"against lucidrains' stylegan2-pytorch as quoted in issue 9 (32x32, batch 8/16, "
                  f"{LUCIDRAINS_TRAIN[0]}-{LUCIDRAINS_TRAIN[1]} train, {LUCIDRAINS_SAMPLE[0]}-{LUCIDRAINS_SAMPLE[1]} "
                  f"sample img/s), {r['mode']}: training {train}, sampling at batch {r['sample_batch']} {sample}")
    if args.json:
        args.json.write_text(json.dumps({"peak_gflops": peak, "settings": {k: str(v) for k, v in vars(args).items()},
                                         "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
