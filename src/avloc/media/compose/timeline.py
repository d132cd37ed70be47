"""Per-second timelines of composed videos: what is heard and what is seen in every second.

A timeline is two label arrays over whole seconds, ``audio`` and ``visual`` (a class name, or "" for
near-silence / an unrelated photo), from which everything else follows:

* an **audio-visual** second hears class c over a photo of c: the only seconds labelled c;
* an **audio-only** second hears c over an unrelated photo; a **visual-only** second shows c over
  near-silence or over the sound of an audio-only class (one ImageNet has no picture of); both are background
  for the localisation labels, like AVE's off-screen sounds and silent objects;
* **background** seconds show an unrelated photo over near-silence or an audio-only class's sound.

AVE layout (10 s, one class per video): like AVE, about 2/3 of the videos hold the event over 0-10 s, the rest
over 2-9 s; outside a partial event the video is clean (40 %), keeps the sound (30 %: audio-only seconds) or
keeps the picture (30 %: visual-only seconds). A background-only AVE-layout video (AVE's weak setting trains
beside such videos) has no audio-visual second: an event class may be heard alone or seen alone in it, with the
same 40 / 30 / 30 odds. UnAV layout (20-40 s): 1-3 events of any classes, 2-8 s each,
apart, each possibly extended by audio-only or visual-only seconds. Every draw comes from ``rng``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AVE_SECONDS = 10
P_FULL = 2 / 3  # AVE: share of videos whose event spans the whole clip (2,750 of 4,143)
OUTSIDE = ("clean", "audio", "visual")  # what a partial AVE event leaves outside itself
P_OUTSIDE = (0.4, 0.3, 0.3)


@dataclass
class Timeline:
    """``audio`` / ``visual`` (T,) labels per second; ``events`` [(class, start, end)] audio-visual runs."""

    audio: list[str]
    visual: list[str]
    events: list[tuple[str, int, int]]

    def kinds(self, event_classes: list[str]) -> list[str]:
        """Per second: ``av``, ``a`` (an event class heard only), ``v`` (an event class seen only) or ``bg``
        (an audio-only class's sound, such as rain, over an unrelated photo is background)."""
        out = []
        for a, v in zip(self.audio, self.visual):
            out.append("av" if a and a == v else "v" if v else "a" if a in event_classes else "bg")
        return out


def runs(labels: list[str]) -> list[tuple[str, int, int]]:
    """[(label, start, end)] maximal runs of equal labels."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((labels[start], start, i))
            start = i
    return out


def _unrelated_audio(rng: np.random.Generator, audio_only: list[str], n: int) -> list[str]:
    """Near-silence ("") or, half of the time, one audio-only class over the whole stretch."""
    name = audio_only[int(rng.integers(len(audio_only)))] if audio_only and rng.random() < 0.5 else ""
    return [name] * n


def ave_timeline(rng: np.random.Generator, cls: str, audio_only: list[str], full_share: float = P_FULL) -> Timeline:
    """One 10-s AVE-layout video of class ``cls``; its event spans the whole clip with probability
    ``full_share`` (AVE's 2/3 by default; 0 puts sound or picture alone or neither around every event, so that
    no second's label follows from one modality)."""
    t = AVE_SECONDS
    if rng.random() < full_share:
        start, end = 0, t
    else:
        length = int(rng.integers(2, t))  # 2..9 s
        start = int(rng.integers(0, t - length + 1))
        end = start + length
    mode = OUTSIDE[int(rng.choice(len(OUTSIDE), p=P_OUTSIDE))]
    audio = _unrelated_audio(rng, audio_only, t)
    visual = [""] * t
    for s in range(t):
        inside = start <= s < end
        if inside or mode == "audio":
            audio[s] = cls
        if inside or mode == "visual":
            visual[s] = cls
    return Timeline(audio, visual, [(cls, start, end)])


def background_timeline(rng: np.random.Generator, event_classes: list[str], audio_only: list[str]) -> Timeline:
    """One 10-s AVE-layout video without an event: near-silence or an audio-only class's sound over unrelated
    photos, with (like the stretches around a partial event) an event class heard alone (30 %) or seen alone
    (30 %) over 2-10 s of it, so that the background answer is learnt for one sense alone too."""
    t = AVE_SECONDS
    audio, visual = _unrelated_audio(rng, audio_only, t), [""] * t
    mode = OUTSIDE[int(rng.choice(len(OUTSIDE), p=P_OUTSIDE))]
    if mode != "clean":
        cls = event_classes[int(rng.integers(len(event_classes)))]
        length = int(rng.integers(2, t + 1))  # 2..10 s
        start = int(rng.integers(0, t - length + 1))
        track = audio if mode == "audio" else visual
        track[start: start + length] = [cls] * length
    return Timeline(audio, visual, [])


def unav_timeline(rng: np.random.Generator, classes: list[str], audio_only: list[str],
                  min_s: int = 20, max_s: int = 40) -> Timeline:
    """One longer video with 1-3 audio-visual events of ``classes`` (2-8 s each, at least 1 s apart)."""
    duration = int(rng.integers(min_s, max_s + 1))
    audio = _unrelated_audio(rng, audio_only, duration)
    visual = [""] * duration
    taken = np.zeros(duration, bool)
    events: list[tuple[str, int, int]] = []
    for _ in range(int(rng.integers(1, 4))):
        length = int(rng.integers(2, 9))
        free = [s for s in range(duration - length + 1) if not taken[max(0, s - 1): s + length + 1].any()]
        if not free:
            break
        start = free[int(rng.integers(len(free)))]
        cls = classes[int(rng.integers(len(classes)))]
        end = start + length
        # an event may spill over into one modality: up to 3 s of sound or picture alone before or after it
        lo, hi = start, end
        spill = OUTSIDE[int(rng.choice(len(OUTSIDE), p=P_OUTSIDE))]
        if spill != "clean":
            extra = int(rng.integers(1, 4))
            lo, hi = (max(0, start - extra), end) if rng.random() < 0.5 else (start, min(duration, end + extra))
            lo, hi = _clip_free(taken, lo, hi, start, end)
        for s in range(lo, hi):
            inside = start <= s < end
            if inside or spill == "audio":
                audio[s] = cls
            if inside or spill == "visual":
                visual[s] = cls
        taken[lo:hi] = True
        events.append((cls, start, end))
    return Timeline(audio, visual, sorted(events, key=lambda e: e[1]))


def _clip_free(taken: np.ndarray, lo: int, hi: int, start: int, end: int) -> tuple[int, int]:
    """Shrink the spill [lo, hi) around the event [start, end) so that it stays clear of other events."""
    while lo < start and taken[max(0, lo - 1): start].any():
        lo += 1
    while hi > end and taken[end: min(len(taken), hi + 1)].any():
        hi -= 1
    return lo, hi
