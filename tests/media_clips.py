"""Small real video files made on the fly with PyAV, for the predict and report tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_clip(path: Path, seconds: float, fps: int = 10, size: int = 64, codec: str = "libx264",
               audio: bool = True, tone_hz: float = 440.0, colour: tuple[int, int, int] = (200, 40, 40),
               seed: int = 0) -> Path:
    """A clip of ``seconds``: a moving square on noise, and a tone (+ noise) at 22,050 Hz when ``audio``."""
    rng = np.random.default_rng(seed)
    rate = 22050
    with av.open(str(path), "w") as box:
        vs = box.add_stream(codec, rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        aus = box.add_stream("aac", rate=rate, layout="mono") if audio else None
        n = int(round(seconds * fps))
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            x = (i * 3) % (size - 16)
            img[20:36, x : x + 16] = colour
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            box.mux(vs.encode(frame))
        box.mux(vs.encode(None))
        if aus is not None:
            t = np.arange(int(seconds * rate)) / rate
            wave = (0.3 * np.sin(2 * np.pi * tone_hz * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
            step = 1024
            for k, start in enumerate(range(0, len(wave), step)):
                chunk = wave[start : start + step]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                frame.sample_rate = rate
                frame.pts = start
                box.mux(aus.encode(frame))
            box.mux(aus.encode(None))
    return path
