"""Style-transfer galleries and encoder comparisons: every (content, style) pair stylised with Gatys
optimisation under one or more encoders, or with a trained AdaIN run, timed, and laid out as grids.

Outputs under ``--out-dir``:

* ``<tag>/<content>--<style>.png``: every stylised image (``tag``: the encoder's label; for AdaIN ``adain``, or
  each run's label when several ``--run`` are given);
* ``gallery-<tag>.jpg``: a content × style grid per encoder / run (first row the styles, first column the
  contents; each cell letterboxed into a ``--cell`` square on white);
* ``compare.jpg`` (with several encoders or runs): one row per pair, columns content, style, then one per
  encoder or run;
* ``timings.json``: seconds per image, the encoders' sources and every option.

Encoders (``--encoder``, repeatable, Gatys only): ``random`` (the full VGG-19 with Kaiming-normal weights),
``random:W1,W2,W3,W4,W5`` (a narrower random VGG-19), ``imagenet``, or the path of a torchvision-layout file
(e.g. one written by ``imagegen train-encoder``); ``LABEL=SPEC`` names the column.

Usage::

    python scripts/style_gallery.py gatys --content a.jpg b.jpg --style s.jpg t.jpg \\
        --encoder random --encoder trained=encoders/vgg19-half-cifar10.pth --size 256 --steps 100 --out-dir out
    python scripts/style_gallery.py adain --run runs/adain --content a.jpg --style s.jpg --size 512 --out-dir out
    python scripts/style_gallery.py adain --run before=runs/adain --run after=runs/adain2 --content a.jpg \
        --style s.jpg --size 512 --out-dir out          # two runs side by side in compare.jpg
    python scripts/style_gallery.py controls --run runs/adain --content a.jpg --style s.jpg t.jpg --out-dir out

``score`` re-reads a ``gatys`` output directory and scores every stylised image under every encoder of the
comparison (``--encoder``, the same specs): the content loss at relu4_2 and the style loss (Eq. 4-5 over
relu1_1 ... relu5_1), with each layer's activations divided by their mean over the content and style images
(as the optimisation does), the style loss given as a fraction of the unstylised photo's. Each encoder
thus also judges the images the others made; ``score.json`` and a markdown table. ``layout`` redraws the
gallery and comparison pictures of an output directory (e.g. with another ``--cell`` or ``--quality``)
from its saved images, without stylising again.

With ``--alpha 0`` the ``adain`` mode also scores each output against its photo (PSNR in dB and SSIM,
:func:`imagegen.metrics.paired.paired_scores`, the photo resized to the output's size): AdaIN at α = 0
decodes the photo's own features, so this measures how well the decoder inverts the encoder
(``timings.json`` → ``reconstruction``, with the mean over the photos).

``invert`` asks how much of a photo an encoder layer keeps: for every ``--content`` photo, every ``--encoder``
and every layer of ``--layers``, the image whose features at that layer match the photo's, optimised from
white noise (:func:`imagegen.style.gatys.stylize_gatys` with the style weight 0: L-BFGS, ``--steps``
iterations, the content loss alone; the encoder with average pooling, as Gatys et al. 2016 §2 synthesise
images, or ``--pooling max``, as AdaIN's encoder computes, through which optimisation from noise gets far less
far), scored against the photo by PSNR and SSIM. A probe, not a proof: a layer whose features leave the
image undetermined is one no decoder can learn to invert, but failing to optimise is not proof of that
(through max pooling it fails where a trained decoder succeeds). ``invert.jpg`` (rows: photos; columns:
the photo, then encoder × layer) and ``invert.json``; ``--style`` is not used (give any image).

``controls`` (AdaIN, one content and two styles S, T) writes ``controls.jpg``, four rows: the content–style
trade-off α = 0, 0.25, 0.5, 0.75, 1 with S (Huang & Belongie 2017, Eq. 14); interpolation from S to T with
weights 1, 0.75, 0.5, 0.25, 0 (Eq. 15); colour preservation none / luminance / histogram with S (Gatys et al.
2017); and S on the left half, T on the right half (``masked_adain``), beside the content, S and T.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from imagegen.cli.stylize import load_image
from imagegen.errors import ConfigError, ImagegenError
from imagegen.nn.vgg import load_vgg19, parse_encoder_spec
from imagegen.sampling.images import mosaic, save_png_atomic, to_uint8_nhwc


def parse_encoder(spec: str) -> tuple[str, str]:
    """``LABEL=SPEC`` or ``SPEC`` → (label, spec); the label defaults to the spec (a file: its stem)."""
    if "=" in spec:
        label, spec = spec.split("=", 1)
        return label, spec
    return (Path(spec).stem if Path(spec).suffix else spec.replace(":", "-").replace(",", "-")), spec


def parse_run(spec: str) -> tuple[str, str]:
    """``LABEL=RUN`` or ``RUN`` → (label, run directory); the label defaults to the directory's name."""
    if "=" in spec:
        label, run = spec.split("=", 1)
        return label, run
    return Path(spec).name, spec


def build_encoder(spec: str):  # noqa: ANN201 - VGG19Encoder
    weights, widths = parse_encoder_spec(spec)
    return load_vgg19(weights, widths=widths)


def to_hwc(img: torch.Tensor) -> np.ndarray:
    return to_uint8_nhwc(img.detach().cpu())[0]


@torch.no_grad()
def style_content_losses(encoder, out: torch.Tensor, content: torch.Tensor, style: torch.Tensor
                         ) -> tuple[float, float]:
    """(content loss, style loss) of ``out`` [1, 3, H, W] against the content photo (resized to H×W) and
    the style image (long side max(H, W)) under ``encoder``, features normalised as in stylize_gatys."""
    from imagegen.style.gatys import (DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, _fit_long_side, _resize,
                                      content_loss, gram_matrix, style_layer_loss)

    layers = (DEFAULT_CONTENT_LAYER, *DEFAULT_STYLE_LAYERS)
    hw = tuple(out.shape[-2:])
    c = _resize(content, hw)
    st = _resize(style, _fit_long_side(tuple(style.shape[-2:]), max(hw)))
    fc, fs, fo = (encoder(x, layers, "avg") for x in (c, st, out))
    scale = {n: 2.0 / max(float(fc[n].mean()) + float(fs[n].mean()), 1e-12) for n in layers}
    lc = float(content_loss(fo[DEFAULT_CONTENT_LAYER] * scale[DEFAULT_CONTENT_LAYER],
                            fc[DEFAULT_CONTENT_LAYER] * scale[DEFAULT_CONTENT_LAYER]))
    ls = sum(float(style_layer_loss(gram_matrix(fo[n] * scale[n]), gram_matrix(fs[n] * scale[n])))
             for n in DEFAULT_STYLE_LAYERS) / len(DEFAULT_STYLE_LAYERS)
    return lc, ls


def score(args: argparse.Namespace, contents: list, styles: list) -> int:
    """The ``score`` table (see the module docstring)."""
    record = json.loads((args.out_dir / "timings.json").read_text())
    tags = list(record["results"])
    scorers = [parse_encoder(e) for e in (args.encoder or [f"{t}={record['encoders'][t]['spec']}" for t in tags])]
    table: dict = {}
    for s_label, spec in scorers:
        enc = build_encoder(spec)
        for cname, c in contents:
            for sname, st in styles:
                out = c
                for tag in tags:
                    out = load_image(args.out_dir / tag / f"{cname}--{sname}.png", "stylised image")
                    lc, ls = style_content_losses(enc, out, c, st)
                    table.setdefault(tag, {}).setdefault(s_label, []).append((lc, ls))
                _, ls0 = style_content_losses(enc, _content_at(c, out), c, st)  # the photo itself, at that size
                for tag in tags:
                    lc, ls = table[tag][s_label][-1]
                    table[tag][s_label][-1] = (lc, ls / ls0 if ls0 > 0 else float("nan"))
    summary = {tag: {sc: {"content_loss": float(np.mean([v[0] for v in vals])),
                          "style_loss_vs_photo": float(np.mean([v[1] for v in vals])), "n": len(vals)}
                     for sc, vals in by.items()} for tag, by in table.items()}
    (args.out_dir / "score.json").write_text(json.dumps({"scorers": dict(scorers), "summary": summary}, indent=2))
    print("| made with \\ scored by | " + " | ".join(lbl for lbl, _ in scorers) + " |")
    print("|---|" + "---|" * len(scorers))
    for tag in tags:
        print(f"| {tag} | " + " | ".join(f"{summary[tag][lbl]['content_loss']:.3f} / "
                                          f"{summary[tag][lbl]['style_loss_vs_photo']:.3f}" for lbl, _ in scorers) + " |")
    print("(content loss / style loss as a fraction of the unstylised photo's; means over the pairs)")
    return 0


def _content_at(content: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    from imagegen.style.gatys import _resize

    return _resize(content, tuple(like.shape[-2:]))


def photo_scores(out: torch.Tensor, content: torch.Tensor) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``out`` [1, 3, H, W] in [-1, 1] against the photo resized to H×W
    (:func:`imagegen.metrics.paired.paired_scores`)."""
    from imagegen.metrics.paired import paired_scores

    return {k: float(v[0]) for k, v in paired_scores(out, _content_at(content, out)).items()}


def add_mean(by_photo: dict[str, dict[str, float]]) -> None:
    """Add ``mean``: the PSNR and SSIM of :func:`photo_scores` averaged over the photos."""
    by_photo["mean"] = {k: float(np.mean([v[k] for v in by_photo.values()])) for k in ("psnr", "ssim")}


def invert(args: argparse.Namespace, contents: list) -> int:
    """The ``invert`` picture and scores (see the module docstring)."""
    from imagegen.style.gatys import stylize_gatys

    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    encoders = [parse_encoder(e) for e in (args.encoder or ["random"])]
    record: dict = {"method": "invert", "size": args.size, "steps": args.steps, "optimizer": "lbfgs",
                    "init": "noise", "seed": 0, "pooling": args.pooling, "layers": layers, "encoders": {},
                    "scores": {}, "seconds": {}}
    columns: list[list[np.ndarray]] = []
    header = ["photo"]
    for label, spec in encoders:
        enc = build_encoder(spec)
        record["encoders"][label] = {"spec": spec, "source": enc.source, "widths": list(enc.widths)}
        for layer in layers:
            tag = f"{label} {layer}"
            header.append(tag)
            column = []
            for cname, c in contents:
                t0 = time.perf_counter()
                out = stylize_gatys(c, c, style_weight=0.0, content_layer=layer, init="noise", steps=args.steps,
                                    size=args.size, encoder=enc, pooling=args.pooling)
                seconds = time.perf_counter() - t0
                sc = photo_scores(out, c)
                record["scores"].setdefault(tag, {})[cname] = sc
                record["seconds"].setdefault(tag, {})[cname] = round(seconds, 2)
                column.append(to_hwc(out))
                print(f"{tag}: {cname}: PSNR {sc['psnr']:.2f} dB, SSIM {sc['ssim']:.3f} ({seconds:.1f} s)", flush=True)
            add_mean(record["scores"][tag])
            columns.append(column)
    rows = [[to_hwc(c)] + [col[i] for col in columns] for i, (_, c) in enumerate(contents)]
    mosaic(rows, args.cell, header=header, wrap_header=True).save(args.out_dir / "invert.jpg", quality=args.quality)
    (args.out_dir / "invert.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out_dir / 'invert.jpg'}")
    return 0


def controls(args: argparse.Namespace, contents: list, styles: list) -> int:
    """The ``controls`` picture (see the module docstring) and its timings."""
    from imagegen.models.adain import load_adain
    from imagegen.style.adain import stylize_adain

    if len(args.run) != 1 or len(contents) != 1 or len(styles) != 2:
        raise ConfigError("controls needs one --run RUN, one --content and two --style images")
    run_dir = parse_run(args.run[0])[1]
    model = load_adain(run_dir)
    (cname, c), ((sname, s), (tname, t)) = contents[0], styles
    h, w = c.shape[-2:]  # masks are given at the content's own size
    mask = torch.zeros(2, h, w)
    mask[0, :, : w // 2], mask[1, :, w // 2:] = 1, 1
    record: dict = {"method": "controls", "run": run_dir, "encoder": model.encoder.source, "size": args.size,
                    "content": cname, "styles": [sname, tname], "seconds": {}}

    def run(label: str, **kw) -> np.ndarray:
        t0 = time.perf_counter()
        out = stylize_adain(model, c, kw.pop("styles", s), size=args.size, **kw)
        record["seconds"][label] = round(time.perf_counter() - t0, 3)
        return to_hwc(out)

    blank = None
    rows = [[run(f"alpha {a}", alpha=a) for a in (0.0, 0.25, 0.5, 0.75, 1.0)],
            [run(f"interpolation {u}", styles=[s, t], style_weights=[u, 1 - u]) for u in (1.0, 0.75, 0.5, 0.25, 0.0)],
            [run(f"colour {m}", preserve_color=None if m == "none" else m) for m in ("none", "luminance", "histogram")]
            + [blank, blank],
            [run("mask", styles=[s, t], mask=mask), to_hwc(c), to_hwc(s), to_hwc(t), blank]]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    mosaic(rows, args.cell).save(args.out_dir / "controls.jpg", quality=args.quality)
    (args.out_dir / "controls.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out_dir / 'controls.jpg'}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("method", choices=["gatys", "adain", "controls", "score", "layout", "invert"])
    ap.add_argument("--content", nargs="+", required=True, type=Path, help="content photos")
    ap.add_argument("--style", nargs="+", required=True, type=Path, help="style images")
    ap.add_argument("--encoder", action="append", default=[],
                    help="gatys/score/invert: [LABEL=]SPEC, repeatable (default random)")
    ap.add_argument("--layers", default="relu3_1,relu4_1", help="invert: the layers to invert, comma-separated")
    ap.add_argument("--pooling", choices=["avg", "max"], default="avg",
                    help="invert: the encoder's pooling (avg: Gatys', the default; max: AdaIN's)")
    ap.add_argument("--run", action="append", default=[],
                    help="adain/controls: a trained adain run, [LABEL=]RUN; adain: repeatable (compare.jpg)")
    ap.add_argument("--size", type=int, default=256, help="long side of the outputs in pixels")
    ap.add_argument("--steps", type=int, default=100, help="gatys/invert: L-BFGS iterations")
    ap.add_argument("--style-weight", type=float, default=10.0, help="gatys: β (α = 1)")
    ap.add_argument("--alpha", type=float, default=1.0, help="adain: content-style trade-off")
    ap.add_argument("--cell", type=int, default=192, help="grid cell size in pixels")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the pictures")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        contents = [(p.stem, load_image(p, "--content")) for p in args.content]
        styles = [(p.stem, load_image(p, "--style")) for p in args.style]
        args.out_dir.mkdir(parents=True, exist_ok=True)
        record: dict = {"method": args.method, "size": args.size, "contents": [str(p) for p in args.content],
                        "styles": [str(p) for p in args.style], "torch_threads": torch.get_num_threads(),
                        "results": {}}
        outputs: dict[str, dict[tuple[str, str], np.ndarray]] = {}
        if args.method == "gatys":
            from imagegen.style.gatys import stylize_gatys

            record.update(steps=args.steps, optimizer="lbfgs", content_weight=1.0, style_weight=args.style_weight,
                          init="content", pooling="avg", normalize_features=True, encoders={})
            for label, spec in [parse_encoder(e) for e in (args.encoder or ["random"])]:
                enc = build_encoder(spec)
                record["encoders"][label] = {"spec": spec, "source": enc.source, "widths": list(enc.widths)}
                outputs[label] = {}
                for cname, c in contents:
                    for sname, s in styles:
                        t0 = time.perf_counter()
                        out = stylize_gatys(c, s, steps=args.steps, size=args.size, encoder=enc,
                                            style_weight=args.style_weight)
                        seconds = time.perf_counter() - t0
                        outputs[label][(cname, sname)] = to_hwc(out)
                        record["results"].setdefault(label, {})[f"{cname}--{sname}"] = round(seconds, 2)
                        print(f"{label}: {cname} x {sname}: {seconds:.1f} s", flush=True)
        elif args.method == "layout":
            from PIL import Image

            record = json.loads((args.out_dir / "timings.json").read_text())
            for tag in record["results"]:
                outputs[tag] = {(cn, sn): np.asarray(Image.open(args.out_dir / tag / f"{cn}--{sn}.png").convert("RGB"))
                                for cn, _ in contents for sn, _ in styles}
        elif args.method == "score":
            return score(args, contents, styles)
        elif args.method == "controls":
            return controls(args, contents, styles)
        elif args.method == "invert":
            return invert(args, contents)
        else:
            from imagegen.models.adain import load_adain
            from imagegen.style.adain import stylize_adain

            if not args.run:
                raise ConfigError("adain needs --run RUN (a trained adain run)")
            runs = [parse_run(r) for r in args.run]
            if len(runs) == 1 and "=" not in args.run[0]:
                runs = [("adain", runs[0][1])]  # one run: the tag of earlier galleries
            if len({tag for tag, _ in runs}) != len(runs):
                raise ConfigError("--run: give the runs different labels, LABEL=RUN")
            record.update(alpha=args.alpha, runs={})
            for tag, run_dir in runs:
                model = load_adain(run_dir)
                record["runs"][tag] = {"run": run_dir, "encoder": model.encoder.source}
                outputs[tag] = {}
                for cname, c in contents:
                    for sname, s in styles:
                        t0 = time.perf_counter()
                        out = stylize_adain(model, c, s, alpha=args.alpha, size=args.size)
                        seconds = time.perf_counter() - t0
                        outputs[tag][(cname, sname)] = to_hwc(out)
                        record["results"].setdefault(tag, {})[f"{cname}--{sname}"] = round(seconds, 3)
                        note = ""
                        if args.alpha == 0:  # the decoder applied to the photo's own features: how well it inverts
                            sc = photo_scores(out, c)
                            record.setdefault("reconstruction", {}).setdefault(tag, {})[cname] = sc
                            note = f", PSNR {sc['psnr']:.2f} dB, SSIM {sc['ssim']:.3f} against the photo"
                        print(f"{tag}: {cname} x {sname}: {seconds:.2f} s{note}", flush=True)
            for by_content in record.get("reconstruction", {}).values():
                add_mean(by_content)
        c_imgs = {n: to_hwc(c) for n, c in contents}
        s_imgs = {n: to_hwc(s) for n, s in styles}
        for tag, outs in outputs.items():
            if args.method != "layout":
                (args.out_dir / tag).mkdir(exist_ok=True)
                for (cname, sname), img in outs.items():
                    save_png_atomic(img, args.out_dir / tag / f"{cname}--{sname}.png")
            rows = [[None] + [s_imgs[n] for n, _ in styles]]
            rows += [[c_imgs[cn]] + [outs[(cn, sn)] for sn, _ in styles] for cn, _ in contents]
            mosaic(rows, args.cell).save(args.out_dir / f"gallery-{tag}.jpg", quality=args.quality)
        if len(outputs) > 1:
            tags = list(outputs)
            rows = [[c_imgs[cn], s_imgs[sn]] + [outputs[t][(cn, sn)] for t in tags]
                    for cn, _ in contents for sn, _ in styles]
            pic = mosaic(rows, args.cell, header=["content", "style"] + tags, wrap_header=True)
            pic.save(args.out_dir / "compare.jpg", quality=args.quality)
        if args.method != "layout":
            (args.out_dir / "timings.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out_dir}")
        return 0
    except (ValueError, ImagegenError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
