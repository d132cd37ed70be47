"""``avloc extract``: video files in, AVE h5, UnAV npy or LLP npy features out; and ``avloc bench extract``.

Usage::

    avloc extract clips/ --out feats --format ave --annotations Annotations.txt
    avloc extract clips/ --out feats --class-from-folder   # clips/<class>/*.mp4, clips/background/*.mp4
    avloc extract list.txt --out feats --format unav --visual efficientnet_lite0 --audio aisfx --stride 0.32
    avloc extract llp_clips/ --out llp --format llp   # then copy the AVVP_*.csv label files into llp/
    torchrun --nproc-per-node 4 -m avloc extract clips/ --out feats --format unav   # inputs split over ranks

Exit status (shared with ``avloc predict``): 0 every input done (flagged videos included); 1 some or all
inputs failed, each named once on stderr, the others done; 2 a one-line error that stops the command before
any input is done (bad option, config, annotations, weights, an ``--out`` that is a file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path



def passive_openmp() -> None:
    """Let idle OpenMP workers sleep instead of spin-waiting (``OMP_WAIT_POLICY=PASSIVE``) unless the user
    chose a policy. On cores shared with other work, eager PyTorch with spinning workers collapsed (EfficientNet-
    Lite0, 2 threads on 2 loaded vCPUs: 5.8 frames/s spinning, 25.1 passive, 20.4 with one thread); the
    networks' operators are long enough that waking a sleeping worker costs nothing measurable. OpenMP reads
    the variable once, when torch is first imported, so this must run before that."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="video files -> AVE h5 / UnAV npy / LLP npy features with pretrained backbones")
    p.add_argument("inputs", nargs="+", help="video files, folders (searched recursively) or list files (.txt)")
    p.add_argument("--out", required=True, help="feature folder (resumable: finished videos are skipped)")
    p.add_argument("--format", default="ave", choices=["ave", "unav", "llp"], dest="fmt",
                   help="ave: 10 one-second segments, AVE h5 files; unav: a window grid, npy per video; llp: "
                        "LLP's feats/ folders (clips named <11-char id>_<start>_<end>; add the AVVP CSVs)")
    p.add_argument("--visual", default="efficientnet_lite0", help="visual backbone (efficientnet_lite0, vgg19)")
    p.add_argument("--audio", default="aisfx", help="audio backbone (aisfx, soundnet8, vggish)")
    p.add_argument("--visual-weights", default="", help="weight file of the visual backbone (vgg19)")
    p.add_argument("--audio-weights", default="", help="weight file of the audio backbone (vggish)")
    p.add_argument("--audio-layer", default="", help="tapped layer of the audio backbone (soundnet8: pool5 "
                   "(default), conv6, conv7); recorded in features.json")
    p.add_argument("--annotations", default=None,
                   help="ave: Annotations.txt giving the h5 row order (copied into --out)")
    p.add_argument("--classes", default=None,
                   help="ave: the class list of --annotations, one event class per line (when not AVE's 28)")
    p.add_argument("--class-from-folder", action="store_true",
                   help="ave: label each clip by its folder (clips/dog/a.mp4: dog; clips/background/: no event) "
                        "and write Annotations.txt (and classes.txt) into --out")
    p.add_argument("--split", default="0.8,0.1,0.1",
                   help="ave: train,val,test fractions of the *_order.h5 files written when --out has none")
    p.add_argument("--seed", type=int, default=0, help="ave: seed of that split")
    p.add_argument("--stride", type=float, default=0.32, help="unav: seconds between windows")
    p.add_argument("--window", type=float, default=0.96, help="unav: window seconds")
    p.add_argument("--fps", type=float, default=12.5, help="unav: visual frames per second (stride x fps whole)")
    p.add_argument("--frames-per-segment", type=int, default=0,
                   help="ave / llp: frames per second through the visual backbone (0: ave 16, llp 8)")
    p.add_argument("--resize", default="squash", choices=["squash", "center_crop"],
                   help="frames to the backbone's input: squash the whole frame (AVE's recipe) or crop its centre")
    p.add_argument("--resize-precision", default="fp32", choices=["fp32", "uint8"],
                   help="resize frames in float32 (reference) or uint8 (5-15x cheaper, pixels within 1 grey level)")
    p.add_argument("--batch", type=int, default=0,
                   help="frames per visual backbone call (0: 2 on CPU, where small batches stay in cache; 64 on GPU)")
    p.add_argument("--device", default="cpu", help="torch device of the backbones (cpu, cuda, cuda:N)")
    p.add_argument("--engine", default="auto", choices=["auto", "torch", "onnxruntime", "openvino"],
                   help="runs the backbones: auto = the one measured fastest here (timed once, cached)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"],
                   help="bf16 only where the CPU has bf16 units (avx512_bf16 / AMX) or on a GPU; auto: the faster "
                   "of fp32 and bf16, bf16 only for backbones whose bf16 accuracy has been checked")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, batch jobs)")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace):  # noqa: ANN202
    from avloc.media.extract import ExtractConfig

    return ExtractConfig(format=args.fmt, visual=args.visual, audio=args.audio, visual_weights=args.visual_weights,
                         audio_weights=args.audio_weights, audio_layer=args.audio_layer,
                         frames_per_segment=args.frames_per_segment,
                         stride=args.stride, window=args.window, fps=args.fps, resize=args.resize,
                         resize_precision=args.resize_precision,
                         batch=args.batch, device=args.device, engine=args.engine, precision=args.precision)


def run(args: argparse.Namespace) -> int:
    passive_openmp()
    from avloc.media.extract_folder import extract_videos
    from avloc.media.weights import WeightsError
    from avloc.registry import ConfigError

    try:
        cfg = _config(args)
        split = tuple(float(x) for x in args.split.split(","))
        summary = extract_videos(args.inputs, args.out, cfg, annotations=args.annotations,
                                 progress=not args.no_progress, classes=args.classes,
                                 class_from_folder=args.class_from_folder, split=split, seed=args.seed)
    except (ValueError, WeightsError, ConfigError) as exc:
        print(f"avloc extract: error: {exc}", file=sys.stderr)
        return 2
    print(summary.text())
    return summary.exit_status


def bench_main(args: argparse.Namespace) -> int:
    """``avloc bench extract``: engines x precisions by stage on one clip, or (``--fidelity``) their feature
    error against eager float32 on every clip given."""
    passive_openmp()
    from avloc.media.engines import EngineError
    from avloc.media.extract_bench import bench_fidelity, bench_speed, cpu_report, parse_combo

    if not args.data:
        print("avloc bench extract: --data VIDEO is required", file=sys.stderr)
        return 2
    try:
        combos = [parse_combo(c) for c in args.engines] if args.engines else None
        if args.fidelity:
            from avloc.media.extract_folder import collect_inputs

            videos = collect_inputs([args.data, *args.clips])
            rows = bench_fidelity(videos, args.pairs, args.frames_per_segment, combos)
        else:
            rows = bench_speed(args.data, args.pairs, args.device, rounds=args.rounds, engines=combos,
                               frames_per_segment=args.frames_per_segment, threads=args.threads)
    except (EngineError, ValueError) as exc:
        print(f"avloc bench extract: error: {exc}", file=sys.stderr)
        return 2
    report = {"videos": [args.data, *args.clips] if args.fidelity else args.data, "device": args.device, **cpu_report(), "rows": rows}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0
