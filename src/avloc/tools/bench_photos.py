"""``avloc bench photos``: parse the flags, run :func:`avloc.media.probes.photo_transfer.transfer_table` for the
class maps and print its table."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_VISUAL = "efficientnet_lite0"


def run(args: argparse.Namespace) -> int:
    if args.esc is None or args.images is None:
        print("avloc bench photos: give --esc FOLDER (the sounds) and --images FOLDER (the photos)")
        return 2
    if len(args.visual) > 1:
        print(f"avloc bench photos: give one --visual backbone, got {' '.join(args.visual)}")
        return 2
    from avloc.media.backbones import create_backbone
    from avloc.media.decode import MediaError
    from avloc.media.probes.photo_transfer import transfer_table
    from avloc.media.weights import WeightsError
    from avloc.tools.paths import config_path

    try:
        backbone = create_backbone(args.visual[0] if args.visual else DEFAULT_VISUAL).eval()
        transfer_table(Path(args.esc), Path(args.images), {n: config_path(n) for n in args.class_map},
                       Path(args.out), backbone)
    except (OSError, ValueError, MediaError, WeightsError) as exc:
        print(f"avloc bench photos: error: {exc}")
        return 2
    print((Path(args.out) / "photos.md").read_text())
    return 0
