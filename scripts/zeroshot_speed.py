"""Wall time of ``avloc predict --zero-shot`` on a 60-s clip: the code before the engines, eager float32 and the
fast path (OpenVINO bf16, uint8 resize), each with the SoundNet and the UCS sound vocabulary, as separate
processes in interleaved rounds, the best round counting.

The clip is a natural 10-s clip looped six times (packets copied, timestamps shifted: no re-encoding), so the
decoder and the networks see real video. ``--before-src`` is the ``src`` folder of an older checkout (e.g.
``git archive <commit> | tar -x -C /tmp/before``); without it that row is left out. Prints the CPU model, its
flags and the load average, and each variant's audio-visual events (label, start, end), beside eager float32's.

    python scripts/zeroshot_speed.py --clip ../shared/media/llp_BjCEufrlXm4_speech_dog.mp4 --before-src /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from avloc.engine.precision import cpu_model, kernel_flags

FAST = ["--engine", "openvino", "--precision", "bf16", "--resize-precision", "uint8"]
VARIANTS = {  # name -> predict flags; the SoundNet vocabulary is the detector the code before shipped
    "eager fp32, soundnet vocab": ["--engine", "torch", "--precision", "fp32", "--vocab", "soundnet"],
    "fast: openvino bf16, uint8 resize, soundnet vocab": [*FAST, "--vocab", "soundnet"],
    "eager fp32, ucs vocab (default)": ["--engine", "torch", "--precision", "fp32"],
    "fast: openvino bf16, uint8 resize, ucs vocab": FAST,
}


def loop_clip(src: Path, dst: Path, times: int) -> Path:
    """``src`` repeated ``times`` times into ``dst`` by copying packets with shifted timestamps."""
    with av.open(str(src)) as box, av.open(str(dst), "w") as out:
        streams = [s for s in box.streams if s.type in ("video", "audio")]
        made = {s.index: out.add_stream_from_template(s) for s in streams}
        span = {s.index: int(float(box.duration / 1e6) / s.time_base) for s in streams}  # clip length in ticks
        for k in range(times):
            box.seek(0)
            for packet in box.demux(streams):
                if packet.dts is None:
                    continue
                shift = k * span[packet.stream.index]
                packet.pts = packet.pts + shift if packet.pts is not None else None
                packet.dts += shift
                packet.stream = made[packet.stream.index]
                out.mux(packet)
    return dst


def run(clip: Path, out: Path, flags: list[str], src: str | None) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if src:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "avloc", "predict", str(clip), "--zero-shot", "--out", str(out), *flags]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def events(out: Path) -> list[tuple[str, float, float]]:
    """The audio-visual events a predict run wrote: (label, start, end), scores left out."""
    found = sorted(out.rglob("events.json"))
    results = json.loads(found[0].read_text())["results"] if found else {}
    return [(e["label"], *(round(x, 2) for x in e["segment"])) for evs in results.values() for e in evs]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", required=True, help="a natural clip to loop")
    p.add_argument("--loops", type=int, default=6)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--before-src", default=None, help="src folder of the code before (run as a separate process)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zs_speed_"))
    clip = loop_clip(Path(args.clip), work / "clip60.mp4", args.loops)
    variants = {**({"before (eager fp32)": ([], args.before_src)} if args.before_src else {}),
                **{k: (v, None) for k, v in VARIANTS.items()}}
    src_now = str(Path(__file__).resolve().parents[1] / "src")
    best = dict.fromkeys(variants, float("inf"))
    for r in range(args.rounds + 1):  # round 0 warms the engine caches (exports, auto) and is not counted
        for i, (name, (flags, src)) in enumerate(variants.items()):
            wall = run(clip, work / f"out_{r}_{i}", flags, src or src_now)
            if r:
                best[name] = min(best[name], wall)
    names = list(variants)
    found = {k: events(work / f"out_1_{i}") for i, k in enumerate(names)}
    eager = {v: found[next(k for k in names if k.startswith("eager") and v in k)] for v in ("soundnet", "ucs")}
    report = {"clip": f"{args.clip} looped x{args.loops}", "cpu": cpu_model(), "flags": kernel_flags(),
              "threads": os.environ.get("OMP_NUM_THREADS", "1"), "load_average": [round(x, 1) for x in os.getloadavg()],
              "wall_s": {k: round(v, 2) for k, v in best.items()},
              "same_events_as_eager_of_its_vocab": {k: found[k] == eager["ucs" if "ucs" in k else "soundnet"]
                                                    for k in names if not k.startswith("before")},
              "events": found}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
