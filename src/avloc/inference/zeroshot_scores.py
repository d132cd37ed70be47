"""Per-second backbone outputs of a video, the only input of every zero-shot decision, and their cache file.

Every zero-shot choice (which audio vocabulary, which event groups, which thresholds) is a cheap function of
three per-second probability tables; the backbones are the expensive part. Computing the tables once per
video and saving them lets thresholds be swept on a labelled folder in seconds, and lets the detectors with
different sound vocabularies be compared on exactly the same frames and windows:

    visual   (T, 1000)  EfficientNet-Lite0 softmax over ILSVRC-2012, averaged over the second's frames
    soundnet (T, 1000)  SoundNet-8 conv8 object softmax on a 3-s window centred on the second
    ucs      (T, 82)    aiSFX's three UCS heads (``avloc.media.ucs_vocab``) on a 2.32-s window centred on it

A window is cut at the clip's ends (SoundNet tiles the cut window to its 14-s input; an aiSFX window is moved
inside the clip, or zero-padded when the clip is shorter than a window).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from avloc.formats.atomic import write_bytes_atomic
from avloc.inference.windows import clip_seconds
from avloc.media.backbones.base import AudioBackbone, VisualBackbone
from avloc.media.decode import decode_audio, iter_frames, probe
from avloc.media.engines import EngineNet
from avloc.media.prefetch import prefetch
from avloc.media.ucs_vocab import WINDOW_S as UCS_WINDOW_S
from avloc.media.ucs_vocab import UCS_CATEGORIES, UCSHeads

FRAMES_PER_SECOND = 4  # EfficientNet frames per second (1 fps loses short visual events)
CROP = "center_crop"  # squash-resizing loses the dog/no-dog separation on real clips
SOUNDNET_WINDOW_S = 3.0
TABLES = ("visual", "soundnet", "ucs")


@dataclass
class SecondScores:
    """One video's per-second tables (see the module docstring); ``has_audio`` False: audio tables are 0."""

    video: str
    duration: float
    visual: np.ndarray  # (T, 1000)
    soundnet: np.ndarray  # (T, 1000)
    ucs: np.ndarray  # (T, 82)
    has_audio: bool = True

    @property
    def seconds(self) -> int:
        return self.visual.shape[0]


Net = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ZeroShotNets:
    """The pretrained networks the tables come from (loaded once, used for every video); an audio network left
    out (None) leaves its table at zeros, for a detector that does not read it. The ``*_run`` callables run
    each network's body on an inference engine (``avloc extract --engine``); the heads stay in torch."""

    visual: VisualBackbone
    soundnet: AudioBackbone | None
    aisfx: AudioBackbone | None
    ucs: UCSHeads | None
    visual_run: Net | None = None  # (b, 3, S, S) -> EfficientNet's maps; None: the module itself
    soundnet_run: Net | None = None  # SoundNet's conv7 map; None: the module itself
    aisfx_run: Net | None = None  # aiSFX's forward; None: the module itself
    resize_precision: str = "fp32"  # frames resized in float32 (reference) or uint8 (avloc extract's option)

    @classmethod
    def from_packages(cls, device: str | torch.device = "cpu", tables: tuple[str, ...] = ("soundnet", "ucs"),
                      engine: str = "torch", precision: str = "fp32", resize_precision: str = "fp32"
                      ) -> "ZeroShotNets":
        """EfficientNet-Lite0 and the audio networks of ``tables`` (SoundNet-8; aiSFX with its UCS heads) from
        their installed packages, BatchNorm folded, on ``engine`` at ``precision``."""
        from avloc.media.backbones.aisfx import AiSFX
        from avloc.media.backbones.efficientnet import EfficientNetLite0
        from avloc.media.backbones.soundnet import SoundNet8

        visual = EfficientNetLite0.weights_from_package().to(device).fold_batchnorm()
        visual.to(memory_format=torch.channels_last)  # faster depthwise / 3x3 convolutions on the CPU
        soundnet = SoundNet8.weights_from_package().to(device).fold_batchnorm() if "soundnet" in tables else None
        hear = "ucs" in tables
        aisfx = AiSFX.weights_from_package().to(device).fold_batchnorm() if hear else None
        return cls(visual, soundnet, aisfx, UCSHeads.pretrained().to(device) if hear else None,
                   EngineNet(visual, visual.registered_name, engine, precision),
                   None if soundnet is None else
                   EngineNet(soundnet.map_net("conv7"), f"{soundnet.registered_name}_conv7", engine, precision),
                   None if aisfx is None else EngineNet(aisfx, aisfx.registered_name, engine, precision),
                   resize_precision)


@torch.no_grad()
def visual_probs(chunks: Iterator[torch.Tensor], net: VisualBackbone, seconds: int, run: Net | None = None
                 ) -> np.ndarray:
    """Preprocessed frames [(b, 3, S, S)], seconds * fps in all -> (seconds, 1000): EfficientNet softmax
    averaged per second (``run``: the network's body on an engine; the head runs in torch)."""
    run = run or net
    probs = torch.cat([net.head(run(x)).softmax(-1).cpu() for x in chunks])  # (S*fps, 1000)
    return probs.reshape(seconds, -1, probs.shape[-1]).mean(1).double().numpy()  # (seconds, 1000)


def frame_chunks(path: Path, times: np.ndarray, nets: ZeroShotNets, batch: int = 2) -> Iterator[torch.Tensor]:
    """Decoded, resized frames in network batches of ``batch`` (small batches stay in the CPU's cache)."""
    for _, chunk in iter_frames(path, times, chunk=32):
        x = nets.visual.preprocess(chunk, CROP, nets.resize_precision)  # (b, 3, S, S)
        yield from x.contiguous(memory_format=torch.channels_last).split(batch)


@torch.no_grad()
def ucs_probs(wave: np.ndarray, net: AudioBackbone, heads: UCSHeads, seconds: int, run: Net | None = None
              ) -> np.ndarray:
    """(S,) 44.1-kHz wave -> (seconds, 82): UCS probabilities on a 2.32-s window centred on each second."""
    clip_s = len(wave) / net.sample_rate
    starts = np.arange(seconds) + 0.5 - UCS_WINDOW_S / 2  # (seconds,)
    starts = np.clip(starts, 0.0, max(clip_s - UCS_WINDOW_S, 0.0))  # inside the clip
    return heads(net.embed(wave, starts, UCS_WINDOW_S, net=run)).double().cpu().numpy()  # (seconds, 82)


@torch.no_grad()
def soundnet_probs(wave: np.ndarray, net: AudioBackbone, seconds: int, conv7: Net | None = None) -> np.ndarray:
    """(S,) 22,050-Hz wave -> (seconds, 1000): SoundNet's object softmax on a 3-s window centred on each second."""
    starts = np.arange(seconds) + 0.5 - SOUNDNET_WINDOW_S / 2  # (seconds,) < 0 is cut at the clip start
    objects, _ = net.class_probs(wave, starts, SOUNDNET_WINDOW_S, conv7)  # (seconds, 1000)
    return objects.double().cpu().numpy()


def score_video(path: str | Path, nets: ZeroShotNets) -> SecondScores:
    """Decode ``path`` and compute its per-second tables. One thread beside the networks decodes the frames, then
    the audio at each sample rate a network reads (SoundNet 22.05 kHz, aiSFX 44.1 kHz) while the visual network
    runs on the last frames. Each rate is decoded from the file rather than resampled from the other: FFmpeg's
    one-step resampling keeps the tables of existing caches bit for bit, a two-step one moves them slightly."""
    path = Path(path)
    info = probe(path)
    duration = info.duration
    seconds = clip_seconds(duration)
    fps = FRAMES_PER_SECOND
    frame_times = np.minimum(np.arange(seconds * fps) / fps, max(duration - 1e-3, 0.0))  # (seconds * fps,)
    hear = nets.aisfx is not None and nets.ucs is not None
    rates = [n.sample_rate for n in (nets.soundnet, nets.aisfx if hear else None) if n is not None]
    waves: dict[int, np.ndarray | None] = {}

    def produce() -> Iterator[torch.Tensor]:  # runs in the prefetch thread
        yield from frame_chunks(path, frame_times, nets)
        for rate in dict.fromkeys(rates if info.has_audio else []):
            waves[rate] = decode_audio(path, rate)

    visual = visual_probs(prefetch(produce()), nets.visual, seconds, nets.visual_run)  # drains produce()
    soundnet, ucs = np.zeros((seconds, 1000)), np.zeros((seconds, len(UCS_CATEGORIES)))
    if info.has_audio and nets.soundnet is not None:
        soundnet = soundnet_probs(waves[nets.soundnet.sample_rate], nets.soundnet, seconds, nets.soundnet_run)
    if info.has_audio and hear:
        ucs = ucs_probs(waves[nets.aisfx.sample_rate], nets.aisfx, nets.ucs, seconds, nets.aisfx_run)
    return SecondScores(path.stem, duration, visual, soundnet, ucs, has_audio=info.has_audio)


def save_scores(scores: list[SecondScores], path: str | Path) -> Path:
    """Write many videos' tables to one ``.npz`` (atomically): ``<video>/<table>`` arrays plus a meta row."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    for s in scores:
        for t in TABLES:
            arrays[f"{s.video}/{t}"] = np.asarray(getattr(s, t), np.float32)
        arrays[f"{s.video}/meta"] = np.array([s.duration, float(s.has_audio)])
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())
    return path


def load_scores(path: str | Path) -> dict[str, SecondScores]:
    """The tables saved by :func:`save_scores`, by video id (never unpickles)."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a zero-shot score cache ({exc})") from None
    out: dict[str, SecondScores] = {}
    with data:
        videos = sorted({k.rsplit("/", 1)[0] for k in data.files})
        for v in videos:
            missing = [t for t in (*TABLES, "meta") if f"{v}/{t}" not in data.files]
            if missing:
                raise ValueError(f"{path}: video '{v}' lacks {', '.join(missing)}")
            meta = data[f"{v}/meta"]
            tables = [data[f"{v}/{t}"].astype(np.float64) for t in TABLES]
            out[v] = SecondScores(v, float(meta[0]), *tables, has_audio=bool(meta[1]))
    return out


def cache_scores(paths: list[Path], out: str | Path, nets: ZeroShotNets | None = None,
                 log: Callable[[str], None] | None = None) -> dict[str, SecondScores]:
    """Score every video (resuming from ``out`` when it holds some of them) and save all to ``out``."""
    out = Path(out)
    done = load_scores(out) if out.is_file() else {}
    todo = [p for p in paths if p.stem not in done]
    nets = nets or (ZeroShotNets.from_packages() if todo else None)
    for i, p in enumerate(todo):
        done[p.stem] = score_video(p, nets)
        if log:
            log(f"[{i + 1}/{len(todo)}] {p.name}")
        if (i + 1) % 20 == 0 or i + 1 == len(todo):  # a kill loses at most 20 videos of work
            save_scores(list(done.values()), out)
    return done
