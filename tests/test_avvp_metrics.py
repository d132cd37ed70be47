"""The AVVP F-scores against hand-computed cases, the official evaluation's edge cases, and a plain loop
written from the definition (per clip, per class, per event)."""

from __future__ import annotations

import pytest
import torch

from avloc.evaluation.avvp_metrics import avvp_f_scores, binarize, event_counts, event_runs

T, C = 10, 25


def clip(**runs: list[tuple[int, int, int]]) -> dict[str, torch.Tensor]:
    """One clip's (1, T, C) maps from ``name=[(class, onset, offset), ...]``."""
    out = {}
    for name, events in runs.items():
        x = torch.zeros(1, T, C, dtype=torch.bool)
        for c, a, b in events:
            x[0, a:b, c] = True
        out[name] = x
    return out


def scores(pa, pv, ga, gv) -> dict[str, float]:
    return {k: float(v[0]) for k, v in avvp_f_scores(pa, pv, ga, gv).items()}


def test_hand_computed_clip():
    m = clip(pa=[(0, 0, 5)], ga=[(0, 2, 7), (1, 8, 10)], pv=[(0, 0, 10)], gv=[(0, 0, 10)])
    s = scores(m["pa"], m["pv"], m["ga"], m["gv"])
    # segments, audio: class 0 TP 3 FP 2 FN 2 -> 6/10; class 1 FN 2 -> 0; mean 0.3. visual: 1. AV: 0-4 vs 2-6 -> 0.6
    assert s["seg_audio"] == pytest.approx(0.3)
    assert s["seg_visual"] == pytest.approx(1.0)
    assert s["seg_av"] == pytest.approx(0.6)
    assert s["seg_type"] == pytest.approx((0.3 + 1.0 + 0.6) / 3)
    assert s["seg_event"] == pytest.approx((26 / 30 + 0.0) / 2)  # class 0: TP 13, FP 2, FN 2; class 1: 0
    # events, audio: [0,5) vs [2,7): 3 < 0.5 * 7 -> FP + FN; class 1 FN. visual: exact match. AV: like audio
    assert s["evt_audio"] == pytest.approx(0.0)
    assert s["evt_visual"] == pytest.approx(1.0)
    assert s["evt_av"] == pytest.approx(0.0)
    assert s["evt_type"] == pytest.approx(1 / 3)
    assert s["evt_event"] == pytest.approx((2 / 4 + 0.0) / 2)  # class 0: TP 1, FP 1, FN 1; class 1: FN 1


def test_no_prediction_and_no_truth_is_all_true_negatives():
    m = clip(p=[], g=[])
    assert all(v == 1.0 for v in scores(m["p"], m["p"], m["g"], m["g"]).values())


def test_empty_predictions_score_zero_where_there_is_truth():
    m = clip(p=[], ga=[(3, 0, 10)], gv=[])
    s = scores(m["p"], m["p"], m["ga"], m["gv"])
    assert s["seg_audio"] == 0.0 and s["evt_audio"] == 0.0
    assert s["seg_visual"] == 1.0 and s["evt_visual"] == 1.0  # nothing seen, nothing predicted
    assert s["seg_av"] == 1.0  # no AV truth (audio only), no AV prediction
    assert s["seg_event"] == 0.0


def test_events_touching_the_clip_ends_and_the_half_iou_tie():
    # runs at the first and the last segment (the official extractor's end-of-clip branches), a 10 s run
    m = clip(p=[(0, 0, 1), (0, 9, 10), (1, 0, 10), (2, 0, 2)], g=[(0, 0, 1), (0, 9, 10), (1, 0, 10), (2, 0, 4)])
    tp, fp, fn = event_counts(m["p"], m["g"])
    assert tp[0, :3].tolist() == [2, 1, 1]  # [0, 2) vs [0, 4): intersection 2 = 0.5 * union 4 counts
    assert fp[0].sum() == 0 and fn[0].sum() == 0


def test_matching_is_any_overlap_not_one_to_one():
    m = clip(p=[(0, 0, 3), (0, 4, 5)], g=[(0, 0, 6)])
    tp, fp, fn = event_counts(m["p"], m["g"])
    assert (tp[0, 0], fp[0, 0], fn[0, 0]) == (1, 1, 0)  # [0,3) matches (3 >= 3), [4,5) does not; truth found
    assert scores(m["p"], m["p"], m["g"], m["g"])["evt_audio"] == pytest.approx(2 / 3)


def test_event_runs_number_the_runs():
    x = torch.tensor([[1, 1, 0, 1, 0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    runs = event_runs(x)[0].long()  # (T, K)
    assert runs.shape == (10, 5)
    assert runs.argmax(1)[x[0]].tolist() == [0, 0, 1, 2, 2, 2, 2] and runs.sum().item() == 7
    assert runs.sum(0).tolist() == [2, 1, 4, 0, 0]


def test_binarize_needs_the_video_label_and_includes_the_threshold():
    seg = torch.zeros(1, T, 2, 2)
    seg[0, :, 0, 0] = 0.9  # class 0 audible everywhere, but the video says no
    seg[0, :, 1, 1] = 0.5  # class 1 visible at exactly the threshold, the video says yes
    a, v = binarize(seg, torch.tensor([[0.4, 0.5]]))
    assert not a.any() and v[0, :, 1].all() and not v[0, :, 0].any()


def _reference_f(pred: torch.Tensor, gt: torch.Tensor, level: str) -> list[list[tuple[int, int, int]]]:
    """Per clip and class (TP, FP, FN), looping over segments and events as the definition reads."""
    def runs(seq):
        out, start = [], None
        for i, on in enumerate(seq.tolist() + [False]):
            if on and start is None:
                start = i
            if not on and start is not None:
                out.append(set(range(start, i)))
                start = None
        return out

    rows = []
    for n in range(pred.shape[0]):
        row = []
        for c in range(pred.shape[2]):
            p, g = pred[n, :, c], gt[n, :, c]
            if level == "seg":
                row.append((int((p & g).sum()), int((p & ~g).sum()), int((~p & g).sum())))
                continue
            rp, rg = runs(p), runs(g)
            hit = [[len(a & b) >= 0.5 * len(a | b) for b in rg] for a in rp]
            tp = sum(any(h) for h in hit)
            found = sum(any(hit[i][j] for i in range(len(rp))) for j in range(len(rg)))
            row.append((tp, len(rp) - tp, len(rg) - found))
        rows.append(row)
    return rows


def _mean_f(counts: list[tuple[int, int, int]]) -> float:
    fs = [2 * tp / (2 * tp + fp + fn) for tp, fp, fn in counts if tp + fp or tp + fn]
    return sum(fs) / len(fs) if fs else 1.0


def test_against_a_plain_loop_on_random_clips():
    g = torch.Generator().manual_seed(0)
    n, c = 40, 6
    pa, pv, ga, gv = (torch.rand(n, T, c, generator=g) < 0.35 for _ in range(4))
    got = avvp_f_scores(pa, pv, ga, gv)
    for level in ("seg", "evt"):
        ca, cv = _reference_f(pa, ga, level), _reference_f(pv, gv, level)
        cav = _reference_f(pa & pv, ga & gv, level)
        for i in range(n):
            fa, fv, fav = _mean_f(ca[i]), _mean_f(cv[i]), _mean_f(cav[i])
            both = [tuple(x + y for x, y in zip(a, b)) for a, b in zip(ca[i], cv[i])]
            assert float(got[f"{level}_audio"][i]) == pytest.approx(fa)
            assert float(got[f"{level}_visual"][i]) == pytest.approx(fv)
            assert float(got[f"{level}_av"][i]) == pytest.approx(fav)
            assert float(got[f"{level}_type"][i]) == pytest.approx((fa + fv + fav) / 3)
            assert float(got[f"{level}_event"][i]) == pytest.approx(_mean_f(both))
