"""``avloc zeroshot cache|tune|eval|clips``: the zero-shot detectors measured on labelled videos.

- ``cache VIDEOS... --out FILE.npz``: the per-second backbone tables of each video, computed once;
- ``tune --data DIR --split val --cache FILE --vocab soundnet|ucs|soundnet_ext --out thresholds.json``: thresholds chosen
  on a labelled composed folder (never on a test split);
- ``eval --data DIR --split test --cache FILE --thresholds FILE``: per-second accuracy and event P/R/F1;
- ``clips --cache FILE --expect JSON --thresholds FILE``: what each natural clip holds and what was found.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zeroshot", help="zero-shot detector: cache backbone tables, choose thresholds on a "
                                        "labelled val split, score a test split or natural clips")
    verbs = p.add_subparsers(dest="zs_command", required=True, help="cache, tune, eval or clips")
    c = verbs.add_parser("cache", help="per-second backbone tables of videos, saved to one .npz (resumes)")
    c.add_argument("videos", nargs="*", help="video files, folders of videos or .txt lists of paths")
    c.add_argument("--data", default=None, help="instead of videos: a composed folder (avloc synth ave|unav --media)")
    c.add_argument("--split", default="val", help="with --data: the split whose videos to score")
    c.add_argument("--out", required=True, help="the .npz cache to write (videos already in it are skipped)")
    vocab_help = "sound vocabularies: soundnet (as first shipped), ucs (aiSFX UCS Categories), soundnet_ext"
    t = verbs.add_parser("tune", help="choose the agreement threshold of each vocabulary on a labelled val split")
    e = verbs.add_parser("eval", help="per-second accuracy and event P/R/F1 of each vocabulary on a split")
    k = verbs.add_parser("clips", help="per natural clip: expected events, what was found, right or wrong")
    for q in (t, e, k):
        q.add_argument("--cache", required=True, help="the .npz written by avloc zeroshot cache")
        q.add_argument("--vocab", nargs="+", default=["soundnet", "ucs"], help=vocab_help)
    for q in (t, e):
        q.add_argument("--data", required=True, help="a composed folder (avloc synth ave|unav --media): timeline.json")
        q.add_argument("--class-map", default="media/esc10_imagenet.json",
                       help="the class map the folder was composed with (which pictures stand for each class)")
    t.add_argument("--split", default="val", help="the split to choose on (test is refused)")
    t.add_argument("--out", required=True, help="thresholds JSON to write")
    t.add_argument("--wrong-sound-copies", action="store_true", help="add a copy of each video with the sound of "
                   "another class and no audio-visual event (seen, not heard): the choice then rewards hearing")
    e.add_argument("--split", default="test", help="the split to score")
    e.add_argument("--map", action="store_true", help="score the events by mAP@tIoU 0.1:0.9 (the dense models' "
                   "metric; a UnAV-layout composition) instead of per-second accuracy and event F1")
    e.add_argument("--mismatched-sound", action="store_true", help="control: each video with the sound of a "
                   "video of another class (a detector that hears loses its events)")
    for q in (e, k):
        q.add_argument("--thresholds", default=None, help="a file of avloc zeroshot tune (default: shipped)")
    k.add_argument("--expect", default="media/natural_clips.json",
                   help="JSON: per clip its labels and the event groups expected heard and seen")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.zs_command == "cache":
        return _cache(args)
    from avloc.inference import zeroshot_report as rep
    from avloc.tools.paths import config_path

    if args.zs_command in ("tune", "eval"):  # a file, or a name under the shipped configs/
        args.class_map_given, args.class_map = args.class_map, config_path(args.class_map)
    else:
        args.expect = config_path(args.expect)
    if args.zs_command == "tune":
        command = (f"avloc zeroshot tune --cache {args.cache} --data {args.data} --split {args.split} --vocab "
                   f"{' '.join(args.vocab)} --class-map {args.class_map_given} --out {args.out}"
                   + (" --wrong-sound-copies" if args.wrong_sound_copies else ""))
        table = rep.tune_thresholds(args.cache, args.data, args.split, args.vocab, args.class_map, command,
                                    args.wrong_sound_copies)
        rep.write_thresholds(table, args.out)
        print(json.dumps(table, indent=1))
    elif args.zs_command == "eval" and args.map and args.mismatched_sound:
        raise ValueError("avloc zeroshot eval: --map scores the videos as they are; --mismatched-sound is for "
                         "the per-second table")
    elif args.zs_command == "eval" and args.map:
        from avloc.inference.zeroshot_dense import zero_shot_map

        res = zero_shot_map(args.cache, args.data, args.split, args.vocab, args.class_map, args.thresholds)
        print(json.dumps({name: r.as_dict() for name, r in res.items()}, indent=1))
    elif args.zs_command == "eval":
        rows = rep.split_scores(args.cache, args.data, args.split, args.vocab, args.class_map, args.thresholds,
                               args.mismatched_sound)
        print(rep.split_table(rows) + "\n\n" + rep.class_table(rows))
    else:
        print(rep.clips_table(args.cache, args.expect, args.vocab, args.thresholds)[0])
        print("\nexpected groups found at a budget of false ones, over every threshold of the grid:\n")
        print(rep.clips_curve(args.cache, args.expect, args.vocab))
    return 0


def _cache(args: argparse.Namespace) -> int:
    from avloc.tools.extract import passive_openmp

    passive_openmp()
    from avloc.inference.inputs import readable_videos
    from avloc.inference.zeroshot_scores import cache_scores

    from avloc.inference.zeroshot_eval import composed_split_videos

    if bool(args.videos) == bool(args.data):
        raise ValueError("avloc zeroshot cache: give videos or --data DIR --split S, not both")
    paths, bad = readable_videos(args.videos or composed_split_videos(args.data, args.split))
    for msg in bad:
        print(f"avloc zeroshot cache: skipped {msg}", file=sys.stderr)
    done = cache_scores(paths, args.out, log=lambda m: print(m, flush=True))
    print(f"wrote {args.out}: {len(done)} videos")
    return 1 if bad else 0
