"""CycleGAN training and translation throughput (issue 10, Speed): images/s of the toolkit's ``cyclegan``
through the real training loop, and translation images/s and peak memory for a 512×512 photo.

Configurations (``--configs``, comma-separated):

* ``ref9``: the reference configuration — ResNet generator with 9 residual blocks, 64 filters, 70×70
  PatchGAN with 64 filters, 128×128, batch 1 (junyanz's ``--netG resnet_9blocks``);
* ``ref6``: the same with 6 residual blocks (``resnet_6blocks``, the paper's choice at 128×128);
* ``proof``: the configuration of the horse2zebra proof, set with ``--proof-resolution``,
  ``--proof-width``, ``--proof-blocks``, ``--proof-d-width``, ``--proof-d-layers``, ``--proof-batch``
  (default 128×128, 32 filters, 6 blocks, batch 1: the CPU-budget width of docs/image_to_image.md).

For each configuration:

* **training** images/s through ``Trainer.fit`` — the code ``imagegen train cyclegan`` runs (data
  streams, phase ``G`` then ``D`` with only the phase optimiser's parameters trainable, channels-last,
  the model's jitter, history pools and learning-rate schedule) — on the horse2zebra train zips when
  ``DATA_DIR/horse2zebra`` has them (loaded into memory at the configuration's resolution before the
  clock starts), else on random images (``--train-data``). Every step is time-stamped through the
  trainer's ``should_stop`` hook; the first ``--warmup`` steps are excluded; one training image = one
  image of each domain (one step at batch 1), as junyanz counts them. FLOPs of one training image
  (``torch.utils.flop_counter``, forward and backward of both phases), GFLOP/s and % of the fp32
  matmul peak measured at the start of the same run;
* **translation** (``model.translate``, what ``imagegen translate`` calls for an image that needs no
  tiling, eval mode, no grad, batch 1) of one photo at each of ``--translate-sizes`` (512 for the
  issue; 128 for the comparison with junyanz's test figure): median seconds over ``--repeats`` after
  ``--warmup`` untimed calls, images/s, GFLOP/s; the photo is a real one from
  ``DATA_DIR/style_transfer`` (a 512×512 content photo) or ``DATA_DIR/horse2zebra``, centre-cropped
  and resized, else random input (the JSON says which). The generator is untrained (random
  initialisation): the arithmetic, hence the time, does not depend on the weights;
* **peak memory**: each task runs in its own process (``--same-process`` only for quick checks); the
  peak resident set size (``VmHWM``) is reset after the model and data are built and read after the
  timed steps, so it covers training (or translation) itself; the resident size just before is given
  too (``peak - before`` = what the task adds).

Reference (quoted from issue 10, not measured here): the junyanz/pytorch-CycleGAN-and-pix2pix
implementation measured on one of these 2-core machines: 0.41–0.42 training images/s with
resnet_9blocks and 0.54–0.56 with resnet_6blocks at 128×128, batch 1, and 6.9–8.4 test images/s. The
ratio imagegen / reference is printed for ``ref9``/``ref6`` training, and for their translation at
128×128 (the issue states neither the resolution nor the generator of the test figure; see
``REFERENCE["test_note"]``).

Usage (run alone: a second busy process on 2 cores makes both several times slower)::

    python benchmarks/bench_cyclegan.py --json docs/results/bench-cyclegan.json
    python benchmarks/bench_cyclegan.py --configs proof --proof-width 32 --proof-blocks 6 --steps 10
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import add_thread_and_json_options, peak_rss_mib, reset_peak_rss, rss_mib, start  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"

#: the junyanz figures of issue 10 (Speed), quoted as the issue states them
REFERENCE: dict[str, Any] = {
    "implementation": "junyanz/pytorch-CycleGAN-and-pix2pix",
    "provenance": "issue 10 (Speed): 'the junyanz CycleGAN implementation was measured on one of these 2-core "
                  "machines'; quoted, not measured by this script",
    "train_img_per_s": {"resnet_9blocks": [0.41, 0.42], "resnet_6blocks": [0.54, 0.56]},
    "train_resolution": 128,
    "train_batch": 1,
    "test_img_per_s": [6.9, 8.4],
    "test_note": "the issue gives neither the resolution nor the generator of the test figure; it is compared "
                 "with ref9 and ref6 at 128x128, the training resolution (an assumption: one 128x128 translation "
                 "costs 24.8 GFLOP with resnet_9blocks and 17.5 with resnet_6blocks, so 6.9-8.4 img/s is "
                 "121-208 GFLOP/s; at 256x256, 4x as much, it would need 484-832 GFLOP/s, above the 321 GFLOP/s "
                 "fp32 matmul peak measured on these cores)",
}

#: the reference architecture (ngf = ndf = 64, 3-layer PatchGAN) at the reference's size and batch
REF_CONFIG: dict[str, Any] = dict(resolution=128, g_width=64, d_width=64, d_layers=3, batch=1)


def config_table(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Name → {resolution, g_width, g_blocks, d_width, d_layers, batch, reference}."""
    return {
        "ref9": {**REF_CONFIG, "g_blocks": 9, "reference": "resnet_9blocks"},
        "ref6": {**REF_CONFIG, "g_blocks": 6, "reference": "resnet_6blocks"},
        "proof": dict(resolution=args.proof_resolution, g_width=args.proof_width, g_blocks=args.proof_blocks,
                      d_width=args.proof_d_width, d_layers=args.proof_d_layers, batch=args.proof_batch,
                      reference=None),
    }


def model_config(cfg: dict[str, Any]):
    from imagegen.models.cyclegan import CycleGANConfig

    return CycleGANConfig(resolution=cfg["resolution"], channels=3, g_width=cfg["g_width"], g_blocks=cfg["g_blocks"],
                          d_width=cfg["d_width"], d_layers=cfg["d_layers"])


def build(cfg: dict[str, Any]):
    from imagegen.models.cyclegan import CycleGAN

    torch.manual_seed(0)
    return CycleGAN(model_config(cfg))


# ---------------------------------------------------------------------------------------------- data
def horse2zebra_zips(data_dir: Path) -> Optional[tuple[Path, Path]]:
    d = data_dir / "horse2zebra"
    a, b = d / "horse2zebra_trainA.zip", d / "horse2zebra_trainB.zip"
    return (a, b) if a.is_file() and b.is_file() else None


def find_photo(data_dir: Path) -> Optional[Path]:
    """A real photo for translation: a 512×512 content photo of the style-transfer set, else any of its
    content photos, else the first horse of horse2zebra (256×256, upscaled); None if none is here."""
    st = data_dir / "style_transfer"
    for p in (st / "adain_inputs" / "content" / "golden_gate.jpg", st / "adain_inputs" / "content" / "sailboat.jpg",
              st / "neural_style_examples" / "golden_gate.jpg", st / "fast_neural_style" / "content" / "amber.jpg"):
        if p.is_file():
            return p
    content = sorted((st / "adain_inputs" / "content").glob("*.jpg")) if st.is_dir() else []
    if content:
        return content[0]
    zips = horse2zebra_zips(data_dir)
    return zips[0] if zips else None


def load_photo(path: Optional[str], size: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """[1, 3, size, size] float32 in [-1, 1]: the photo centre-cropped to a square and resized (bicubic),
    or uniform random input (seed 0) when ``path`` is None; and a description for the JSON."""
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    if path is None:
        g = torch.Generator().manual_seed(0)
        return torch.rand(1, 3, size, size, generator=g) * 2 - 1, {"kind": "random", "note": "uniform in [-1, 1]"}
    p = Path(path)
    member = None
    if p.suffix.lower() == ".zip":
        with zipfile.ZipFile(p) as z:
            member = sorted(n for n in z.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")))[0]
            im = Image.open(io.BytesIO(z.read(member)))
            im.load()
    else:
        im = Image.open(p)
        im.load()
    w, h = im.size
    im = im.convert("RGB")
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if s != size:
        im = im.resize((size, size), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None].contiguous()
    info = {"kind": "photo", "path": str(p) + (f"::{member}" if member else ""), "original_size_wh": [w, h],
            "prepared": f"centre crop {s}x{s}" + (f", bicubic {'up' if s < size else 'down'}scale to {size}x{size}"
                                                  if s != size else "")}
    return x, info


def write_random_domains(root: Path, res: int, n: int) -> tuple[Path, Path]:
    """Two folders of ``n`` random RGB PNGs at ``res``×``res`` (the fallback training data)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for d in ("A", "B"):
        folder = root / d
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
        out.append(folder)
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------- tasks
def train_flops_per_image(cfg: dict[str, Any]) -> float:
    """FLOPs of one training image: phase G then phase D, forward and backward, each with only its
    optimiser's parameters trainable (as the trainer runs them), counted by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build(cfg)
    opts = model.configure_optimizers()
    g = torch.Generator().manual_seed(0)
    r, b = cfg["resolution"], cfg["batch"]
    real = {"A": torch.rand(b, 3, r, r, generator=g) * 2 - 1, "B": torch.rand(b, 3, r, r, generator=g) * 2 - 1}
    with FlopCounterMode(display=False) as fc:
        for ph in model.phases():
            for name, opt in opts.items():
                for group in opt.param_groups:
                    for p in group["params"]:
                        p.requires_grad_(name == ph.optimizer_name)
            model.training_step(ph.name, real)["loss"].backward()
    return fc.get_total_flops() / b


def train_task(cfg: dict[str, Any], steps: int, warmup: int, train_data: str, data_dir: Path,
               threads: int) -> dict[str, Any]:
    """Train ``warmup + steps`` steps with ``Trainer.fit``; time the last ``steps``."""
    from imagegen.training import TrainConfig, Trainer

    total = warmup + steps
    stamps: list[float] = []
    mem: dict[str, Any] = {}

    def should_stop(step: int) -> bool:  # polled by the trainer after every step (step = steps done)
        stamps.append(time.perf_counter())
        if step == warmup:
            mem["rss_before_mib"] = rss_mib()
            mem["peak_scope"] = "timed steps" if reset_peak_rss() else "process"
        if step == total:
            mem["peak_rss_mib"] = peak_rss_mib()
        return False

    zips = horse2zebra_zips(data_dir) if train_data == "auto" else None
    with tempfile.TemporaryDirectory() as tmp:
        if zips is not None:
            a, b = zips
            data = {"kind": "horse2zebra", "A": str(a), "B": str(b)}
        else:
            a, b = write_random_domains(Path(tmp) / "data", cfg["resolution"], max(4, 2 * cfg["batch"]))
            data = {"kind": "random", "note": f"{max(4, 2 * cfg['batch'])} random RGB images per domain"}
        tc = TrainConfig(sources={"a": {"data": str(a)}, "b": {"data": str(b)}}, steps=total, batch_size=cfg["batch"],
                         threads=threads, log_every=10**9, sample_every=10**9, ckpt_every=10**9, ckpt_minutes=0,
                         keep_ckpts=1, grid_size=6, progress=False, seed=0)
        t0 = time.perf_counter()
        Trainer("cyclegan", model_config(cfg), tc, Path(tmp) / "run", echo=lambda s: None,
                should_stop=should_stop).fit()
        fit_seconds = time.perf_counter() - t0
    per_step = [t1 - t0_ for t0_, t1 in zip(stamps[warmup - 1:], stamps[warmup:])]
    seconds = stamps[total - 1] - stamps[warmup - 1]
    model = build(cfg)
    flops = train_flops_per_image(cfg)
    ips = steps * cfg["batch"] / seconds
    return {"task": "train", **cfg, "g_blocks": model.config.g_blocks, "train_data": data,
            "params_G": sum(p.numel() for m in (model.G_AB, model.G_BA) for p in m.parameters()),
            "params_D": sum(p.numel() for m in (model.D_A, model.D_B) for p in m.parameters()),
            "warmup_steps": warmup, "timed_steps": steps, "train_img_per_s": ips,
            "seconds_per_step_median": statistics.median(per_step), "seconds_per_step": per_step,
            "train_img_per_s_median_step": cfg["batch"] / statistics.median(per_step),
            "mflop_per_train_image": flops / 1e6, "train_gflop_per_s": ips * flops / 1e9,
            "fit_seconds_total": fit_seconds, "threads": torch.get_num_threads(), **mem}


def translate_task(cfg: dict[str, Any], size: int, repeats: int, warmup: int, photo: Optional[str],
                   threads: int) -> dict[str, Any]:
    """Translate one photo A → B at ``size``×``size``; median seconds over ``repeats`` after ``warmup``."""
    from torch.utils.flop_counter import FlopCounterMode

    if threads:
        torch.set_num_threads(threads)
    model = build(cfg).eval()
    img, info = load_photo(photo, size)
    rss_before = rss_mib()
    scope = "translation" if reset_peak_rss() else "process"
    for _ in range(warmup):
        model.translate(img, "AB")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = model.translate(img, "AB")
        times.append(time.perf_counter() - t)
    peak = peak_rss_mib()
    assert tuple(out.shape) == tuple(img.shape), (out.shape, img.shape)
    with FlopCounterMode(display=False) as fc:
        model.translate(img, "AB")
    med = statistics.median(times)
    return {"task": "translate", **cfg, "g_blocks": model.config.g_blocks, "size": size, "input": info,
            "weights": "untrained (random initialisation); the time does not depend on the weights",
            "warmup": warmup, "repeats": repeats, "seconds_median": med, "seconds": times,
            "translate_img_per_s": 1 / med, "gflop_per_image": fc.get_total_flops() / 1e9,
            "gflop_per_s": fc.get_total_flops() / med / 1e9, "peak_rss_mib": peak, "rss_before_mib": rss_before,
            "peak_scope": scope, "threads": torch.get_num_threads()}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    if task["task"] == "train":
        return train_task(task["cfg"], task["steps"], task["warmup"], task["train_data"], Path(task["data_dir"]),
                          task["threads"])
    return translate_task(task["cfg"], task["size"], task["repeats"], task["warmup"], task["photo"], task["threads"])


# ---------------------------------------------------------------------------------------------- report
def ratio_range(ours: float, ref: list[float]) -> list[float]:
    """imagegen / reference for the reference's [low, high] figures: [ours / high, ours / low]."""
    return [ours / ref[1], ours / ref[0]]


def add_reference(row: dict[str, Any]) -> None:
    """The ratio to the quoted junyanz figure where the configuration is the reference's (else None)."""
    same = all(row[k] == v for k, v in REF_CONFIG.items())
    row["reference"] = None
    row["ratio_to_reference"] = None
    if row["task"] == "train" and same and row.get("g_blocks") in (6, 9):
        name = f"resnet_{row['g_blocks']}blocks"
        row["reference"] = {"name": name, "train_img_per_s": REFERENCE["train_img_per_s"][name]}
        row["ratio_to_reference"] = ratio_range(row["train_img_per_s"], REFERENCE["train_img_per_s"][name])
    elif row["task"] == "translate" and same and row.get("g_blocks") in (6, 9) and row["size"] == 128:
        row["reference"] = {"name": "junyanz test img/s (128x128 and the architecture assumed, see test_note)",
                            "test_img_per_s": REFERENCE["test_img_per_s"]}
        row["ratio_to_reference"] = ratio_range(row["translate_img_per_s"], REFERENCE["test_img_per_s"])


def _ratio(r: dict[str, Any]) -> str:
    q = r["ratio_to_reference"]
    return f"{q[0]:.2f}–{q[1]:.2f}×" if q else "–"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="ref9,ref6,proof", help="comma-separated: ref9, ref6, proof")
    ap.add_argument("--proof-resolution", type=int, default=128, help="proof configuration: training crop size")
    ap.add_argument("--proof-width", type=int, default=32, help="proof configuration: generator width (ngf)")
    ap.add_argument("--proof-blocks", type=int, default=None,
                    help="proof configuration: residual blocks (default: the paper's rule, 6 at ≤128 px, else 9)")
    ap.add_argument("--proof-d-width", type=int, default=64, help="proof configuration: discriminator width (ndf)")
    ap.add_argument("--proof-d-layers", type=int, default=3, help="proof configuration: PatchGAN stride-2 layers")
    ap.add_argument("--proof-batch", type=int, default=1, help="proof configuration: batch size")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per configuration")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps (and translations) before timing (≥ 1)")
    ap.add_argument("--translate-sizes", default="512,128",
                    help="square photo sizes to translate (512: the issue's; 128: comparable with junyanz's test)")
    ap.add_argument("--repeats", type=int, default=5, help="timed translations per size")
    ap.add_argument("--train-data", choices=["auto", "random"], default="auto",
                    help="auto: the horse2zebra train zips in DATA_DIR if present, else random images")
    ap.add_argument("--photo", default="auto", help="image to translate: auto (a real photo from DATA_DIR if "
                                                    "present), random, or a path")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the shared data folder")
    ap.add_argument("--skip-train", action="store_true", help="only translation")
    ap.add_argument("--skip-translate", action="store_true", help="only training")
    ap.add_argument("--same-process", action="store_true",
                    help="run every task in this process (quick checks; peak memory is then less clean)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a task as JSON: run it here, print JSON
    add_thread_and_json_options(ap)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_task(json.loads(args.one))))
        return 0
    if args.warmup < 1 or args.steps < 1 or args.repeats < 1:
        ap.error("--warmup, --steps and --repeats must be ≥ 1")
    table = config_table(args)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [n for n in names if n not in table]
    if unknown or not names:
        ap.error(f"--configs {args.configs!r}: choose from {', '.join(table)}")
    sizes = [int(s) for s in args.translate_sizes.split(",") if s.strip()]
    photo = None if args.photo == "random" else \
        (find_photo(args.data_dir) if args.photo == "auto" else Path(args.photo))

    peak = start(args)
    threads = args.threads or torch.get_num_threads()
    tasks: list[dict[str, Any]] = []
    for n in names:
        cfg = {k: v for k, v in table[n].items() if k != "reference"}
        cfg["config"] = n
        if not args.skip_train:
            tasks.append({"task": "train", "cfg": cfg, "steps": args.steps, "warmup": args.warmup,
                          "train_data": args.train_data, "data_dir": str(args.data_dir), "threads": threads})
        if not args.skip_translate:
            tasks += [{"task": "translate", "cfg": cfg, "size": s, "repeats": args.repeats, "warmup": args.warmup,
                       "photo": None if photo is None else str(photo), "threads": threads} for s in sizes]

    print(f"# cyclegan: {args.steps} timed training steps after {args.warmup} warm-up steps; translation "
          f"{args.repeats} repeats after {args.warmup} warm-up; photo: {photo or 'random input'}")
    rows: list[dict[str, Any]] = []
    for task in tasks:
        if args.same_process:
            r = run_task(task)
        else:
            cmd = [sys.executable, __file__, "--one", json.dumps(task)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
            r = json.loads(out.stdout.strip().splitlines()[-1])
        add_reference(r)
        if r["task"] == "train":
            r["pct_of_peak"] = 100 * r["train_gflop_per_s"] / peak
        else:
            r["pct_of_peak"] = 100 * r["gflop_per_s"] / peak
        rows.append(r)
        print(json.dumps({k: v for k, v in r.items() if k not in ("seconds_per_step", "seconds")}), flush=True)

    train = [r for r in rows if r["task"] == "train"]
    trans = [r for r in rows if r["task"] == "translate"]
    if train:
        print("\n| config | res | ngf | blocks | ndf | batch | train img/s | s/step (median) | MFLOP/train img "
              "| GFLOP/s (% of peak) | peak RSS MiB (before) | vs junyanz |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in train:
            print(f"| {r['config']} | {r['resolution']} | {r['g_width']} | {r['g_blocks']} | {r['d_width']} | "
                  f"{r['batch']} | {r['train_img_per_s']:.3f} | {r['seconds_per_step_median']:.2f} | "
                  f"{r['mflop_per_train_image']:,.0f} | {r['train_gflop_per_s']:.0f} ({r['pct_of_peak']:.0f}%) | "
                  f"{r['peak_rss_mib']:.0f} ({r['rss_before_mib']:.0f}) | {_ratio(r)} |")
    if trans:
        print("\n| config | blocks | ngf | size | translate img/s | s/img (median) | GFLOP/img | GFLOP/s (% of peak) "
              "| peak RSS MiB (before) | vs junyanz test |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in trans:
            print(f"| {r['config']} | {r['g_blocks']} | {r['g_width']} | {r['size']} | {r['translate_img_per_s']:.2f} "
                  f"| {r['seconds_median']:.3f} | {r['gflop_per_image']:.1f} | {r['gflop_per_s']:.0f} "
                  f"({r['pct_of_peak']:.0f}%) | {r['peak_rss_mib']:.0f} ({r['rss_before_mib']:.0f}) | {_ratio(r)} |")
    print(f"\nreference ({REFERENCE['provenance']}): train {REFERENCE['train_img_per_s']} img/s at 128x128 batch 1, "
          f"test {REFERENCE['test_img_per_s']} img/s; {REFERENCE['test_note']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "benchmark": "cyclegan", "peak_gflops": peak,
            "machine": {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                        "torch": torch.__version__, "threads": threads},
            "settings": {k: str(v) for k, v in vars(args).items()},
            "configs": {n: table[n] for n in names}, "reference": REFERENCE,
            "translate_input": trans[0]["input"] if trans else None,
            "train": train, "translate": trans}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
