"""``avloc zeroshot cache|tune|eval|clips``: the zero-shot detectors measured on labelled videos.

- ``cache VIDEOS... --out FILE.npz``: the per-second backbone tables of each video, computed once;
- ``tune --data DIR --split val --cache FILE --vocab imagenet|ucs --out thresholds.json``: thresholds chosen
  on a labelled composed folder (never on a test split);
- ``eval --data DIR --split test --cache FILE --thresholds FILE``: per-second accuracy and event P/R/F1;
- ``clips --cache FILE --expect JSON --thresholds FILE``: what each natural clip holds and what was found.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zeroshot", help="zero-shot detector: cache backbone tables, choose thresholds on a "
                                        "labelled val split, score a test split or natural clips")
    verbs = p.add_subparsers(dest="zs_command", required=True)
    c = verbs.add_parser("cache", help="per-second backbone tables of videos, saved to one .npz (resumes)")
    c.add_argument("videos", nargs="+", help="video files, folders of videos or .txt lists of paths")
    c.add_argument("--out", required=True, help="the .npz cache to write (videos already in it are skipped)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.zs_command == "cache":
        return _cache(args)
    raise ValueError(f"unknown zeroshot command {args.zs_command}")


def _cache(args: argparse.Namespace) -> int:
    from avloc.tools.extract import passive_openmp

    passive_openmp()
    from avloc.inference.inputs import readable_videos
    from avloc.inference.zeroshot_scores import cache_scores

    paths, bad = readable_videos(args.videos)
    for msg in bad:
        print(f"avloc zeroshot cache: skipped {msg}", file=sys.stderr)
    done = cache_scores(paths, args.out, log=lambda m: print(m, flush=True))
    print(f"wrote {args.out}: {len(done)} videos")
    return 1 if bad else 0
