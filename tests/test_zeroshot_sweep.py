"""The threshold sweeps (``avloc zeroshot tune`` and the clips' budget curve) compute each video's agreement once
and compare it with every threshold at once; what they report must be bit-identical to scoring the thresholds
one at a time the plain way (``runs_to_events`` per threshold, ``detect`` per clip), on made-up tables with
planted events, agreements lying exactly on grid points, and ties between groups."""

from __future__ import annotations

import numpy as np
import pytest

from avloc.inference.events import runs_to_events
from avloc.inference.sound_vocab import load_vocabulary
from avloc.inference.zeroshot import ZeroShotConfig, bridge_gaps, detect
from avloc.inference.zeroshot_eval import (GAPS, GRID, LabelledVideo, ZeroShotScore, _match, choose_threshold,
                                           evaluate_zero_shot, video_agreement, with_wrong_sound_copies)
from avloc.inference.zeroshot_report import TRACK_THRESHOLD, budget_points, clip_verdict
from avloc.inference.zeroshot_scores import SecondScores
from avloc.media.ucs_vocab import UCS_CATEGORIES

CLASSES = {"dog": "Dog bark", "bird": "Rooster", "clock": "Clock tick"}  # group -> class; others stand for none


def made_up_cache(seed: int = 0, n: int = 14) -> tuple[dict[str, SecondScores], dict[str, LabelledVideo]]:
    """Videos of 3-9 s: noisy softmax tables (odd videos) or clean ones (even), with 1-3 planted runs of a group
    heard and seen, half of them labelled as true events of its class."""
    rng = np.random.default_rng(seed)
    vocab = load_vocabulary("ucs")
    groups = [g for i, g in enumerate(vocab.names) if (vocab.visual[:, i] > 0).any() and (vocab.audio[:, i] > 0).any()]
    scores, truth = {}, {}
    for i in range(n):
        t = int(rng.integers(3, 10))
        noisy = i % 2 == 1
        vis = rng.dirichlet(np.full(1000, 0.05), t) * 0.3 if noisy else np.zeros((t, 1000))
        ucs = rng.dirichlet(np.full(len(UCS_CATEGORIES), 0.1), t) * 0.3 if noisy else np.zeros((t, len(UCS_CATEGORIES)))
        seconds, events = np.full(t, "", dtype=object), []
        for _ in range(int(rng.integers(1, 4))):
            g = groups[int(rng.integers(len(groups)))] if rng.random() < 0.6 else str(rng.choice(list(CLASSES)))
            j = vocab.names.index(g)
            s = int(rng.integers(0, t))
            e = int(rng.integers(s + 1, t + 1))
            # on-grid values: sqrt(p * p) is p or next to it, so a threshold of the grid cuts exactly there
            p = float(rng.choice(GRID)) if not noisy else rng.uniform(0.05, 0.7, e - s)
            vis[s:e, rng.choice(np.flatnonzero(vocab.visual[:, j].numpy() > 0))] += p
            ucs[s:e, rng.choice(np.flatnonzero(vocab.audio[:, j].numpy() > 0))] += p
            if g in CLASSES and rng.random() < 0.7 and not seconds[s:e].any():
                seconds[s:e] = CLASSES[g]
                events.append((CLASSES[g], float(s), float(e)))
        vid = f"v{i:02d}"
        scores[vid] = SecondScores(vid, t - float(rng.uniform(0, 0.9)), vis, np.zeros((t, 1000)), ucs)
        truth[vid] = LabelledVideo(vid, seconds.astype(str), events)
    return scores, truth


def plain_evaluate(scores, truth, vocab, classes, threshold, tiou=0.5, group_thresholds=None, max_gap=0
                   ) -> ZeroShotScore:
    """One threshold, the agreement recomputed per video, dips bridged on the (T, G) table, events by
    ``runs_to_events``: the path before the sweep."""
    label_of = np.array([classes.get(g) or f"other:{g}" for g in vocab.names])
    thr = np.array([(group_thresholds or {}).get(g, threshold) for g in vocab.names])
    right = total = found = matched = n_true = 0
    per_class: dict[str, list[int]] = {}
    for vid, lab in truth.items():
        av = video_agreement(scores[vid], vocab)
        t = min(len(av), len(lab.seconds))
        active = bridge_gaps(av[:t] >= thr, max_gap)
        best = np.where(active, av[:t], -1.0).argmax(1)
        pred = np.where(active.any(1), label_of[best], "")
        right += int((pred == lab.seconds[:t]).sum())
        total += len(lab.seconds)
        ev = runs_to_events(active, av[:t], 1.0, list(label_of), "av", scores[vid].duration)
        mine = list(zip(ev.label.tolist(), ev.start.tolist(), ev.end.tolist(), ev.score.tolist()))
        taken = _match(mine, lab.events, tiou)
        found += len(mine)
        matched += int(taken.sum())
        n_true += len(lab.events)
        for (c, _, _), hit in zip(lab.events, taken):
            row = per_class.setdefault(c, [0, 0, 0])
            row[0] += 1
            row[1] += int(hit)
        for c in ev.label.tolist():
            per_class.setdefault(c, [0, 0, 0])[2] += 1
    for row in per_class.values():
        row[2] -= row[1]
    p = matched / found if found else 0.0
    r = matched / n_true if n_true else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return ZeroShotScore(float(threshold), right / max(total, 1), p, r, f1, found, matched, n_true,
                         dict(sorted(per_class.items())), max_gap)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_tuning_sweep_reports_what_each_threshold_scored_alone_reports(seed):
    scores, truth = made_up_cache(seed)
    scores, truth = with_wrong_sound_copies(scores, truth)
    vocab = load_vocabulary("ucs")
    classes = {g: CLASSES.get(g, "") for g in vocab.names}
    best, rows = choose_threshold(scores, truth, vocab, classes)
    plain = [plain_evaluate(scores, truth, vocab, classes, float(x), max_gap=g) for g in GAPS for x in GRID]
    assert rows == plain  # every field, floats bit for bit, and every per-class count
    assert best == max(plain, key=lambda s: (round(s.f1, 12), -s.max_gap, s.threshold))
    assert len({r.found for r in rows if r.max_gap == 3} - {r.found for r in rows if r.max_gap == 0})  # bridging
    assert len({(r.found, r.matched) for r in rows}) > 5 and any(r.per_class for r in rows)  # the sweep moves
    over = {"dog": 0.61, "clock": 0.05}
    assert evaluate_zero_shot(scores, truth, vocab, classes, 0.3, group_thresholds=over) == plain_evaluate(
        scores, truth, vocab, classes, 0.3, group_thresholds=over)


@pytest.mark.parametrize("name", ["ucs", "soundnet_ext"])
def test_the_clips_budget_curve_counts_what_detect_finds_at_each_threshold(name):
    scores, truth = made_up_cache(2, n=10)
    for v in scores.values():  # the SoundNet vocabularies read the soundnet table: give it the UCS-planted runs
        v.soundnet = v.visual[:, ::-1].copy()
    names = list(load_vocabulary(name).names)
    spec = {v: {"expected": names[i % 5: i % 5 + 2], "present": names[i % 3: i % 3 + 1]} for i, v in enumerate(scores)}
    points = budget_points(scores, spec, name)
    plain = []
    for thr in GRID:
        cfg = ZeroShotConfig(name, float(thr), TRACK_THRESHOLD)
        hits = falses = 0
        for clip, e in spec.items():
            found = list(dict.fromkeys(detect(scores[clip], load_vocabulary(name), cfg).events.of_track("av").label))
            hit, false, _ = clip_verdict(found, e["expected"], e["present"])
            hits, falses = hits + len(hit), falses + len(false)
        plain.append((hits, falses))
    assert points.tolist() == [list(p) for p in plain]
    assert len(set(plain)) > 3  # the thresholds matter on these clips
