"""The zero-shot detector scored on labelled videos, and its threshold chosen on a validation split.

Ground truth: a composed real-media folder (``avloc synth ave --media``) names in ``timeline.json`` every
second's sound and picture; an audio-visual second of class c is c's sound over c's picture, its audio-visual
events are the runs of such seconds. The detector speaks in event groups (dog, bird, clock, ...); a group
stands for class c when one of its ImageNet classes is among c's pictures in the set's class map
(``depicts`` or ``stands_in``), so the rule comes from the same file the set was composed from. A group that
stands for no class of the set is never right there.

- per-second accuracy: each second is background or the class of the group with the highest agreement
  above the threshold (a group of no class counts as a wrong foreground); dips of at most ``max_gap`` seconds
  inside a group's run count as that run (``zeroshot.bridge_gaps``), as the detector reports them;
- events: the detector's audio-visual events against the true ones, one-to-one, same class and temporal IoU
  >= ``tiou`` (0.5), greedily by descending event score; precision = matched / found, recall = matched /
  true, false events = found - matched.

``choose_threshold`` sweeps one agreement threshold shared by every group, and the longest bridged dip (0-3 s:
up to the longest sound window, SoundNet's 3 s), and keeps the best event F1 (ties: the shorter bridge, then the
higher threshold, fewer false events). It must be given a validation split, never the test split.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avloc.evaluation.detection import tiou
from avloc.evaluation.proposals import find_segments
from avloc.inference.sound_vocab import SoundVocabulary
from avloc.inference.zeroshot import agreement, bridge_gaps, group_masses
from avloc.inference.zeroshot_scores import SecondScores
from avloc.media.compose.sources import read_class_map

GRID = np.round(np.arange(0.02, 0.801, 0.01), 2)  # candidate agreement thresholds
GAPS = (0, 1, 2, 3)  # candidate longest bridged dips (s)


@dataclass
class LabelledVideo:
    """seconds (T,): the class of each audio-visual second, "" otherwise; events: (class, start, end)."""

    video: str
    seconds: np.ndarray
    events: list[tuple[str, float, float]]


@dataclass
class ZeroShotScore:
    threshold: float
    per_second_acc: float
    precision: float
    recall: float
    f1: float
    found: int  # audio-visual events the detector reported
    matched: int
    true_events: int
    per_class: dict[str, list[int]] = field(default_factory=dict)  # class -> [true events, matched, false]
    max_gap: int = 0  # the longest dip bridged inside an event (s)

    @property
    def false_events(self) -> int:
        return self.found - self.matched

    def as_dict(self) -> dict[str, float]:
        return {**{k: v for k, v in asdict(self).items() if k != "per_class"}, "false_events": self.false_events}


def composed_truth(data_dir: str | Path, split: str) -> dict[str, LabelledVideo]:
    """The labelled videos of one split of a composed folder (its ``timeline.json``)."""
    path = Path(data_dir) / "timeline.json"
    try:
        videos = json.loads(path.read_text())["videos"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a composed real-media timeline ({exc!r})") from None
    out = {}
    for vid, v in videos.items():
        if v["split"] != split:
            continue
        kinds, audio = np.asarray(v["kinds"]), np.asarray(v["audio"], dtype=object)
        seconds = np.where(kinds == "av", audio, "").astype(str)  # (T,)
        out[vid] = LabelledVideo(vid, seconds, [(c, float(s), float(e)) for c, s, e in v["events"]])
    if not out:
        raise ValueError(f"{path}: no video of split '{split}'")
    return out


def composed_split_videos(data_dir: str | Path, split: str) -> list[Path]:
    """The video files of one split of a composed folder: the AVE layout's ``<split>Set.txt`` lines, else (UnAV
    layout) the videos ``timeline.json`` puts in the split; ``videos/<id>.mp4`` either way."""
    path = Path(data_dir) / f"{split}Set.txt"
    if not path.is_file() and (Path(data_dir) / "timeline.json").is_file():
        return [Path(data_dir) / "videos" / f"{vid}.mp4" for vid in composed_truth(data_dir, split)]
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the split list ({exc.strerror})") from None
    bad = [ln for ln in lines if ln.count("&") < 4]
    if bad:
        raise ValueError(f"{path}: not an AVE split line: {bad[0]!r}")
    return [Path(data_dir) / "videos" / f"{ln.split('&')[1]}.mp4" for ln in lines]


def group_classes(vocab: SoundVocabulary, class_map: str | Path) -> dict[str, str]:
    """Event group -> the composed class it stands for ("" for none), by shared ImageNet wnids."""
    classes, _ = read_class_map(class_map)  # class -> its depicts + stands_in wnids
    out = {}
    for g in vocab.names:
        wn = vocab.wnids(g)
        hits = sorted(c for c, wnids in classes.items() if wn & set(wnids))
        if len(hits) > 1:
            raise ValueError(f"{class_map}: event group '{g}' stands for several classes: {hits}")
        out[g] = hits[0] if hits else ""
    return out


def video_agreement(scores: SecondScores, vocab: SoundVocabulary) -> np.ndarray:
    """(T, G) agreement of one video: computed once and reused by every threshold a sweep tries."""
    pa, pv = group_masses(scores, vocab)
    return agreement(pa, pv).numpy()  # (T, G)


def _match(found: list[tuple[str, float, float, float]], true: list[tuple[str, float, float]], min_tiou: float
           ) -> np.ndarray:
    """(N,) bool: which (class, start, end) true events a (class, start, end, score) event matches one-to-one,
    best score first."""
    if not found or not true:
        return np.zeros(len(true), bool)
    f = sorted(found, key=lambda e: -e[3])
    fl, fs, fe = (np.array([e[i] for e in f]) for i in range(3))
    tl, ts, te = (np.array([e[i] for e in true]) for i in range(3))
    ok = (tiou(fs[:, None], fe[:, None], ts, te) >= min_tiou - 1e-9) & (fl[:, None] == tl[None, :])  # (F, N)
    taken = np.zeros(len(true), bool)
    for row in ok:  # a handful of events per video
        j = np.flatnonzero(row & ~taken)
        if len(j):
            taken[j[0]] = True
    return taken


def require_scores(scores: dict[str, SecondScores], truth: dict[str, LabelledVideo], where: str = "") -> None:
    """Refuse labelled videos that the score cache lacks (a cache made for another split or folder), naming
    ``where`` (the cache and split) and one of them."""
    missing = sorted(set(truth) - set(scores))
    if missing:
        raise ValueError(f"{where}no cached scores for {len(missing)} videos, e.g. '{missing[0]}'")


def evaluate_zero_shot(scores: dict[str, SecondScores], truth: dict[str, LabelledVideo], vocab: SoundVocabulary,
                       classes: dict[str, str], threshold: float, tiou: float = 0.5,
                       group_thresholds: dict[str, float] | None = None, max_gap: int = 0) -> ZeroShotScore:
    """Per-second accuracy and event precision / recall / F1 of one agreement threshold (module docstring);
    ``group_thresholds`` overrides it for some groups; dips of at most ``max_gap`` seconds are bridged."""
    thr = np.array([[(group_thresholds or {}).get(g, threshold) for g in vocab.names]])  # (1, G)
    return sweep_thresholds(scores, truth, vocab, classes, thr, np.array([float(threshold)]), tiou, max_gap)[0]


def sweep_thresholds(scores: dict[str, SecondScores], truth: dict[str, LabelledVideo], vocab: SoundVocabulary,
                     classes: dict[str, str], thr: np.ndarray, reported: np.ndarray, tiou: float = 0.5,
                     max_gap: int = 0) -> list[ZeroShotScore]:
    """``evaluate_zero_shot`` at K threshold rows ``thr`` (K, G) at once, ``reported`` (K,) naming each: every
    video's agreement is computed once and compared with all K rows in one array operation."""
    require_scores(scores, truth)
    label_of = np.array([classes.get(g) or f"other:{g}" for g in vocab.names])  # (G,)
    k_n, g_n = thr.shape
    right, found, matched = (np.zeros(k_n, np.int64) for _ in range(3))
    total = n_true = 0
    per_class: list[dict[str, list[int]]] = [{} for _ in range(k_n)]  # per threshold: class -> counts
    true_of: dict[str, int] = {}  # class -> true events
    for vid, lab in truth.items():
        av = video_agreement(scores[vid], vocab)
        t = min(len(av), len(lab.seconds))
        a = av[:t]  # (t, G)
        active = bridge_gaps(a[None] >= thr[:, None, :], max_gap)  # (K, t, G)
        best = np.where(active, a[None], -1.0).argmax(2)  # (K, t)
        pred = np.where(active.any(2), label_of[best], "")  # (K, t)
        right += (pred == lab.seconds[:t]).sum(1)
        total += len(lab.seconds)
        n_true += len(lab.events)
        rows, s, e = find_segments(active.transpose(0, 2, 1).reshape(k_n * g_n, t))  # runs per (threshold, group)
        k_of, g_of = np.divmod(rows, g_n)
        csum = np.concatenate([np.zeros((1, g_n)), np.cumsum(a, 0)])  # (t + 1, G): runs_to_events' run means
        score = (csum[e, g_of] - csum[s, g_of]) / np.maximum(e - s, 1)
        start, end = s * 1.0, np.minimum(e * 1.0, scores[vid].duration)
        bounds = np.searchsorted(k_of, np.arange(k_n + 1))  # runs of threshold k: bounds[k]:bounds[k + 1]
        for k in np.flatnonzero(np.diff(bounds) > 0):
            sl = slice(bounds[k], bounds[k + 1])
            labels = label_of[g_of[sl]].tolist()
            taken = _match(list(zip(labels, start[sl].tolist(), end[sl].tolist(), score[sl].tolist())), lab.events,
                           tiou)
            found[k] += len(labels)
            matched[k] += int(taken.sum())
            for c in labels:
                per_class[k].setdefault(c, [0, 0, 0])[2] += 1
            for (c, _, _), hit in zip(lab.events, taken):
                per_class[k].setdefault(c, [0, 0, 0])[1] += int(hit)
        for c, _, _ in lab.events:
            true_of[c] = true_of.get(c, 0) + 1
    out = []
    for k in range(k_n):
        for c, n in true_of.items():
            per_class[k].setdefault(c, [0, 0, 0])[0] = n
        for row in per_class[k].values():
            row[2] -= row[1]  # found events of the class that matched nothing
        f, m = int(found[k]), int(matched[k])
        p = m / f if f else 0.0
        r = m / n_true if n_true else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out.append(ZeroShotScore(float(reported[k]), int(right[k]) / max(total, 1), p, r, f1, f, m, n_true,
                                 dict(sorted(per_class[k].items())), int(max_gap)))
    return out


def mismatched_sound(scores: dict[str, SecondScores], truth: dict[str, LabelledVideo]) -> dict[str, SecondScores]:
    """A control for hearing: each video keeps its frames but gets the sound tables of the next video (in id
    order, cyclic) whose events are of other classes. A detector that hears loses its events; one that only
    sees keeps them."""
    ids = sorted(truth)
    kinds = [frozenset(c for c, _, _ in truth[v].events) for v in ids]
    out = {}
    for i, v in enumerate(ids):
        j = next((k % len(ids) for k in range(i + 1, i + len(ids)) if kinds[k % len(ids)] != kinds[i]), i)
        s, other = scores[v], scores[ids[j]]
        t = min(s.seconds, other.seconds)
        out[v] = SecondScores(v, s.duration, s.visual[:t], other.soundnet[:t], other.ucs[:t], other.has_audio)
    return out


def with_wrong_sound_copies(scores: dict[str, SecondScores], truth: dict[str, LabelledVideo]
                            ) -> tuple[dict[str, SecondScores], dict[str, LabelledVideo]]:
    """The split plus, per video, a copy with the sound of a video of another class (``mismatched_sound``)
    and no audio-visual second: seen-not-heard examples, which a composed split has few of (most of its
    seconds are audio-visual), so that a threshold chosen on it rewards hearing, not only seeing."""
    wrong = mismatched_sound(scores, truth)
    s2, t2 = dict(scores), dict(truth)
    for v, lab in truth.items():
        key = f"{v}~wrong_sound"
        s2[key] = SecondScores(key, wrong[v].duration, wrong[v].visual, wrong[v].soundnet, wrong[v].ucs,
                               wrong[v].has_audio)
        t2[key] = LabelledVideo(key, np.full(len(lab.seconds), ""), [])
    return s2, t2


def choose_threshold(scores: dict[str, SecondScores], truth: dict[str, LabelledVideo], vocab: SoundVocabulary,
                     classes: dict[str, str], grid: np.ndarray = GRID, tiou: float = 0.5,
                     gaps: tuple[int, ...] = GAPS) -> tuple[ZeroShotScore, list[ZeroShotScore]]:
    """The (threshold, max_gap) of the grid with the best event F1 on ``truth`` (ties: the shorter bridge, then
    the higher threshold), and every grid point's score."""
    thr = np.repeat(np.asarray(grid, np.float64)[:, None], len(vocab.names), 1)  # (K, G): one shared per row
    rows = [r for g in gaps for r in sweep_thresholds(scores, truth, vocab, classes, thr, grid, tiou, g)]
    best = max(rows, key=lambda s: (round(s.f1, 12), -s.max_gap, s.threshold))
    return best, rows

