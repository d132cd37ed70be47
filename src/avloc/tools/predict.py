"""``avloc predict VIDEO... (--zero-shot | --run RUN_DIR --data FEATURES) [--out DIR] [--annotations FILE]``.

1. check every input first (missing or unreadable videos are reported by name and skipped; annotations that
   lack a video are an error before anything is written);
2. build the detector once: the zero-shot SoundNet x EfficientNet agreement, or a trained run;
3. per video: detect, post-process (``--min-score``, ``--min-duration``, ``--merge-gap``), attach ground
   truth and its score, write ``OUT/<video id>/`` whole (events.json/srt/vtt/tsv, labels.txt, timeline.png,
   report.html, video.mp4);
4. write ``OUT/events.json`` (all videos, for ``avloc detect-eval``) and ``OUT/index.html``; print a table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

from avloc.inference.events import Events, PostProcess, postprocess
from avloc.inference.prediction import PredictError, VideoPrediction
from avloc.out_folder import check_out_folder


def recorded_data_folder(run_dir: Path) -> str | None:
    """The feature folder a run was trained on, as ``avloc train`` recorded it in ``data.json``."""
    import json

    from avloc.engine.run_folder import DATA_RECORD

    path = run_dir / DATA_RECORD
    try:
        return json.loads(path.read_text()).get("folder") if path.is_file() else None
    except (OSError, json.JSONDecodeError) as exc:
        raise PredictError(f"{path}: unreadable ({exc}); pass --data") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="events of your own videos: a trained run, or the zero-shot AV detector")
    p.add_argument("videos", nargs="+", help="video files, folders of videos or .txt lists of paths")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--zero-shot", action="store_true",
                     help="training-free: SoundNet-8 (sound) x EfficientNet-Lite0 (frames) agreement on ImageNet groups")
    how.add_argument("--run", default=None, help="run folder of avloc train (its best.pt and config.yaml)")
    p.add_argument("--data", default=None, help="--run: the feature folder the run was trained on (default: the one its "
                   "data.json records); its features.json names the backbones, else pass --visual and --audio")
    p.add_argument("--visual", default=None, help="--run on features without features.json: the visual backbone "
                                                  "that made them (e.g. vgg19)")
    p.add_argument("--audio", default=None, help="--run on features without features.json: the audio backbone "
                                                 "(e.g. vggish)")
    p.add_argument("--out", default="predictions", help="output folder (one sub-folder per video)")
    p.add_argument("--annotations", default=None, help="ActivityNet/UnAV JSON: ground truth and a score per video")
    p.add_argument("--min-score", type=float, default=0.0, help="drop events scored below this (default 0: keep)")
    p.add_argument("--min-duration", type=float, default=0.0, help="drop events shorter than this, seconds (0)")
    p.add_argument("--merge-gap", type=float, default=0.0,
                   help="merge same-label events separated by less than this many seconds (0: no merging)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.set_defaults(func=run)


def _check_videos(items: list[str]) -> tuple[list[Path], list[str]]:
    """Usable inputs and one message per unusable one (missing, not a video PyAV can read)."""
    from avloc.media.decode import MediaError, probe
    from avloc.media.extract_folder import collect_inputs

    ok, bad = [], []
    for path in collect_inputs(items):
        if not path.is_file():
            bad.append(f"{path}: video file not found")
            continue
        try:
            probe(path)
        except MediaError as exc:
            bad.append(f"{path}: unreadable video ({exc.reason})")
            continue
        ok.append(path)
    return ok, bad


def zero_shot_detector(device: str) -> Callable[[Path], VideoPrediction]:
    from avloc.engine.build import resolve_device
    from avloc.inference.event_groups import load_event_groups
    from avloc.inference.zeroshot import zero_shot_predict
    from avloc.media.backbones.efficientnet import EfficientNetLite0
    from avloc.media.backbones.soundnet import SoundNet8

    dev = resolve_device(device)
    visual = EfficientNetLite0.weights_from_package().to(dev)
    audio = SoundNet8.weights_from_package().to(dev)
    groups = load_event_groups()
    return lambda path: zero_shot_predict(path, visual, audio, groups)


def run(args: argparse.Namespace) -> int:
    from avloc.formats.activitynet import read_ground_truth
    from avloc.inference.video_score import ground_truth, score_video
    from avloc.report.table import events_table
    from avloc.report.write import write_run_files, write_video_report

    # 1. inputs
    paths, bad = _check_videos(args.videos)
    for msg in bad:
        print(f"avloc predict: skipped {msg}", file=sys.stderr)
    if not paths:  # each input's reason is printed above; exit 1 like any run where inputs failed
        print(f"avloc predict: no readable video among the {len(bad)} inputs", file=sys.stderr)
        return 1
    ids = [p.stem for p in paths]
    if len(set(ids)) != len(ids):
        raise PredictError(f"two inputs share a video id (file name without extension): {sorted(ids)}")
    truth = {}
    if args.annotations:
        db = read_ground_truth(args.annotations)
        truth = {vid: ground_truth(db, vid) for vid in ids}
    pp = PostProcess(args.min_score, args.min_duration, args.merge_gap)
    # 2. detector
    if args.zero_shot:
        detect = zero_shot_detector(args.device)
    else:
        from avloc.inference.trained import run_detector

        data = args.data or recorded_data_folder(Path(args.run))
        if not data:
            raise PredictError(f"{args.run}: no data.json records the run's feature folder; pass --data")
        if (args.visual is None) != (args.audio is None):
            raise PredictError("--visual and --audio go together: the two backbones that made the run's features")
        detect = run_detector(Path(args.run), Path(data), args.device,
                              (args.visual, args.audio) if args.visual else None)
    # 3. per video
    out = check_out_folder(args.out)  # before the first video's minutes of work
    preds = []
    for path, vid in zip(paths, ids):
        pred = detect(path)
        pred = replace(pred, events=postprocess(pred.events, pp))
        if vid in truth:
            gt = truth[vid]
            pred = replace(pred, ground_truth=gt, metrics=score_video(_in_vocabulary(pred, gt), gt, pred.duration))
        write_video_report(pred, out)
        preds.append(pred)
    # 4. run-level files
    write_run_files(preds, out)
    print(events_table(preds))
    print(f"wrote {out}/index.html and one folder per video")
    return 1 if bad else 0


def _in_vocabulary(pred: VideoPrediction, gt: Events) -> Events:
    """The main-track events, their zero-shot group names replaced by the AVE class name where the ground
    truth uses it (the ``dog`` group scores against a ``Bark`` annotation)."""
    import numpy as np

    ev = pred.events.of_track("av")  # a copy
    if pred.method != "zero-shot" or not len(ev):
        return ev
    from avloc.inference.event_groups import load_event_groups

    groups = load_event_groups()
    known = set(gt.label.tolist())
    names = {g: groups.ave_name(g) for g in set(ev.label.tolist())}
    ev.label = np.array([names[g] if g not in known and names[g] in known else g for g in ev.label.tolist()])
    return ev
