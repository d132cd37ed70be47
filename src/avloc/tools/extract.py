"""``avloc extract``: video files in, AVE h5 or UnAV npy features out; and ``avloc bench extract``.

Usage::

    avloc extract clips/ --out feats --format ave --annotations Annotations.txt
    avloc extract list.txt --out feats --format unav --visual efficientnet_lite0 --audio aisfx --stride 0.32
    torchrun --nproc-per-node 4 -m avloc extract clips/ --out feats --format unav   # inputs split over ranks

Exit status: 0 when every input was extracted (flagged videos included), 1 when some inputs failed (listed
in the summary), 2 for a usage error (bad option, unknown backbone, missing weights).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path



def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="video files -> AVE h5 / UnAV npy features with pretrained backbones")
    p.add_argument("inputs", nargs="+", help="video files, folders (searched recursively) or list files (.txt)")
    p.add_argument("--out", required=True, help="feature folder (resumable: finished videos are skipped)")
    p.add_argument("--format", default="ave", choices=["ave", "unav"], dest="fmt")
    p.add_argument("--visual", default="efficientnet_lite0", help="visual backbone (efficientnet_lite0, vgg19)")
    p.add_argument("--audio", default="aisfx", help="audio backbone (aisfx, soundnet8, vggish)")
    p.add_argument("--visual-weights", default="", help="weight file of the visual backbone (vgg19)")
    p.add_argument("--audio-weights", default="", help="weight file of the audio backbone (vggish)")
    p.add_argument("--audio-layer", default="", help="tapped layer of the audio backbone (soundnet8: pool5 "
                   "(default), conv6, conv7); recorded in features.json")
    p.add_argument("--annotations", default=None, help="ave: Annotations.txt giving the h5 row order")
    p.add_argument("--stride", type=float, default=0.32, help="unav: seconds between windows (0.32)")
    p.add_argument("--window", type=float, default=0.96, help="unav: window seconds (0.96)")
    p.add_argument("--fps", type=float, default=12.5, help="unav: visual frames per second (stride x fps whole)")
    p.add_argument("--frames-per-segment", type=int, default=16, help="ave: frames averaged per second (16)")
    p.add_argument("--resize", default="squash", choices=["squash", "center_crop"])
    p.add_argument("--batch", type=int, default=0,
                   help="frames per visual backbone call (0: 2 on CPU, where small batches stay in cache; 64 on GPU)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace):  # noqa: ANN202
    from avloc.media.extract import ExtractConfig

    return ExtractConfig(format=args.fmt, visual=args.visual, audio=args.audio, visual_weights=args.visual_weights,
                         audio_weights=args.audio_weights, audio_layer=args.audio_layer,
                         frames_per_segment=args.frames_per_segment,
                         stride=args.stride, window=args.window, fps=args.fps, resize=args.resize,
                         batch=args.batch, device=args.device)


def run(args: argparse.Namespace) -> int:
    from avloc.media.extract_folder import extract_videos
    from avloc.media.weights import WeightsError
    from avloc.registry import ConfigError

    try:
        cfg = _config(args)
        summary = extract_videos(args.inputs, args.out, cfg, annotations=args.annotations,
                                 progress=not args.no_progress)
    except (ValueError, WeightsError, ConfigError) as exc:
        print(f"avloc extract: error: {exc}", file=sys.stderr)
        return 2
    print(summary.text())
    return summary.exit_status


def run_bench(video: str, pairs: list[str] | None, device: str = "cpu", repeats: int = 1) -> list[dict]:
    """Seconds of video per second of each visual+audio pair at the AVE recipe (10 s, 16 frames/s), by stage."""
    import numpy as np
    import torch

    from avloc.media.decode import probe
    from avloc.media.extract import ExtractConfig, Extractor
    from avloc.media.weights import WeightsError

    pairs = pairs or ["efficientnet_lite0+soundnet8", "efficientnet_lite0+aisfx", "vgg19+vggish"]
    seconds = min(probe(video).duration, 10.0)
    rows = []
    for pair in pairs:
        visual, audio = pair.split("+")
        cfg = ExtractConfig(format="ave", visual=visual, audio=audio, device=device)
        try:
            ex, random = Extractor(cfg), False
        except WeightsError:  # the user's VGG files are absent: time the same networks with random weights
            ex, random = Extractor(cfg, random_weights=True), True
        with torch.no_grad():  # warm-up: first-call allocations and thread pools
            ex.visual(ex.visual.preprocess(np.zeros((2, 240, 320, 3), np.uint8)))
            ex.audio.embed(np.zeros(ex.audio.sample_rate, np.float32), np.zeros(1), 1.0)
        best = None
        for _ in range(repeats):
            ex.times = dict.fromkeys(ex.times, 0.0)
            t0 = time.perf_counter()
            ex.video(video)
            wall = time.perf_counter() - t0
            if best is None or wall < best[0]:
                best = (wall, dict(ex.times))
        wall, stages = best
        rows.append({"pair": pair, "random_weights": random, "video_s": round(seconds, 2), "wall_s": round(wall, 3),
                     "x_realtime": round(seconds / wall, 2),
                     **{f"{k}_s_per_video_s": round(v / seconds, 4) for k, v in stages.items()}})
    return rows


def bench_main(args: argparse.Namespace) -> int:
    import torch

    if not args.data:
        print("avloc bench extract: --data VIDEO is required", file=sys.stderr)
        return 2
    rows = run_bench(args.data, args.pairs, args.device, repeats=1)
    load = [round(x, 1) for x in os.getloadavg()]  # other work on the machine skews every figure
    print(json.dumps({"video": args.data, "threads": torch.get_num_threads(), "device": args.device,
                      "load_average_1_5_15min": load, "rows": rows}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0

