"""The ``avloc`` command: parse arguments, then call one function of a module below. No logic here.

Every verb imports what it needs when it runs, so that a verb without torch (``detect-eval``) starts in
a fraction of a second: nothing of the library is imported at the top of this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Callable


def _cmd_train(args: argparse.Namespace) -> int:
    from avloc.config import load_config
    from avloc.engine.loop import fit
    from avloc.formats.feature_sidecar import META_FILE, sidecar_data_section
    from avloc.tools.paths import config_path

    sidecar = sidecar_data_section(args.data)  # features made by avloc extract carry their own data section
    cfg = load_config(config_path(args.config), args.overrides, data_layer=sidecar,
                      data_layer_from=str(Path(args.data) / META_FILE))
    report = fit(cfg, args.data, args.out, resume=args.resume, stop_after=args.stop_after, overwrite=args.overwrite)
    if report.get("finished") is False:
        print(f"stopped after epoch {report['epoch']}; continue with --resume")
    elif report:
        print(json.dumps({k: v for k, v in report.items() if not isinstance(v, dict)}, indent=2))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from avloc.engine.finish import evaluate_run

    print(json.dumps(evaluate_run(args.run_dir, args.data, args.split, args.device, args.checkpoint), indent=2))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from avloc.inference.predictor import export_run

    path = export_run(args.run_dir, args.out, args.data)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): avloc predict VIDEO --model {path}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from avloc.tools.info import model_info

    print(model_info(args.model, args.overrides))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from avloc.tools.demo import run_demo

    run_demo(out=args.out, videos=args.videos, epochs=args.epochs, seed=args.seed, threads=args.threads)
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    if args.kind != "llp" and args.videos is None:
        raise ValueError(f"avloc synth {args.kind} needs --videos N")
    if args.media:
        if args.kind == "llp":
            raise ValueError("avloc synth --media composes the ave and unav layouts, not llp")
        return _synth_media(args)
    if args.kind == "ave":
        from avloc.data.synth_ave import write_synthetic_ave

        write_synthetic_ave(Path(args.out), videos=args.videos, seed=args.seed, dtype=args.dtype)
    elif args.kind == "llp":
        from avloc.data.synth_llp import write_synthetic_llp

        if not args.annotations:
            raise ValueError("avloc synth llp needs --annotations DIR (the folder of the LLP AVVP_*.csv files)")
        write_synthetic_llp(Path(args.out), Path(args.annotations), videos=args.videos or 200, seed=args.seed)
    else:
        from avloc.data.synth_unav import SynthUnavConfig, write_synthetic_unav

        ann = Path(args.annotations) if args.annotations else None
        grid = {k: v for k, v in (("feat_stride", args.feat_stride), ("num_frames", args.num_frames),
                                  ("fps", args.fps)) if v is not None}
        write_synthetic_unav(Path(args.out), videos=args.videos, seed=args.seed, annotations=ann,
                             cfg=SynthUnavConfig(**grid))
    print(f"wrote synthetic {args.kind} data to {args.out}")
    return 0


def _synth_media(args: argparse.Namespace) -> int:
    from avloc.media.compose.video import VideoFormat
    from avloc.media.compose.write import write_media_ave, write_media_unav
    from avloc.media.decode import MediaError
    from avloc.tools.paths import config_path

    if not args.sounds or not args.photos:
        print("avloc synth --media: give --sounds FOLDER and --photos FOLDER", file=sys.stderr)
        return 2
    ave_only = {"full_share": args.full_share, "background_videos": args.background_videos}
    given = {k: v for k, v in ave_only.items() if v is not None}
    if args.kind != "ave" and given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        print(f"avloc synth {args.kind} --media: {flags} is for the AVE layout only", file=sys.stderr)
        return 2
    write = partial(write_media_ave, **given) if args.kind == "ave" else write_media_unav
    try:
        info = write(Path(args.out), args.sounds, args.photos, config_path(args.class_map), videos=args.videos,
                     seed=args.seed, fmt=VideoFormat(fps=args.video_fps))
    except (FileNotFoundError, ValueError, MediaError) as exc:
        print(f"avloc synth --media: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {info['videos']} composed real-media videos ({args.kind} layout) to {args.out}; event classes "
          f"{info['classes']}; audio-only classes {info['audio_only_classes']}")
    return 0


def _cmd_detect_eval(args: argparse.Namespace) -> int:
    from avloc.evaluation.detection import detect_eval

    print(detect_eval(args.annotations, args.subset, args.predictions, args.tiou, as_json=args.json))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.kind == "backbones":
        from avloc.tools.bench_backbones import run

        return run(args)
    if args.kind == "photos":
        from avloc.tools.bench_photos import run

        return run(args)
    if args.kind == "extract":
        from avloc.tools.extract import bench_main

        return bench_main(args)
    if args.kind == "ave":
        from avloc.tools.bench import bench_ave

        bench_ave(Path(args.data), models=args.models, epochs=args.epochs or 2, json_out=args.json,
                  overrides=args.overrides, precisions=args.precisions, steps=args.steps)
    else:
        from avloc.tools.bench_dense import bench_dense

        res = bench_dense(Path(args.data) if args.data else None, videos=args.videos, epochs=args.epochs or 1,
                          json_out=args.json, val_videos=args.val_videos, storage=args.storage, steps=args.steps)
        print(json.dumps(res, indent=2))
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from avloc.tools.reproduce import CellsFailed, run_table

    try:
        run_table(args.table, Path(args.data), seeds=args.seeds, out=Path(args.out), quick=args.quick,
                  overrides=args.overrides, rows=args.rows.split(",") if args.rows else None, workers=args.workers)
    except CellsFailed as exc:
        print(f"avloc: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one config; writes a run folder")
    p.add_argument("config", help="YAML file, or a shipped name such as ave/vscg_fully.yaml")
    p.add_argument("--data", required=True, help="dataset folder (official file layout); a folder written by "
                   "avloc extract also sets the data section (suffixes, dims, grid) from its features.json")
    p.add_argument("--out", required=True, help="run folder to create")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint (same config and data; "
                        "train.epochs may be raised)")
    p.add_argument("--overwrite", action="store_true", help="replace the run that --out holds")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="train at most N epochs now, then exit (continue later with --resume)")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.lr=3e-4")
    p.set_defaults(func=_cmd_train)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a run folder's selected checkpoint on a split (prints JSON)")
    p.add_argument("run_dir", help="run folder written by avloc train")
    p.add_argument("--data", default=None,
                   help="dataset folder (default: the folder the run recorded in its data.json)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="split to score")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--checkpoint", default="best.pt", choices=["best.pt", "last.pt"],
                   help="best.pt: the val-selected epoch; last.pt: the last epoch")
    p.set_defaults(func=_cmd_eval)


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameter count and layout of a registered model")
    p.add_argument("model", help="registered model name (e.g. vscg, psp)")
    p.add_argument("overrides", nargs="*", help="model config fields, key=value")
    p.set_defaults(func=_cmd_info)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train PSP and VSCG on built-in synthetic AVE data (a few minutes on CPU)")
    p.add_argument("--out", default="runs/demo",
                   help="folder for the demo's data, both runs and the plot")
    p.add_argument("--videos", type=int, default=600, help="synthetic videos (80%% train, 10%% val, 10%% test)")
    p.add_argument("--epochs", type=int, default=15, help="epochs per model")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of training")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads; the numbers depend on it (the README table: 2)")
    p.set_defaults(func=_cmd_demo)


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a synthetic dataset (features, or with --media real videos composed "
                       "from labelled sounds and photos) in an official file layout")
    p.add_argument("kind", choices=["ave", "unav", "llp"],
                   help="ave: the AVE h5 layout; unav: UnAV-100 npy + JSON; llp: the AVVP feature folders + CSVs")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--videos", type=int, default=None, help="number of videos (required but for llp: 200)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"],
                   help="ave: on-disk feature dtype (the official files are float64)")
    p.add_argument("--annotations", default=None,
                   help="unav: the real UnAV-100 annotation JSON; its videos, splits and timings are used; "
                        "llp (required): the folder of the official AVVP_*.csv files, whose clips, labels and "
                        "val/test events are used")
    for flag, typ in (("--feat-stride", int), ("--num-frames", int), ("--fps", float)):
        p.add_argument(flag, type=typ, default=None, help="unav: feature grid (default I3D 8 / 24 / 25: 0.32 s)")
    p.add_argument("--media", action="store_true",
                   help="compose real H.264 + AAC videos from --sounds and --photos instead of writing features")
    p.add_argument("--sounds", default=None, help="media: folder of class folders of recordings (ESC layout)")
    p.add_argument("--photos", default=None, help="media: folder of '<wnid>_<name>.JPEG' photos")
    p.add_argument("--class-map", default="media/esc10_imagenet.json",
                   help="media: sound class -> ImageNet wnids JSON (a path, or a name under configs/)")
    p.add_argument("--video-fps", type=int, default=8, help="media: frames per second of the stills")
    p.add_argument("--full-share", type=float, default=None, help="media, ave: share of videos whose event spans "
                   "the whole clip (AVE: 2/3); 0: sound or picture alone or neither around every event")
    p.add_argument("--background-videos", type=int, default=None, help="media, ave: this many more training videos "
                   "without an event, as AVE's weak setting trains beside (default 0)")
    p.set_defaults(func=_cmd_synth)


def _add_detect_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect-eval", help="mAP at tIoU of an ActivityNet-format results JSON (UnAV/ActivityNet rules)")
    p.add_argument("--annotations", required=True, help="UnAV-100 / ActivityNet annotation JSON")
    p.add_argument("--subset", default="test", help="subset of the annotation JSON (UnAV: test; ActivityNet: validation)")
    p.add_argument("--predictions", required=True, help='{"results": {video_id: [{"segment", "label", "score"}]}}')
    p.add_argument("--tiou", default="unav", help="unav (0.1:0.1:0.9), anet (0.5:0.05:0.95) or a list like 0.3,0.5,0.7")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_detect_eval)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from avloc.tools.bench_backbones import add_flags

    p = sub.add_parser("bench", help="speed and memory benchmark; backbones: accuracy against the papers; "
                       "photos: do a composed class's pictures carry over between splits")
    p.add_argument("kind", choices=["ave", "dense", "extract", "backbones", "photos"], help="what to measure")
    p.add_argument("--data", default=None, help="dataset folder (ave: required); extract: a video file")
    p.add_argument("--clips", nargs="*", default=[], help="extract --fidelity: more video files or folders")
    p.add_argument("--engines", nargs="+", default=None,
                   help="extract, backbones: ENGINE:PRECISION[:RESIZE] to compare (extract default: every installed one; RESIZE fp32 "
                   "or uint8, e.g. openvino:bf16:uint8)")
    p.add_argument("--fidelity", action="store_true",
                   help="extract: feature error of each engine against eager float32 on --data and --clips")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="extract: thread counts compared in the same rounds (default: torch's current count)")
    p.add_argument("--rounds", type=int, default=3, help="extract: interleaved timing rounds (best counts)")
    p.add_argument("--frames-per-segment", type=int, default=16, help="extract: frames per second through the visual net (AVE: 16)")
    p.add_argument("--pairs", nargs="+", default=None, help="extract: visual+audio backbone pairs to time")
    p.add_argument("--device", default="cpu", help="extract: torch device")
    p.add_argument("--models", nargs="+", default=["vscg", "psp"], help="ave: registered models to time")
    p.add_argument("--epochs", type=int, default=None, help="epochs to time, the fastest counts (ave: 2, dense: 1)")
    p.add_argument("--videos", type=int, default=6489, help="dense: training videos (UnAV-100 scale)")
    p.add_argument("--val-videos", type=int, default=2134, help="dense: validation videos scored after training")
    p.add_argument("--storage", default="float16", choices=["float16", "float32"], help="dense: features in RAM")
    p.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                   help="ave: train.precision values timed side by side")
    p.add_argument("--steps", type=int, default=0,
                   help="time N batches per epoch of a fixed random subset and scale to the epoch (0: whole epochs)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("overrides", nargs="*", help="ave: section.key=value for every model, e.g. data.storage=float16")
    add_flags(p)
    p.set_defaults(func=_cmd_bench)


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="train every cell of a paper table and print mean ± std over seeds")
    p.add_argument("table", help="methods | ablation | plugin | losses | dense | dense_ablation")
    p.add_argument("--data", required=True, help="dataset folder every cell trains on")
    p.add_argument("--seeds", type=int, default=3, help="seeds per cell (mean ± std)")
    p.add_argument("--out", default="runs/reproduce", help="folder of the cells' run folders and the table")
    p.add_argument("--quick", action="store_true", help="few epochs (and videos): a smoke run of the table")
    p.add_argument("--rows", default=None, help="comma-separated rows of the table to run (default: all)")
    p.add_argument("--workers", type=int, default=1,
                   help="local worker processes sharing the cells (each: its share of the threads, or one GPU)")
    p.add_argument("overrides", nargs="*", help="section.key=value applied to every cell")
    p.set_defaults(func=_cmd_reproduce)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="a run's val-selected model as one portable file (weights, config, classes, "
                       "feature recipe; safetensors, no code executed on load)")
    p.add_argument("run_dir", help="run folder of avloc train")
    p.add_argument("--out", required=True, help="the model file to write, e.g. model.avloc")
    p.add_argument("--data", default=None, help="runs trained before model.json existed: their feature folder "
                   "(default: the one data.json records)")
    p.set_defaults(func=_cmd_export)


def _add_extract(sub: argparse._SubParsersAction) -> None:
    from avloc.tools.extract import register

    register(sub)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    from avloc.tools.predict import register

    register(sub)


def _add_zeroshot(sub: argparse._SubParsersAction) -> None:
    from avloc.tools.zeroshot import register

    register(sub)


ADDERS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_train, _add_eval, _add_info, _add_demo, _add_synth, _add_detect_eval, _add_bench, _add_reproduce,
    _add_extract, _add_predict, _add_export, _add_zeroshot,
]


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, except where there is none to show (None, off, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        d = action.default
        if d is None or d is False or (isinstance(d, (str, list)) and not d) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from avloc import __version__

    parser = argparse.ArgumentParser(prog="avloc", description="Audio-visual event localization toolkit")
    parser.add_argument("--version", action="version", version=f"avloc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in ADDERS:
        add(sub)
    for verb in sub.choices.values():
        verb.formatter_class = _HelpWithDefaults
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may stand before or after the options; argparse alone binds them only in one place
    args, extra = parser.parse_known_args(argv)
    if hasattr(args, "overrides"):
        args.overrides = [*args.overrides, *[x for x in extra if "=" in x and not x.startswith("-")]]
        extra = [x for x in extra if not ("=" in x and not x.startswith("-"))]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (ValueError, OSError, FloatingPointError) as exc:  # the project's errors (ConfigError, DataError,
        # FormatError, CheckpointError, ...) are ValueErrors naming the file; OSError: full disk, read-only
        print(f"avloc: error: {exc}", file=sys.stderr)
        return 2
