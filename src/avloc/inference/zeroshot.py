"""A training-free audio-visual event detector: where what is heard and what is seen name the same thing.

Our own baseline (not a published method), the zero-shot form of CLASP's mutual event agreement.
EfficientNet-Lite0 names the 1,000 ILSVRC-2012 objects in the frames; the sound is named either by
SoundNet-8's conv8 head (the same 1,000 objects, distilled from image networks) or by aiSFX's 82 UCS sound
Categories (heads trained on labelled sound-effects libraries). A vocabulary (``sound_vocab``) sums both sides
into event groups; per second t and group g:

    pa_g(t) = audio mass of g on a window centred on second t (SoundNet 3 s, aiSFX 2.32 s; ``zeroshot_scores``)
    pv_g(t) = EfficientNet mass of g, averaged over 4 centre-cropped frames of second t
    A_g(t)  = sqrt(pa_g(t) * pv_g(t))           the agreement: high only when both hear and see g

An audio-visual event is a run of seconds with A_g >= ``av_threshold`` in which dips of at most ``max_gap``
seconds are bridged (``bridge_gaps``): each second's sound value comes from a 2-3 s window, so one or two
seconds below the threshold between agreeing seconds of one group are more likely a quiet moment of one event
than two events. The audio-only (pa >= track threshold) and visual-only (pv >= track threshold) tracks are kept
(not bridged): a silent dog on screen is a visual track, not an audio-visual event. The shipped thresholds and
``max_gap`` (``zeroshot_thresholds.json``) were chosen per vocabulary on the validation split of a composed
real-media set, with a wrong-sound copy of each video, by ``avloc zeroshot tune`` (the file records the
command). Time resolution is coarse: a per-second value comes from a 2-3 s window, so an onset smears by about
+-1 s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from avloc.inference.events import Events, runs_to_events
from avloc.inference.prediction import ScoreTrack, VideoPrediction
from avloc.inference.sound_vocab import VOCABULARIES, SoundVocabulary, load_vocabulary
from avloc.inference.zeroshot_scores import SecondScores, ZeroShotNets, score_video

SHIPPED = Path(__file__).with_name("zeroshot_thresholds.json")


@lru_cache(maxsize=None)
def shipped_thresholds(path: Path = SHIPPED) -> dict[str, dict]:
    """The val-chosen thresholds per vocabulary, with the command that chose them."""
    return json.loads(path.read_text())


@dataclass
class ZeroShotConfig:
    vocab: str = "ucs"  # ucs (the detector that hears), soundnet (as first shipped) or soundnet_ext
    av_threshold: float | None = None  # None: the shipped val-chosen value of ``vocab``
    track_threshold: float | None = None  # audio-only and visual-only tracks; None: shipped
    group_thresholds: dict[str, float] = field(default_factory=dict)  # per-group overrides of av_threshold
    max_gap: int | None = None  # longest dip (s) bridged inside an audio-visual event; None: shipped

    def resolved(self) -> "ZeroShotConfig":
        """This config with every None replaced by the shipped value of its vocabulary."""
        if self.vocab not in VOCABULARIES:
            raise ValueError(f"unknown zero-shot vocabulary '{self.vocab}'; choose from {', '.join(VOCABULARIES)}")
        av, track, gap = self.av_threshold, self.track_threshold, self.max_gap
        if av is None or track is None or gap is None:
            ship = shipped_thresholds()["vocabularies"]
            if self.vocab not in ship:
                raise ValueError(f"no shipped thresholds for vocabulary '{self.vocab}' in {SHIPPED}")
            av = ship[self.vocab]["av_threshold"] if av is None else av
            track = ship[self.vocab]["track_threshold"] if track is None else track
            gap = ship[self.vocab].get("max_gap", 0) if gap is None else gap
        return ZeroShotConfig(self.vocab, float(av), float(track), dict(self.group_thresholds), int(gap))

    @classmethod
    def from_file(cls, path: str | Path, vocab: str = "ucs") -> "ZeroShotConfig":
        """Vocabulary ``vocab``'s thresholds in a file written by ``avloc zeroshot tune``."""
        path = Path(path)
        try:
            row = json.loads(path.read_text())["vocabularies"][vocab]
            groups = {str(g): float(v) for g, v in row.get("group_thresholds", {}).items()}
            return cls(vocab, float(row["av_threshold"]), float(row["track_threshold"]), groups,
                       int(row.get("max_gap", 0)))  # files written before bridging had none
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: no zero-shot thresholds for vocabulary '{vocab}' ({exc!r})") from None


def agreement(pa: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
    """(T, G) audio and visual group masses -> (T, G) geometric mean: both must be high."""
    return (pa * pv).clamp_min(0).sqrt()


def bridge_gaps(active: np.ndarray, max_gap: int) -> np.ndarray:
    """(..., T, G) bool -> the same with every run of at most ``max_gap`` inactive steps that lies between two
    active steps of one column made active (a run at either end of the clip is left as it is)."""
    active = np.asarray(active, bool)
    if max_gap <= 0 or not active.size:
        return active
    n = active.shape[-2]
    t = np.arange(n)[:, None]  # (T, 1)
    last = np.maximum.accumulate(np.where(active, t, -1), -2)  # latest active step at or before t
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(active, t, n), -2), -2), -2)  # earliest at or after t
    return active | ((last >= 0) & (nxt < n) & (nxt - last - 1 <= max_gap))


def group_masses(scores: SecondScores, vocab: SoundVocabulary) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-second tables -> audio pa (T, G) and visual pv (T, G) group masses."""
    pv = vocab.visual_mass(torch.as_tensor(scores.visual))  # (T, G)
    pa = vocab.audio_mass(torch.as_tensor(getattr(scores, vocab.audio_table)))  # (T, G)
    return pa, pv


def detect(scores: SecondScores, vocab: SoundVocabulary, cfg: ZeroShotConfig, path: Path | None = None
           ) -> VideoPrediction:
    """The events of one video from its per-second tables (no network runs here)."""
    cfg = cfg.resolved()
    pa, pv = group_masses(scores, vocab)
    av = agreement(pa, pv)  # (T, G)
    names = list(vocab.names)
    av_thr = {g: cfg.group_thresholds.get(g, cfg.av_threshold) for g in names}
    thr = torch.tensor([av_thr[g] for g in names], dtype=av.dtype)  # (G,)
    tracks = [ScoreTrack("av", names, av.numpy(), 1.0), ScoreTrack("audio", names, pa.numpy(), 1.0),
              ScoreTrack("visual", names, pv.numpy(), 1.0)]
    d = scores.duration
    events = Events.concat([
        runs_to_events(bridge_gaps((av >= thr).numpy(), cfg.max_gap), av.numpy(), 1.0, names, "av", d),
        runs_to_events((pa >= cfg.track_threshold).numpy(), pa.numpy(), 1.0, names, "audio", d),
        runs_to_events((pv >= cfg.track_threshold).numpy(), pv.numpy(), 1.0, names, "visual", d),
    ])
    notes = [] if scores.has_audio else ["no audio track: no audio-visual events, only the visual track"]
    track_thr = {g: cfg.track_threshold for g in names}
    return VideoPrediction(scores.video, path or Path(scores.video), d, "zero-shot", events.sorted(), tracks,
                           notes=notes, thresholds={"av": av_thr, "audio": track_thr, "visual": dict(track_thr)})


def zero_shot_predict(path: str | Path, nets: ZeroShotNets, cfg: ZeroShotConfig | None = None) -> VideoPrediction:
    """Decode ``path``, score every second and return its AV events plus the audio- and visual-only tracks."""
    cfg = cfg or ZeroShotConfig()
    return detect(score_video(path, nets), load_vocabulary(cfg.vocab), cfg, Path(path))
