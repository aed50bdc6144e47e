"""DCGAN training and sampling throughput: imagegen's Trainer vs a plain reference loop, same machine, same run.

The reference ("plain") loop is the pytorch/examples ``dcgan/main.py`` training step reproduced
faithfully (``nn.Sequential`` G and D with a final ``Sigmoid`` and ``BCELoss``, D trained on real then
on ``fake.detach()``, G trained through a D whose weight gradients are computed too, default Adam,
contiguous tensors, ``.item()`` for logging every step), with the same architecture and widths as
imagegen's DCGAN at that resolution (z 100, width 64). imagegen is measured through its real training
loop (``Trainer.fit`` on in-memory data, images/s as logged by the trainer, first window discarded).

Also reported: the machine's fp32 matmul peak (GFLOP/s, measured here, now) and the FLOPs of one
training image (counted with ``torch.utils.flop_counter``), so the achieved fraction of peak is explicit.

Usage (run alone: a second busy process on 2 cores makes both several times slower)::

    python benchmarks/bench_dcgan.py                      # 32 and 64 px, batch 64 and 128
    python benchmarks/bench_dcgan.py --res 32 --batch 64 --seconds 10
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import imagegen.data as data
from imagegen.models.dcgan import DCGAN, DCGANConfig
from imagegen.sampling import generate
from imagegen.training import Trainer, TrainConfig

sys.path.insert(0, str(Path(__file__).parent))
from machine import add_thread_and_json_options, start  # noqa: E402


# ------------------------------------------------------------------ the plain pytorch/examples loop
def plain_models(res: int, nc: int = 3, nz: int = 100, width: int = 64) -> tuple[nn.Module, nn.Module]:
    n = int(np.log2(res)) - 2
    g_ch = [width * 2 ** (n - 1 - i) for i in range(n)]
    g: list[nn.Module] = [nn.ConvTranspose2d(nz, g_ch[0], 4, 1, 0, bias=False), nn.BatchNorm2d(g_ch[0]), nn.ReLU(True)]
    for a, b in zip(g_ch[:-1], g_ch[1:]):
        g += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
    g += [nn.ConvTranspose2d(g_ch[-1], nc, 4, 2, 1, bias=False), nn.Tanh()]
    d_ch = g_ch[::-1]
    d: list[nn.Module] = [nn.Conv2d(nc, d_ch[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for a, b in zip(d_ch[:-1], d_ch[1:]):
        d += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, inplace=True)]
    d += [nn.Conv2d(d_ch[-1], 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    return nn.Sequential(*g), nn.Sequential(*d)


def bench_plain_train(res: int, batch: int, seconds: float) -> float:
    torch.manual_seed(0)
    netG, netD = plain_models(res)
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, 3, res, res) * 2 - 1

    def step() -> None:
        netD.zero_grad()
        label = torch.full((batch,), 1.0)
        errD_real = criterion(netD(real).view(-1), label)
        errD_real.backward()
        noise = torch.randn(batch, 100, 1, 1)
        fake = netG(noise)
        label.fill_(0.0)
        errD_fake = criterion(netD(fake.detach()).view(-1), label)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        label.fill_(1.0)
        errG = criterion(netD(fake).view(-1), label)
        errG.backward()
        optG.step()
        _ = (errD_real + errD_fake).item(), errG.item()  # the example prints these every step

    return _time_loop(step, batch, seconds)


def bench_plain_sample(res: int, batch: int, seconds: float) -> float:
    netG, _ = plain_models(res)
    netG.eval()

    def step() -> None:
        with torch.no_grad():
            netG(torch.randn(batch, 100, 1, 1))

    return _time_loop(step, batch, seconds)


def _time_loop(step, batch: int, seconds: float) -> float:
    for _ in range(3):  # warm-up
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0)


# ------------------------------------------------------------------ imagegen
def bench_ours_train(res: int, batch: int, seconds: float, channels_last: bool, ds: data.ImageDataset) -> float:
    # a step count that takes roughly the time budget; the throughput is read from the trainer's own log
    with tempfile.TemporaryDirectory() as tmp:
        log_every = 5
        steps = max(4 * log_every, int(seconds * 600 / batch))
        cfg = TrainConfig(data="bench", steps=steps, batch_size=batch, log_every=log_every, sample_every=10**9,
                          ckpt_every=10**9, progress=False, channels_last=channels_last)
        Trainer("dcgan", DCGANConfig(resolution=res, channels=3), cfg, Path(tmp) / "run",
                echo=lambda s: None, dataset=ds).fit()
        rows = [json.loads(l) for l in (Path(tmp) / "run" / "logs" / "scalars.jsonl").read_text().splitlines()]
    ips = [r["images_per_sec"] for r in rows[1:] if r["step"] % log_every == 0]
    return statistics.median(ips)


def bench_ours_sample(res: int, batch: int, seconds: float, channels_last: bool) -> float:
    model = DCGAN(DCGANConfig(resolution=res, channels=3)).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    n = 0
    generate(model, batch, batch_size=batch)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        generate(model, batch, seed=n, batch_size=batch)
        n += 1
    return n * batch / (time.perf_counter() - t0)


def train_flops_per_image(res: int, batch: int = 16) -> float:
    """FLOPs of one training image (D step + G step, forward and backward), counted by PyTorch."""
    from torch.utils.flop_counter import FlopCounterMode

    m = DCGAN(DCGANConfig(resolution=res, channels=3))
    img = torch.rand(batch, 3, res, res) * 2 - 1
    with FlopCounterMode(display=False) as fc:
        for phase, train in (("D", m.D), ("G", m.G)):
            m.requires_grad_(False)
            train.requires_grad_(True)
            m.training_step(phase, {"img": img, "label": None})["loss"].backward()
    return fc.get_total_flops() / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--seconds", type=float, default=8.0, help="timing budget per measurement")
    add_thread_and_json_options(ap)
    args = ap.parse_args()
    peak = start(args)
    print("| res | batch | train img/s plain | train img/s imagegen | speed-up | imagegen GFLOP/s (% of peak) "
          "| sample img/s plain | sample img/s imagegen |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for res in args.res:
        flops = train_flops_per_image(res)
        rng = np.random.default_rng(0)
        ds = data.ImageDataset(rng.integers(0, 256, (2048, res, res, 3), dtype=np.uint8), name="bench")
        for batch in args.batch:
            plain = bench_plain_train(res, batch, args.seconds)
            ours = bench_ours_train(res, batch, args.seconds, True, ds)
            ps = bench_plain_sample(res, batch, args.seconds / 2)
            os_ = bench_ours_sample(res, batch, args.seconds / 2, True)
            gf = ours * flops / 1e9
            row = dict(res=res, batch=batch, plain_train=plain, ours_train=ours, speedup=ours / plain,
                       gflops=gf, peak=peak, train_mflop_per_image=flops / 1e6, plain_sample=ps, ours_sample=os_)
            results.append(row)
            print(f"| {res} | {batch} | {plain:.0f} | {ours:.0f} | {ours / plain:.2f}× | {gf:.0f} ({100 * gf / peak:.0f}%) "
                  f"| {ps:.0f} | {os_:.0f} |", flush=True)
        print(f"# {res}×{res}: {flops / 1e6:.0f} MFLOP per training image (D + G step, fwd + bwd)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
