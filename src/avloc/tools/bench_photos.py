"""``avloc bench photos``: parse the flags, run :func:`avloc.media.probes.photo_transfer.photo_transfer` for each
class map and print one table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def transfer_table(esc: Path, images: Path, class_maps: list[str], out: Path, visual: str = "efficientnet_lite0"
                   ) -> dict[str, dict]:
    """Per class map: the photo-transfer probe's val/test recall per seen class (writes photos.json, photos.md)."""
    from avloc.media.backbones import create_backbone
    from avloc.media.compose.sources import collect_sources, read_class_map
    from avloc.media.probes.imagenet import IMAGE_SUFFIXES
    from avloc.media.probes.photo_transfer import pooled_features, photo_transfer
    from avloc.tools.paths import config_path

    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    features = pooled_features(files, create_backbone(visual).eval(), out / "cache")
    report = {}
    for name in class_maps:
        path = config_path(name)
        mapping, not_unrelated = read_class_map(path)
        sources = collect_sources(esc, images, mapping, str(path), not_unrelated)
        report[name] = photo_transfer(sources, features).as_dict()
    lines = [f"Photo transfer ({visual}, pooled features; class-balanced logistic regression trained on the train "
             "split's photos, L2 chosen on val): recall of each seen class's val / test photos (photos)", "",
             "| class map | class | val | test |", "|---|---|---|---|"]
    for name, r in report.items():
        for c in r["classes"] + ["unrelated"]:
            cells = [f"{r['recall'][s].get(c, float('nan')) * 100:.0f} % ({r['photos'][s][c]})" for s in ("val", "test")]
            lines.append(f"| {name} | {c} | {cells[0]} | {cells[1]} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "photos.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "photos.md").write_text("\n".join(lines) + "\n")
    return report


def run(args: argparse.Namespace) -> int:
    if args.esc is None or args.images is None:
        print("avloc bench photos: give --esc FOLDER (the sounds) and --images FOLDER (the photos)")
        return 2
    try:
        transfer_table(Path(args.esc), Path(args.images), args.class_map, Path(args.out))
    except (FileNotFoundError, ValueError) as exc:
        print(f"avloc bench photos: error: {exc}")
        return 2
    print((Path(args.out) / "photos.md").read_text())
    return 0
