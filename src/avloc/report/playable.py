"""A copy of the input video that a browser plays, beside report.html.

Chromium (Debian's build included) plays H.264 / VP8 / VP9 / AV1 video with AAC / MP3 / Opus / Vorbis audio
in MP4 or WebM; such a file is copied as is. Anything else (MPEG-4 part 2, MJPEG, AVI, MKV with AC-3, ...)
is transcoded with PyAV to H.264 + AAC in MP4, so the report works for any input PyAV decodes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av

PLAYABLE_VIDEO = {"h264", "vp8", "vp9", "av1"}
PLAYABLE_AUDIO = {"aac", "mp3", "opus", "vorbis"}
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mp4", ".webm": "webm"}


def browser_plays(path: Path) -> bool:
    if path.suffix.lower() not in CONTAINERS:
        return False
    with av.open(str(path)) as box:
        videos = [s.codec_context.name for s in box.streams.video]
        audios = [s.codec_context.name for s in box.streams.audio]
    return bool(videos) and videos[0] in PLAYABLE_VIDEO and all(a in PLAYABLE_AUDIO for a in audios[:1])


def playable_copy(src: Path, folder: Path) -> Path:
    """``folder/video.mp4`` (or ``.webm``): ``src`` copied when a browser plays it, else transcoded."""
    if browser_plays(src):
        ext = ".webm" if CONTAINERS[src.suffix.lower()] == "webm" else ".mp4"
        dst = folder / f"video{ext}"
        shutil.copyfile(src, dst)
        return dst
    dst = folder / "video.mp4"
    transcode_h264(src, dst)
    return dst


def transcode_h264(src: Path, dst: Path) -> None:
    """Re-encode ``src`` as H.264 (yuv420p, even size) + AAC in MP4, frame timestamps kept."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        rate = vin.average_rate or 25
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height = vin.codec_context.width // 2 * 2, vin.codec_context.height // 2 * 2
        vout.pix_fmt = "yuv420p"
        vout.options = {"preset": "veryfast", "crf": "23"}
        aout = out.add_stream("aac", rate=44100) if ain is not None else None
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=44100) if ain is not None else None
        streams = [s for s in (vin, ain) if s is not None]
        for packet in inp.demux(*streams):
            for frame in packet.decode():
                if packet.stream.type == "video":
                    frame = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
                    frame.pts = None
                    out.mux(vout.encode(frame))
                else:
                    for chunk in resampler.resample(frame):
                        chunk.pts = None
                        out.mux(aout.encode(chunk))
        out.mux(vout.encode(None))
        if aout is not None:
            out.mux(aout.encode(None))
