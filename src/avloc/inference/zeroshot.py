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

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avloc.inference.event_groups import EventGroups
from avloc.inference.events import Events, runs_to_events
from avloc.inference.prediction import ScoreTrack, VideoPrediction
from avloc.media.backbones.base import AudioBackbone, VisualBackbone
from avloc.media.decode import decode, probe


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
def visual_group_mass(frames: np.ndarray, net: VisualBackbone, groups: EventGroups, cfg: ZeroShotConfig,
                      seconds: int) -> torch.Tensor:
    """(seconds * fps, H, W, 3) uint8 -> (seconds, G): EfficientNet's group mass averaged per second."""
    probs = [net.classify(net.preprocess(chunk, cfg.crop)).softmax(-1).cpu()
             for chunk in np.array_split(frames, max(1, -(-len(frames) // cfg.batch)))]  # [(b, 1000)]
    per_frame = groups.mass(torch.cat(probs))  # (seconds * fps, G)
    return per_frame.reshape(seconds, cfg.frames_per_second, -1).mean(1)  # (seconds, G)


@torch.no_grad()
def audio_group_mass(wave: np.ndarray, net: AudioBackbone, groups: EventGroups, cfg: ZeroShotConfig,
                     seconds: int) -> torch.Tensor:
    """(S,) 22,050 Hz wave -> (seconds, G): SoundNet's group mass on a window centred on each second."""
    starts = np.arange(seconds) + 0.5 - cfg.audio_window_s / 2  # (seconds,) may be < 0: cut at the clip start
    objects, _ = net.class_probs(wave, starts, cfg.audio_window_s)  # (seconds, 1000)
    return groups.mass(objects.cpu())  # (seconds, G)


def agreement(pa: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
    """(T, G) audio and visual group masses -> (T, G) geometric mean: both must be high."""
    return (pa * pv).clamp_min(0).sqrt()


def zero_shot_predict(path: str | Path, visual: VisualBackbone, audio: AudioBackbone, groups: EventGroups,
                      cfg: ZeroShotConfig | None = None) -> VideoPrediction:
    """Decode ``path``, score every second and return its AV events plus the audio- and visual-only tracks."""
    cfg = cfg or ZeroShotConfig()
    path = Path(path)
    duration = probe(path).duration
    seconds = max(1, int(np.floor(duration + 0.5)))  # a last partial second counts from half a second on
    fps = cfg.frames_per_second
    frame_times = np.minimum(np.arange(seconds * fps) / fps, max(duration - 1e-3, 0.0))  # (seconds * fps,)
    media = decode(path, frame_times, audio.sample_rate)
    pv = visual_group_mass(media.frames, visual, groups, cfg, seconds).double()  # (seconds, G)
    notes = []
    if media.has_audio:
        pa = audio_group_mass(media.audio, audio, groups, cfg, seconds).double()  # (seconds, G)
    else:
        pa = torch.zeros_like(pv)
        notes.append("no audio track: no audio-visual events, only the visual track")
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
