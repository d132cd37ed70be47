"""A training-free audio-visual event detector: where what is heard and what is seen name the same object.

Our own baseline (not a published method), the zero-shot form of CLASP's mutual event agreement. SoundNet-8's
conv8 head predicts the 1,000 ILSVRC-2012 objects from sound, EfficientNet-Lite0's classifier the same 1,000
objects, in the same order, from frames. Both are summed into event groups (``event_groups.tsv``); per second t
and group g:

    pa_g(t) = SoundNet softmax mass of g on a 3-s window centred on second t (cut at the clip's ends, tiled to
              14 s because conv8 needs >= 11 s of input; the border frame dropped, see ``soundnet.py``)
    pv_g(t) = EfficientNet softmax mass of g, averaged over 4 centre-cropped frames of second t
    A_g(t)  = sqrt(pa_g(t) * pv_g(t))           the agreement: high only when both hear and see g

An audio-visual event is a run of seconds with A_g >= its threshold (dog 0.25, any other group 0.15: the dog
group sums 118 breeds and leaks visual mass onto dark, furry-looking things such as a man in a suit). The
audio-only (pa >= 0.25) and visual-only (pv >= 0.25) tracks are kept: a silent dog on screen is a visual
track, not an audio-visual event. Time resolution is coarse and honest about it: a per-second value comes from
a 3-s window, so an audio onset smears by about +-1 s; SoundNet never saw tiled short windows in training.
Thresholds were fitted on four clips (one positive); they are a starting point, not a result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avloc.inference.event_groups import EventGroups
from avloc.inference.events import Events, runs_to_events
from avloc.inference.prediction import ScoreTrack, VideoPrediction
from avloc.media.backbones.base import AudioBackbone, VisualBackbone
from avloc.media.backbones.soundnet import SoundNet8
from avloc.media.decode import decode_audio, iter_frames, probe
from avloc.media.engines import EngineNet
from avloc.media.prefetch import prefetch

Net = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ZeroShotConfig:
    frames_per_second: int = 4  # EfficientNet frames per second (1 fps loses an LLP second, see zeroshot notes)
    crop: str = "center_crop"  # squash-resizing loses the dog/no-dog separation on the real clips
    audio_window_s: float = 3.0  # SoundNet window centred on each second
    av_threshold: float = 0.15  # agreement threshold of every group not in group_thresholds
    group_thresholds: dict[str, float] = field(default_factory=lambda: {"dog": 0.25})
    track_threshold: float = 0.25  # audio-only and visual-only tracks: group mass >= this
    batch: int = 32  # frames per EfficientNet forward pass


@torch.no_grad()
def visual_group_mass(frames: Iterable[torch.Tensor], net: VisualBackbone, groups: EventGroups,
                      cfg: ZeroShotConfig, seconds: int, run: Net | None = None) -> torch.Tensor:
    """Preprocessed frames in chunks [(b, 3, S, S)], seconds * fps in all -> (seconds, G): EfficientNet's group
    mass averaged per second. ``run`` runs the network (an ``EngineNet``), by default ``net`` itself; the
    ImageNet head always runs in torch."""
    run = run or net
    probs = [net.head(run(x)).softmax(-1).cpu() for x in frames]  # [(b, 1000)]
    per_frame = groups.mass(torch.cat(probs))  # (seconds * fps, G)
    return per_frame.reshape(seconds, cfg.frames_per_second, -1).mean(1)  # (seconds, G)


@torch.no_grad()
def audio_group_mass(wave: np.ndarray, net: AudioBackbone, groups: EventGroups, cfg: ZeroShotConfig,
                     seconds: int, conv7: Net | None = None) -> torch.Tensor:
    """(S,) 22,050 Hz wave -> (seconds, G): SoundNet's group mass on a window centred on each second
    (``conv7``: an engine's run of SoundNet's conv7, by default the module's own)."""
    starts = np.arange(seconds) + 0.5 - cfg.audio_window_s / 2  # (seconds,) may be < 0: cut at the clip start
    objects, _ = net.class_probs(wave, starts, cfg.audio_window_s, conv7)  # (seconds, 1000)
    return groups.mass(objects.cpu())  # (seconds, G)


def agreement(pa: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
    """(T, G) audio and visual group masses -> (T, G) geometric mean: both must be high."""
    return (pa * pv).clamp_min(0).sqrt()


class ZeroShotDetector:
    """The detector with its networks built once: EfficientNet-Lite0's and SoundNet-8's conv7 on the engine
    and precision asked for (``avloc extract --engine``; ``auto``: the float32 engine measured fastest here),
    the frames decoded and resized in a thread beside the networks (``resize_precision`` as for extract)."""

    def __init__(self, visual: VisualBackbone, audio: SoundNet8, groups: EventGroups,
                 cfg: ZeroShotConfig | None = None, engine: str = "torch", precision: str = "fp32",
                 resize_precision: str = "fp32") -> None:
        self.visual, self.audio, self.groups, self.cfg = visual, audio, groups, cfg or ZeroShotConfig()
        self.resize_precision = resize_precision
        self.visual_net = EngineNet(visual, visual.registered_name, engine, precision)  # (n, 1280, 7, 7) maps
        self.conv7_net = EngineNet(audio.map_net("conv7"), f"{audio.registered_name}_conv7", engine, precision)
        on_cpu = visual.device.type == "cpu"
        self.net_batch = 2 if on_cpu else self.cfg.batch  # frames per network call: small batches stay in cache

    def _frames(self, path: Path, times: np.ndarray) -> Iterator[torch.Tensor]:
        for _, chunk in iter_frames(path, times, chunk=self.cfg.batch):
            x = self.visual.preprocess(chunk, self.cfg.crop, self.resize_precision)  # (b, 3, S, S)
            yield from x.contiguous(memory_format=torch.channels_last).split(self.net_batch)

    def __call__(self, path: str | Path) -> VideoPrediction:
        """Decode ``path``, score every second and return its AV events plus the audio- and visual-only tracks."""
        cfg = self.cfg
        path = Path(path)
        info = probe(path)
        duration = info.duration
        seconds = max(1, int(np.floor(duration + 0.5)))  # a last partial second counts from half a second on
        fps = cfg.frames_per_second
        frame_times = np.minimum(np.arange(seconds * fps) / fps, max(duration - 1e-3, 0.0))  # (seconds * fps,)
        chunks = prefetch(self._frames(path, frame_times))  # decoded while the network runs on the ones before
        pv = visual_group_mass(chunks, self.visual, self.groups, cfg, seconds, self.visual_net).double()  # (s, G)
        wave = decode_audio(path, self.audio.sample_rate) if info.has_audio else None
        notes = []
        if wave is not None:
            pa = audio_group_mass(wave, self.audio, self.groups, cfg, seconds, self.conv7_net).double()  # (s, G)
        else:
            pa = torch.zeros_like(pv)
            notes.append("no audio track: no audio-visual events, only the visual track")
        return _prediction(path, duration, pa, pv, self.groups, cfg, notes)


def zero_shot_predict(path: str | Path, visual: VisualBackbone, audio: SoundNet8, groups: EventGroups,
                      cfg: ZeroShotConfig | None = None) -> VideoPrediction:
    """Decode ``path``, score every second and return its AV events plus the audio- and visual-only tracks
    (eager PyTorch; build a ``ZeroShotDetector`` once to score many videos, on any engine)."""
    return ZeroShotDetector(visual, audio, groups, cfg)(path)


def _prediction(path: Path, duration: float, pa: torch.Tensor, pv: torch.Tensor, groups: EventGroups,
                cfg: ZeroShotConfig, notes: list[str]) -> VideoPrediction:
    """(seconds, G) audio and visual group masses -> the AV events and the audio- and visual-only tracks."""
    av = agreement(pa, pv)  # (seconds, G)
    names = list(groups.names)
    thr = torch.tensor([cfg.group_thresholds.get(g, cfg.av_threshold) for g in names], dtype=av.dtype)  # (G,)
    tracks = [ScoreTrack("av", names, av.numpy(), 1.0), ScoreTrack("audio", names, pa.numpy(), 1.0),
              ScoreTrack("visual", names, pv.numpy(), 1.0)]
    events = Events.concat([
        runs_to_events((av >= thr).numpy(), av.numpy(), 1.0, names, "av", duration),
        runs_to_events((pa >= cfg.track_threshold).numpy(), pa.numpy(), 1.0, names, "audio", duration),
        runs_to_events((pv >= cfg.track_threshold).numpy(), pv.numpy(), 1.0, names, "visual", duration),
    ])
    return VideoPrediction(path.stem, path, duration, "zero-shot", events.sorted(), tracks, notes=notes)
