"""``avloc predict VIDEO... (--zero-shot | --run RUN_DIR | --model FILE) [--out DIR] [--annotations FILE]``.

1. check every input first (missing or unreadable videos are reported by name and skipped; annotations that
   lack a video are an error before anything is written);
2. build the ``Predictor`` once: the zero-shot sound x EfficientNet agreement, a run or a model file;
3. per video: detect, post-process (``--min-score``, ``--min-duration``, ``--merge-gap``), attach ground
   truth and its score, write ``OUT/<video id>/`` whole (events.json/srt/vtt/tsv, labels.txt, timeline.png,
   report.html, video.mp4);
4. write ``OUT/events.json`` (all videos, for ``avloc detect-eval``) and ``OUT/index.html``; print a table.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from avloc.inference.events import PostProcess
from avloc.inference.prediction import PredictError
from avloc.out_folder import check_out_folder

if TYPE_CHECKING:
    from avloc.inference.predictor import Predictor


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="events of your own videos: a trained run, or the zero-shot AV detector")
    p.add_argument("videos", nargs="+", help="video files, folders of videos or .txt lists of paths")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--zero-shot", action="store_true",
                     help="training-free: sound (SoundNet-8 or aiSFX UCS, --vocab) x EfficientNet-Lite0 (frames) agreement")
    how.add_argument("--run", default=None, help="run folder of avloc train (its best.pt, config.yaml, model.json); "
                     "the training data is not needed")
    how.add_argument("--model", default=None, help="a model file written by avloc export")
    p.add_argument("--data", default=None, help="--run: a feature folder to check against the run's recorded recipe; "
                   "for runs trained before model.json existed, the folder to read the class names from "
                   "(default: the one data.json records)")
    p.add_argument("--visual", default=None, help="a model trained on features not made by avloc extract: the "
                                                  "visual backbone that made them (e.g. vgg19)")
    p.add_argument("--audio", default=None, help="with --visual: the audio backbone (e.g. vggish)")
    p.add_argument("--out", default="predictions", help="output folder (one sub-folder per video)")
    p.add_argument("--annotations", default=None, help="ActivityNet/UnAV JSON: ground truth and a score per video")
    p.add_argument("--min-score", type=float, default=0.0, help="drop events scored below this (default 0: keep)")
    p.add_argument("--min-duration", type=float, default=0.0, help="drop events shorter than this, seconds (0)")
    p.add_argument("--merge-gap", type=float, default=0.0,
                   help="merge same-label events separated by less than this many seconds (0: no merging)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--vocab", default=None, choices=["ucs", "soundnet", "soundnet_ext"],
                   help="--zero-shot: what names the sound: ucs (default; aiSFX's 82 UCS sound Categories) or soundnet "
                        "(SoundNet-8's ImageNet head, as first shipped); soundnet_ext: SoundNet on the ucs groups")
    p.add_argument("--thresholds", default=None, help="--zero-shot: a thresholds file of avloc zeroshot tune "
                                                      "(default: the shipped ones, chosen on composed val videos)")
    p.add_argument("--engine", default="auto", choices=["auto", "torch", "onnxruntime", "openvino"],
                   help="runs the backbones (auto = the float32 engine measured fastest here)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"],
                   help="backbone precision (bf16 only where the CPU has bf16 units, or a GPU; auto: the faster of "
                   "fp32 and bf16, bf16 only for backbones whose bf16 accuracy has been checked)")
    p.add_argument("--resize-precision", default="fp32", choices=["fp32", "uint8"],
                   help="resize frames in float32 (reference) or uint8 (5-15x cheaper, pixels within 1 grey level)")
    p.set_defaults(func=run)


def _predictor(args: argparse.Namespace) -> Predictor:
    from avloc.inference.predictor import Predictor

    pp = PostProcess(args.min_score, args.min_duration, args.merge_gap)
    if args.zero_shot:
        return Predictor.zero_shot(args.device, pp, args.vocab or "ucs", args.thresholds, args.engine,
                                   args.precision, args.resize_precision)
    if args.vocab or args.thresholds:
        raise PredictError("--vocab and --thresholds set the zero-shot detector: use them with --zero-shot")
    if (args.visual is None) != (args.audio is None):
        raise PredictError("--visual and --audio go together: the two backbones that made the run's features")
    backbones = (args.visual, args.audio) if args.visual else None
    if args.model:
        return Predictor.from_file(args.model, args.device, backbones, pp, args.engine, args.precision,
                                   args.resize_precision)
    return Predictor.from_run(args.run, args.device, args.data, backbones, pp, args.engine, args.precision,
                              args.resize_precision)


def run(args: argparse.Namespace) -> int:
    from avloc.tools.extract import passive_openmp

    passive_openmp()  # before torch loads: the backbones share the cores with whatever else runs
    from avloc.inference.inputs import readable_videos
    from avloc.inference.video_score import ground_truth_of
    from avloc.report.table import events_table
    from avloc.report.write import write_run_files, write_video_report

    # 1. inputs
    paths, bad = readable_videos(args.videos)
    for msg in bad:
        print(f"avloc predict: skipped {msg}", file=sys.stderr)
    if not paths:  # each input's reason is printed above; exit 1 like any run where inputs failed
        print(f"avloc predict: no readable video among the {len(bad)} inputs", file=sys.stderr)
        return 1
    ids = [p.stem for p in paths]
    truth = ground_truth_of(args.annotations, ids) if args.annotations else {}
    # 2. the predictor, built once
    predictor = _predictor(args)
    # 3. per video
    out = check_out_folder(args.out)  # before the first video's minutes of work
    preds = []
    for path, vid in zip(paths, ids):
        pred = predictor.predict(path, truth.get(vid))
        write_video_report(pred, out)
        preds.append(pred)
    # 4. run-level files
    write_run_files(preds, out)
    print(events_table(preds))
    print(f"wrote {out}/index.html and one folder per video")
    return 1 if bad else 0
