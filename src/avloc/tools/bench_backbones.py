"""``avloc bench backbones``: parse the flags, run :func:`avloc.media.probes.bench.run_backbone_bench`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--esc", default=None, help="backbones, photos: ESC folder ('NNN - Class/F-ID-TAKE.ogg'), e.g. "
                   "../shared/real/esc10")
    p.add_argument("--images", default=None, help="backbones, photos: photos named '<wnid>_*.JPEG', e.g. "
                   "../shared/real/imagenet_samples")
    p.add_argument("--out", default="runs/bench_backbones", help="backbones, photos: report and feature cache folder")
    p.add_argument("--class-map", nargs="+", default=["media/esc10_imagenet.json"],
                   help="photos: class maps to probe (paths or names under configs/)")
    p.add_argument("--audio", nargs="+", default=[], help="backbones: audio backbones (default: all registered)")
    p.add_argument("--visual", nargs="+", default=[], help="backbones: visual backbones (default: all "
                   "registered); photos: the one backbone (default efficientnet_lite0)")
    p.add_argument("--layers", nargs="+", default=[], help="backbones: tapped layers to score (default: every "
                   "layer of a backbone that has a choice, e.g. soundnet8 pool5 conv6 conv7)")
    p.add_argument("--esc-per-class", type=int, default=0, help="backbones: clips per class (0: all)")
    p.add_argument("--images-limit", type=int, default=0, help="backbones: photos used (0: all)")


def run(args: argparse.Namespace) -> int:
    from avloc.media.probes.bench import REFERENCE, BenchSpec, run_backbone_bench

    if args.esc is None and args.images is None:
        print("avloc bench backbones: give --esc FOLDER and/or --images FOLDER")
        return 2
    from avloc.media.extract_bench import parse_combo

    try:
        engines = [parse_combo(c) for c in args.engines] if args.engines else [REFERENCE]
    except ValueError as exc:
        print(f"avloc bench backbones: error: {exc}")
        return 2
    spec = BenchSpec(esc_dir=Path(args.esc) if args.esc else None, images_dir=Path(args.images) if args.images
                     else None, out=Path(args.out), audio=args.audio, visual=args.visual, layers=args.layers,
                     esc_per_class=args.esc_per_class, images=args.images_limit, engines=engines)
    report = run_backbone_bench(spec)
    print((spec.out / "backbones.md").read_text())
    skipped = [r for r in report["rows"] if "skipped" in r]
    return 0 if len(skipped) < len(report["rows"]) else 1

