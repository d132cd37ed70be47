"""Render a timeline into a real video file: still photos as H.264 frames, sounds as an AAC track (PyAV).

Each run of seconds with one audio label plays one recording of that class from its start (repeated when the
run is longer than the recording; digital silence at its ends trimmed first), with 10-ms fades at the joins; near-silence is white noise at -60 dBFS
(a true zero track would be flagged "silent" by the decoder and is not what microphones record). Each run with
one visual label shows one photo, centre-cropped to the frame's aspect and scaled (torch, antialiased). Scaling
and RGB -> YUV are done here, not by libswscale (whose SIMD paths can depend on buffer alignment), x264 runs on
one thread and nothing time-dependent enters the container, so the same inputs give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avloc.media.compose.timeline import Timeline, runs
from avloc.media.decode import MediaError, decode_audio

RATE = 44100
NEAR_SILENCE = 1e-3  # -60 dBFS white noise
FADE_S = 0.01


@dataclass(frozen=True)
class VideoFormat:
    width: int = 320
    height: int = 240
    fps: int = 8  # stills: a few frames per second are enough (avloc extract picks the frame at each time)
    audio_bitrate: int = 128_000
    crf: int = 23


def trim_silence(wave: np.ndarray, frame_s: float = 0.05, floor: float = 3e-3) -> np.ndarray:
    """The recording from its first to its last 50-ms frame louder than ``floor`` RMS (-50 dBFS).

    Short ESC clips were padded with digital silence to 5 s; looping the padding would put silent seconds
    under a class's label. Quiet stretches inside the sound (between barks) stay: they are the sound."""
    n = int(frame_s * RATE)
    usable = len(wave) // n * n
    if usable == 0:
        return wave
    rms = np.sqrt((wave[:usable].reshape(-1, n) ** 2).mean(1))  # (frames,)
    loud = np.flatnonzero(rms > floor)
    return wave if len(loud) == 0 else wave[loud[0] * n: (loud[-1] + 1) * n]


class MediaCache:
    """Decoded sounds and scaled photos, each read once however many videos use it."""

    def __init__(self, fmt: VideoFormat) -> None:
        self.fmt = fmt
        self._sounds: dict[Path, np.ndarray] = {}
        self._photos: dict[Path, np.ndarray] = {}

    def sound(self, path: Path) -> np.ndarray:
        if path not in self._sounds:
            wave = decode_audio(path, RATE)
            if wave is None or len(wave) == 0:
                raise MediaError(path, "no audio")
            self._sounds[path] = trim_silence(wave)
        return self._sounds[path]

    def photo(self, path: Path) -> np.ndarray:
        """uint8 (H, W, 3) RGB at the video's size: centre crop to its aspect, then scaled (bicubic)."""
        if path not in self._photos:
            import av

            try:
                with av.open(str(path)) as box:
                    frame = next(box.decode(video=0))
            except (av.error.FFmpegError, StopIteration) as exc:
                raise MediaError(path, f"not a readable image ({exc})") from None
            rgb = frame.to_ndarray(format="rgb24")  # (h, w, 3)
            h, w = rgb.shape[:2]
            want = self.fmt.width / self.fmt.height
            cw, ch = (min(w, round(h * want)), h) if w / h > want else (w, min(h, round(w / want)))
            top, left = (h - ch) // 2, (w - cw) // 2
            crop = torch.from_numpy(np.ascontiguousarray(rgb[top: top + ch, left: left + cw]))
            x = crop.permute(2, 0, 1)[None].double()  # (1, 3, ch, cw)
            x = F.interpolate(x, size=(self.fmt.height, self.fmt.width), mode="bilinear", align_corners=False,
                              antialias=True)  # (1, 3, H, W)
            self._photos[path] = x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
        return self._photos[path]


def render_audio(tl: Timeline, files: dict[tuple[int, int], Path], cache: MediaCache,
                 rng: np.random.Generator) -> np.ndarray:
    """(seconds * RATE,) float32: each labelled run plays ``files[(start, end)]``; "" runs are near-silence."""
    n = len(tl.audio) * RATE
    wave = (NEAR_SILENCE * rng.standard_normal(n)).astype(np.float32)  # (S,)
    fade = int(FADE_S * RATE)
    for label, start, end in runs(tl.audio):
        if not label:
            continue
        length = (end - start) * RATE
        clip = np.resize(cache.sound(files[(start, end)]), length).astype(np.float32)  # repeated to the run
        ramp = np.minimum(1.0, np.minimum(np.arange(length) + 1, length - np.arange(length)) / fade)  # (L,)
        wave[start * RATE: end * RATE] = clip * ramp.astype(np.float32)
    return np.clip(wave, -1.0, 1.0)


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> (H * 3 // 2, W) planar YUV 4:2:0, BT.601 limited range, chroma as 2x2 means.

    Done here rather than by libswscale, whose SIMD paths can depend on buffer alignment: the same picture
    must give the same bytes."""
    x = rgb.astype(np.float64)  # (H, W, 3)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    h, w = rgb.shape[:2]

    def sub(c: np.ndarray) -> np.ndarray:  # (H, W) -> (H/2, W/2) -> rows of W
        return c.reshape(h // 2, 2, w // 2, 2).mean((1, 3)).reshape(h // 4, w)

    planes = np.concatenate([y, sub(cb), sub(cr)])  # (H * 3 / 2, W)
    return np.clip(np.round(planes), 0, 255).astype(np.uint8)


def encode(path: Path, seconds_rgb: list[np.ndarray], wave: np.ndarray, fmt: VideoFormat) -> None:
    """Write ``path`` (H.264 + AAC in MP4): second s shows ``seconds_rgb[s]``; ``wave`` mono at RATE."""
    import av

    tmp = path.with_name(f".{path.name}.tmp.mp4")
    with av.open(str(tmp), "w", format="mp4") as box:
        vs = box.add_stream("libx264", rate=fmt.fps, options={"crf": str(fmt.crf), "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = fmt.width, fmt.height, "yuv420p"
        vs.codec_context.thread_count = 1
        aus = box.add_stream("aac", rate=RATE, layout="mono")
        aus.bit_rate = fmt.audio_bitrate
        for sec, rgb in enumerate(seconds_rgb):
            yuv = rgb_to_yuv420p(rgb)  # (H * 3 / 2, W)
            for k in range(fmt.fps):
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                frame.pts = sec * fmt.fps + k  # time base 1 / fps
                box.mux(vs.encode(frame))
        box.mux(vs.encode(None))
        size = aus.codec_context.frame_size or 1024
        padded = np.concatenate([wave, np.zeros((-len(wave)) % size, np.float32)])
        for start in range(0, len(padded), size):
            af = av.AudioFrame.from_ndarray(padded[None, start: start + size], format="fltp", layout="mono")
            af.sample_rate, af.pts = RATE, start
            box.mux(aus.encode(af))
        box.mux(aus.encode(None))
    tmp.replace(path)
