"""Frames and audio of one media file with PyAV, on one clock: time 0 is the first video frame.

Any container and codec FFmpeg reads (not only AAC-in-MP4), any channel layout (downmixed to mono by
libswresample). Only the frames that are asked for are converted to RGB; decoding stops once the last requested
time is passed. What goes wrong in a file that is still usable is kept in ``flags`` (no audio track, an
unreadable audio stream, a truncated stream, silence); what makes it unusable is a ``MediaError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

SILENCE = 1e-4  # peak amplitude under which a clip's audio counts as silent


class MediaError(Exception):
    """A media file that cannot be used; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass
class Probe:
    """Stream facts from the container header, the duration checked against the last video packet."""

    path: str
    duration: float  # seconds of the video stream
    fps: float
    width: int
    height: int
    video_codec: str
    has_audio: bool
    audio_codec: str = ""
    audio_rate: int = 0
    audio_channels: int = 0
    truncated: bool = False  # the header promised more than the file holds; ``duration`` is what it holds


@dataclass
class Decoded:
    """``frames`` uint8 (N, H, W, 3) RGB at ``frame_times`` (N,) s; ``audio`` float32 (S,) mono at ``audio_rate``."""

    frames: np.ndarray
    frame_times: np.ndarray
    audio: np.ndarray
    audio_rate: int
    duration: float
    has_audio: bool
    flags: list[str] = field(default_factory=list)


def _open(path: Path):  # noqa: ANN202  (av.container.InputContainer)
    import av

    if not path.is_file():
        raise MediaError(path, "file not found")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(path, f"not a readable media file ({_why(exc)})") from None


def _why(exc: Exception) -> str:
    """FFmpeg's reason in words, without its errno and the path the message already names."""
    return str(getattr(exc, "strerror", None) or exc)


def _stream_start(stream) -> float:  # noqa: ANN001
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def probe(path: str | Path) -> Probe:
    """Durations, rates and codecs of ``path`` without decoding; a file without a video stream is an error.
    The duration is what the file holds: a header that promises more (a cut-off download) sets ``truncated``."""
    path = Path(path)
    with _open(path) as box:
        if not box.streams.video:
            raise MediaError(path, "no video stream")
        v = box.streams.video[0]
        a = box.streams.audio[0] if box.streams.audio else None
        fps = float(v.average_rate or v.guessed_rate or 0) or 25.0
        declared = _declared_end(v, box)
        # the last packet's end: from two seconds before the declared end (a whole file: a few packets), or from
        # the start when the header has no duration or the seek finds nothing (a truncated file: what it holds)
        end = _packets_end(box, v, declared - 2.0 if declared != float("inf") else None)
        if end is None:
            with _open(path) as again:
                end = _packets_end(again, again.streams.video[0], None)
        held = (end - _stream_start(v)) if end is not None else 0.0
        tolerance = 2.0 / fps  # two frames: containers round their durations
        truncated = declared != float("inf") and held < declared - tolerance
        duration = held if truncated or declared == float("inf") else declared
        if v.codec_context is None or not v.codec_context.width:
            raise MediaError(path, "video stream has no decodable frames (unknown size)")
        return Probe(
            path=str(path), duration=max(duration, 0.0), fps=fps, width=v.codec_context.width,
            height=v.codec_context.height, video_codec=v.codec_context.name, has_audio=a is not None,
            audio_codec=a.codec_context.name if a is not None else "",
            audio_rate=a.codec_context.sample_rate or 0 if a is not None else 0,
            audio_channels=a.codec_context.channels if a is not None else 0, truncated=truncated,
        )


def _packets_end(box, stream, from_s: float | None) -> float | None:  # noqa: ANN001
    """The end (seconds, stream clock) of the last video packet, demuxed (not decoded) from ``from_s`` (a
    backward seek to the keyframe before it) or from the start; None when no packet was read."""
    import av

    end = None
    try:
        if from_s is not None:
            box.seek(max(0, int((from_s + _stream_start(stream)) / stream.time_base)), stream=stream, backward=True)
        for p in box.demux(stream):
            if p.pts is not None:
                t = float((p.pts + (p.duration or 0)) * p.time_base)
                end = t if end is None else max(end, t)
    except av.error.FFmpegError:
        pass  # a cut-off file ends in a read error: the packets before it are what it holds
    return end


def iter_frames(path: str | Path, frame_times: np.ndarray | None, chunk: int = 64,
                flags: list[str] | None = None,
                stats: dict[str, float] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (times (n,), frames uint8 (n, H, W, 3)) chunks: for each requested time (ascending) the last
    decoded frame at or before it (the first frame for times before it), or every frame when ``frame_times``
    is None. A stream that ends early repeats its last frame and adds ``video_truncated`` to ``flags``.

    ``stats``: when decoding reached the end of the stream, ``stats["decoded_s"]`` is set to the seconds that
    decoded (last frame time + one frame), which is less than the container's duration in a truncated file."""
    import av

    path = Path(path)
    want = None if frame_times is None else np.asarray(frame_times, dtype=np.float64)
    if want is not None and len(want) and np.any(np.diff(want) < 0):
        raise ValueError("frame_times must be ascending")
    times: list[float] = []
    frames: list[np.ndarray] = []
    k = 0  # next requested time to serve
    prev = None  # (time, frame) of the last decoded frame
    with _open(path) as box:
        if not box.streams.video:
            raise MediaError(path, "no video stream")
        v = box.streams.video[0]
        v.thread_type = "AUTO"
        t0 = last_t = None
        try:
            for frame in box.decode(v):
                t = frame.time if frame.time is not None else (len(times) / float(v.average_rate or 25))
                t0 = t if t0 is None else t0
                t -= t0
                last_t = t
                if want is None:
                    times.append(t)
                    frames.append(frame.to_ndarray(format="rgb24"))
                else:
                    rgb = None  # the previous frame converted once, however many times it serves
                    while k < len(want) and want[k] < t:  # times before this frame take the previous one
                        rgb = rgb if rgb is not None else (prev[1] if prev is not None else frame).to_ndarray(format="rgb24")
                        times.append(float(want[k]))
                        frames.append(rgb)
                        k += 1
                    prev = (t, frame)
                    if k >= len(want):
                        break
                if len(frames) >= chunk:
                    yield np.asarray(times), np.stack(frames)
                    times, frames = [], []
        except av.error.FFmpegError as exc:
            if prev is None and not frames and not times:
                raise MediaError(path, f"video stream unreadable ({_why(exc)})") from None
            if flags is not None:
                flags.append("video_decode_error")
        frame_dt = 1.0 / float(v.average_rate or 25)
        ended = want is None or k < len(want)  # the loop ran out of frames rather than of requested times
        if ended and last_t is not None:
            if stats is not None:
                stats["decoded_s"] = last_t + frame_dt
            short = _declared_end(v, box) > last_t + 2 * frame_dt
            if flags is not None and short and (want is None or want[-1] > last_t + 2 * frame_dt):
                flags.append("video_truncated")
        if want is not None and k < len(want):
            if prev is None:
                raise MediaError(path, "video stream has no decodable frames")
            last = prev[1].to_ndarray(format="rgb24")
            rest = want[k:]
            times.extend(rest.tolist())
            frames.extend([last] * len(rest))
    if frames:
        for i in range(0, len(frames), chunk):
            yield np.asarray(times[i : i + chunk]), np.stack(frames[i : i + chunk])


def _declared_end(stream, box) -> float:  # noqa: ANN001
    """The video stream's duration from the header (the container's when the stream has none; Matroska)."""
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    return box.duration / 1e6 if box.duration is not None else float("inf")


def decode_audio(path: str | Path, rate: int, flags: list[str] | None = None,
                 until: float | None = None) -> np.ndarray | None:
    """Mono float32 (S,) at ``rate`` Hz, sample 0 at the first video frame; None when there is no audio track.

    ``until``: stop decoding once a frame starts after this many seconds (the AVE layout needs only 10 s)."""
    import av

    path = Path(path)
    with _open(path) as box:
        if not box.streams.audio:
            return None
        a = box.streams.audio[0]
        offset = _stream_start(a) - (_stream_start(box.streams.video[0]) if box.streams.video else 0.0)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts: list[np.ndarray] = []
        try:
            for frame in box.decode(a):
                if until is not None and frame.time is not None and frame.time - _stream_start(a) > until:
                    break
                frame.pts = None  # let the resampler count samples; gaps are not filled by timestamps
                parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
        except (av.error.FFmpegError, ValueError) as exc:
            if not parts:
                if flags is not None:
                    flags.append("audio_unreadable")
                return None
            if flags is not None:
                flags.append("audio_decode_error")
            del exc
    wave = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    shift = int(round(offset * rate))
    if shift > 0:  # audio starts after the first frame: silence before it
        wave = np.concatenate([np.zeros(shift, np.float32), wave])
    elif shift < 0:
        wave = wave[-shift:]
    return wave


def decode(path: str | Path, frame_times: np.ndarray | None, audio_rate: int) -> Decoded:
    """Frames at ``frame_times`` (every frame when None) and the mono audio at ``audio_rate``, on one clock.
    ``duration``: the seconds that decode when the stream is truncated (flag ``video_truncated``).

    No audio track (or an unreadable one) gives zeros of the video's length with flag ``no_audio``
    (``audio_unreadable``); a peak under ``SILENCE`` adds ``silent``.
    """
    info = probe(path)
    flags: list[str] = ["video_truncated"] if info.truncated else []
    stats: dict[str, float] = {}
    chunks = list(iter_frames(path, frame_times, chunk=1 << 30, flags=flags, stats=stats))
    if chunks:
        times = np.concatenate([c[0] for c in chunks])
        frames = np.concatenate([c[1] for c in chunks])
    else:
        times = np.zeros(0)
        frames = np.zeros((0, info.height, info.width, 3), np.uint8)
    wave = decode_audio(path, audio_rate, flags) if info.has_audio else None
    has_audio = wave is not None
    if wave is None:
        if not info.has_audio:
            flags.append("no_audio")
        wave = np.zeros(int(round(info.duration * audio_rate)), np.float32)
    elif len(wave) == 0 or float(np.abs(wave).max()) < SILENCE:
        flags.append("silent")
    return Decoded(frames=frames, frame_times=times, audio=wave, audio_rate=audio_rate,
                   duration=usable_seconds(info.duration, stats, flags), has_audio=has_audio,
                   flags=list(dict.fromkeys(flags)))


def usable_seconds(container_s: float, stats: dict[str, float], flags: list[str]) -> float:
    """The seconds to use: the container's duration, or what decoded when the stream was flagged truncated
    (a cut-off download keeps the full duration in its header; only the frames that decode are real)."""
    if "video_truncated" in flags and "decoded_s" in stats:
        return min(container_s, stats["decoded_s"])
    return container_s
