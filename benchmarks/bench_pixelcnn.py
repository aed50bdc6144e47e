"""Autoregressive models: training throughput, and sampling time naive vs fast on the same model and seed.

For each model of ``--models`` (``pixelcnn`` by default; ``pixelrnn`` is the Row LSTM,
``pixelrnn-diagonal`` the Diagonal BiLSTM of the same size):

* **training** images/s through the real training loop (``Trainer.fit`` on in-memory 28×28
  binarised-MNIST-shaped data, the trainer's own log, first window discarded), the FLOPs of one
  training image (``torch.utils.flop_counter``, forward + backward), GFLOP/s and % of the fp32
  matmul peak measured at the start of the same run;
* **sampling** seconds for a batch of ``--sample-batch`` images (64 by default) with ``method=naive``
  (the whole network once per pixel, H·W passes) and ``method=fast`` (the model's incremental cache),
  from the same seed, and whether the two batches are identical (models without an incremental
  sampler, the Diagonal BiLSTM, are timed naive only: pass a smaller ``--sample-batch`` for them);
* **peak memory** of fast sampling: the increase of the process's peak resident set size while it
  runs, measured in a fresh subprocess (so earlier work does not set the peak).

Usage (run alone: a second busy process on 2 cores makes both several times slower)::

    python benchmarks/bench_pixelcnn.py                    # the MNIST proof configuration
    python benchmarks/bench_pixelcnn.py --models pixelcnn,pixelrnn --json docs/results/bench-pixelcnn.json
    python benchmarks/bench_pixelcnn.py --models pixelrnn-diagonal --sample-batch 16
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import imagegen.data as data
from imagegen.registry import get_model_class
from imagegen.training import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).parent))
from machine import add_thread_and_json_options, start  # noqa: E402

#: the configurations of the MNIST proofs in docs/autoregressive.md (the Diagonal BiLSTM at the Row LSTM's size)
CONFIGS: dict[str, dict[str, Any]] = {
    "pixelcnn": dict(resolution=28, channels=1, width=32, num_layers=12),
    "pixelrnn": dict(resolution=28, channels=1, width=32, num_layers=4, layer_type="row_lstm"),
    "pixelrnn-diagonal": dict(resolution=28, channels=1, width=32, num_layers=4, layer_type="diagonal_bilstm"),
}


def model_name(name: str) -> str:
    """The registered model of a benchmark entry (``pixelrnn-diagonal`` → ``pixelrnn``)."""
    return name.split("-")[0]


def model_config(name: str) -> Any:
    return get_model_class(model_name(name)).Config(**CONFIGS[name])


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return get_model_class(model_name(name))(model_config(name))


def train_images_per_sec(name: str, batch: int, seconds: float, ds: data.ImageDataset) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        log_every = 5
        steps = max(4 * log_every, int(seconds / max(_time_one_step(build(name), batch), 1e-3)))
        cfg = TrainConfig(data="bench", steps=steps, batch_size=batch, log_every=log_every, sample_every=10**9,
                          ckpt_every=10**9, progress=False)
        Trainer(model_name(name), model_config(name), cfg, Path(tmp) / "run", echo=lambda s: None, dataset=ds).fit()
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "logs" / "scalars.jsonl").read_text().splitlines()]
    ips = [r["images_per_sec"] for r in rows[1:] if r["step"] % log_every == 0]
    return statistics.median(ips)


def _time_one_step(model: torch.nn.Module, batch: int) -> float:
    img = torch.randint(0, 2, (batch, 1, 28, 28)).float() * 2 - 1
    t0 = time.perf_counter()
    model.training_step("train", {"img": img, "label": torch.full((batch,), -1)})["loss"].backward()
    return time.perf_counter() - t0


def train_flops_per_image(name: str, batch: int = 8) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    m = build(name)
    img = torch.randint(0, 2, (batch, 1, 28, 28)).float() * 2 - 1
    with FlopCounterMode(display=False) as fc:
        m.training_step("train", {"img": img, "label": torch.full((batch,), -1)})["loss"].backward()
    return fc.get_total_flops() / batch


def sample_seconds(name: str, n: int, method: str, seed: int = 0) -> tuple[float, torch.Tensor]:
    m = build(name).eval()
    t0 = time.perf_counter()
    img = m.sample(n, torch.Generator().manual_seed(seed), method=method)
    return time.perf_counter() - t0, img


def has_fast_sampler(name: str) -> bool:
    """Whether the model has an incremental (fast) sampler: its ``fast_sampler`` on a blank image is not None."""
    m = build(name).eval()
    cfg = m.config
    with torch.no_grad():
        return m.fast_sampler(torch.zeros(1, cfg.channels or 1, cfg.resolution, cfg.resolution), None) is not None


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fast_peak_child(name: str, n: int, threads: int, q: "mp.Queue[int]") -> None:
    torch.set_num_threads(threads)
    m = build(name).eval()
    m.sample(1, torch.Generator().manual_seed(0), method="fast")  # warm-up allocations
    before = _rss_kib()
    m.sample(n, torch.Generator().manual_seed(0), method="fast")
    q.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)


def fast_sampling_peak_mib(name: str, n: int) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_fast_peak_child, args=(name, n, torch.get_num_threads(), q))
    p.start()
    kib = q.get()
    p.join()
    return max(kib, 0) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="pixelcnn",
                    help="comma-separated: pixelcnn, pixelrnn (Row LSTM), pixelrnn-diagonal (Diagonal BiLSTM)")
    ap.add_argument("--batch", type=int, default=64, help="training batch size")
    ap.add_argument("--seconds", type=float, default=30.0, help="training time budget per model")
    ap.add_argument("--sample-batch", type=int, default=64, help="images per sampling batch")
    add_thread_and_json_options(ap)
    args = ap.parse_args()
    peak = start(args)
    rng = np.random.default_rng(0)
    ds = data.ImageDataset((rng.random((2048, 28, 28, 1)) < 0.13).astype(np.uint8) * 255, name="bench")
    print("| model | params | train img/s | MFLOP/img | GFLOP/s (% of peak) | sample naive s | sample fast s "
          "| speed-up | identical | fast peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = []
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in CONFIGS]
    if unknown or not names:
        ap.error(f"--models {args.models!r}: choose from {', '.join(CONFIGS)}")
    for name in names:
        params = sum(p.numel() for p in build(name).parameters())
        flops = train_flops_per_image(name)
        ips = train_images_per_sec(name, args.batch, args.seconds, ds)
        t_naive, naive = sample_seconds(name, args.sample_batch, "naive")
        has_fast = has_fast_sampler(name)
        t_fast = same = mem = speedup = None
        if has_fast:
            t_fast, fast = sample_seconds(name, args.sample_batch, "fast")
            same, speedup = bool(torch.equal(fast, naive)), t_naive / t_fast
            mem = fast_sampling_peak_mib(name, args.sample_batch)
        gf = ips * flops / 1e9
        row = dict(model=name, config=CONFIGS[name], params=params, train_images_per_sec=ips,
                   train_mflop_per_image=flops / 1e6, gflops=gf, peak_gflops=peak, sample_batch=args.sample_batch,
                   sample_naive_seconds=t_naive, sample_fast_seconds=t_fast, speedup=speedup,
                   identical=same, fast_peak_rss_mib=mem, threads=torch.get_num_threads())
        results.append(row)
        fast_cells = (f"{t_fast:.2f} | {speedup:.0f}× | {same} | {mem:.0f}" if has_fast
                      else "no fast sampler | – | – | –")
        print(f"| {name} | {params:,} | {ips:.1f} | {flops / 1e6:.0f} | {gf:.0f} ({100 * gf / peak:.0f}%) | "
              f"{t_naive:.1f} | {fast_cells} |", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
