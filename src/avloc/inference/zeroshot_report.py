"""``avloc zeroshot tune|eval|clips`` as library calls: thresholds file, split tables, per-clip table.

Everything reads a score cache (``zeroshot_scores.cache_scores``), so a sweep over thresholds and
vocabularies costs seconds. The thresholds file records the split and the command that chose it; ``tune``
refuses a split named ``test``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avloc.inference.zeroshot_eval import (GRID, ZeroShotScore, choose_threshold, composed_truth,
                                             evaluate_zero_shot, group_classes, mismatched_sound, video_agreement,
                                             with_wrong_sound_copies)
from avloc.formats.atomic import write_text_atomic
from avloc.inference.events import Events
from avloc.inference.sound_vocab import load_vocabulary
from avloc.inference.zeroshot import ZeroShotConfig, detect
from avloc.inference.zeroshot_scores import SecondScores, load_scores
from avloc.media.compose.sources import check_composition

TRACK_THRESHOLD = 0.25  # audio-only / visual-only tracks: not chosen on data (they never make an AV event)


def tune_thresholds(cache: str | Path, data_dir: str | Path, split: str, vocabs: list[str], class_map: str | Path,
                    command: str = "", wrong_sound: bool = False) -> dict:
    """Per vocabulary, the agreement threshold of best event F1 on ``split`` of ``data_dir`` (never test);
    ``wrong_sound``: the split plus a wrong-sound copy of each video (``with_wrong_sound_copies``)."""
    if split == "test":
        raise ValueError("thresholds are chosen on a validation split, never on 'test'")
    check_composition(data_dir, class_map)  # before the cache is read: the cheap refusal first
    scores, truth = load_scores(cache), composed_truth(data_dir, split)
    n = len(truth)
    if wrong_sound:
        scores, truth = with_wrong_sound_copies(scores, truth)
    copies = f" plus their {n} wrong-sound copies" if wrong_sound else ""
    out: dict = {"chosen_on": f"{Path(data_dir).name} split '{split}' ({n} composed real-media videos{copies})",
                 "objective": "event F1 (same class, tIoU >= 0.5, one-to-one) over threshold x max_gap; ties: "
                              "shorter max_gap, then higher threshold",
                 "command": command, "vocabularies": {}}
    for name in vocabs:
        vocab = load_vocabulary(name)
        best, _ = choose_threshold(scores, truth, vocab, group_classes(vocab, class_map))
        out["vocabularies"][name] = {"av_threshold": best.threshold, "track_threshold": TRACK_THRESHOLD,
                                     "max_gap": best.max_gap, "val": best.as_dict()}
    return out


def write_thresholds(table: dict, path: str | Path) -> Path:
    path = Path(path)
    write_text_atomic(path, json.dumps(table, indent=1) + "\n")
    return path


def split_scores(cache: str | Path, data_dir: str | Path, split: str, vocabs: list[str], class_map: str | Path,
                 thresholds: str | Path | None = None, mismatch: bool = False) -> dict[str, ZeroShotScore]:
    """Each vocabulary scored on ``split`` at its thresholds (the file's, else the shipped ones); ``mismatch``:
    every video with the sound of a video of another class (``mismatched_sound``)."""
    check_composition(data_dir, class_map)  # before the cache is read: the cheap refusal first
    scores, truth = load_scores(cache), composed_truth(data_dir, split)
    if mismatch:
        scores = mismatched_sound(scores, truth)
    out = {}
    for name in vocabs:
        cfg = (ZeroShotConfig.from_file(thresholds, name) if thresholds else ZeroShotConfig(name)).resolved()
        vocab = load_vocabulary(name)
        out[name] = evaluate_zero_shot(scores, truth, vocab, group_classes(vocab, class_map), cfg.av_threshold,
                                       group_thresholds=cfg.group_thresholds, max_gap=cfg.max_gap)
    return out


def split_table(rows: dict[str, ZeroShotScore]) -> str:
    """Markdown: one row per vocabulary."""
    lines = ["| sound vocabulary | threshold | max gap | per-second acc. | events found | matched | false | "
             "precision | recall | F1 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in rows.items():
        lines.append(f"| {name} | {s.threshold:.2f} | {s.max_gap} | {100 * s.per_second_acc:.1f} | {s.found} | "
                     f"{s.matched} | {s.false_events} | {100 * s.precision:.1f} | {100 * s.recall:.1f} | "
                     f"{100 * s.f1:.1f} |")
    return "\n".join(lines)


def class_table(rows: dict[str, ZeroShotScore]) -> str:
    """Markdown: per class (and per group of no class), matched / true events and false events by vocabulary."""
    classes = sorted({c for s in rows.values() for c in s.per_class}, key=lambda c: (c.startswith("other:"), c))
    lines = ["| class | " + " | ".join(f"{v}: matched / true, false" for v in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for c in classes:
        cells = [s.per_class.get(c, [0, 0, 0]) for s in rows.values()]
        lines.append(f"| {c} | " + " | ".join(f"{m} / {t}, {f}" for t, m, f in cells) + " |")
    return "\n".join(lines)


def clip_verdict(found: list[str], expected: list[str], present: list[str]) -> tuple[list[str], list[str], str]:
    """Expected groups found, false groups (neither expected nor present), and right / partly / wrong."""
    hit = [g for g in expected if g in found]
    false = [g for g in found if g not in expected and g not in present]
    return hit, false, "right" if len(hit) == len(expected) and not false else ("partly" if hit else "wrong")


def _found(scores: SecondScores, name: str, cfg: ZeroShotConfig) -> tuple[Events, list[str]]:
    """The audio-visual events of one clip and their groups, in order of first appearance."""
    ev = detect(scores, load_vocabulary(name), cfg).events.of_track("av")
    return ev, list(dict.fromkeys(ev.label.tolist()))


def clips_table(cache: str | Path, expect: str | Path, vocabs: list[str], thresholds: str | Path | None = None
                ) -> tuple[str, dict[str, dict[str, int]]]:
    """Per natural clip: what it holds, and per vocabulary the audio-visual events found and the verdict.

    ``expect`` (JSON) gives per clip ``expected`` (event groups heard and seen per its labels) and ``present``
    (sources also heard and seen but not labelled: found, they are not false). A found group outside both is
    a false event (counted once per clip and group). Verdict: right (every expected group found, nothing
    false), partly (some expected found), wrong."""
    scores = load_scores(cache)
    spec = json.loads(Path(expect).read_text())["clips"]
    missing = [c for c in spec if c not in scores]
    if missing:
        raise ValueError(f"{expect}: clip '{missing[0]}' is not in the cache {cache}")
    totals = {v: {"expected": 0, "found_expected": 0, "false": 0, "right": 0} for v in vocabs}
    lines = ["| clip | labels | expected AV groups | " + " | ".join(vocabs) + " |", "|" + "---|" * (3 + len(vocabs))]
    for clip, e in spec.items():
        cells = []
        for name in vocabs:
            cfg = ZeroShotConfig.from_file(thresholds, name) if thresholds else ZeroShotConfig(name)
            ev, found = _found(scores[clip], name, cfg)
            hit, false, verdict = clip_verdict(found, e["expected"], e.get("present", []))
            t = totals[name]
            t["expected"] += len(e["expected"])
            t["found_expected"] += len(hit)
            t["false"] += len(false)
            t["right"] += verdict == "right"
            spans = ", ".join(f"{lab} {s:.0f}-{x:.0f}" for lab, s, x in zip(ev.label, ev.start, ev.end)) or "none"
            cells.append(f"{spans}: **{verdict}**")
        lines.append(f"| {clip} | {e['labels']} | {', '.join(e['expected']) or 'none'} | " + " | ".join(cells) + " |")
    lines.append("| **total** | | | " + " | ".join(
        f"{t['found_expected']}/{t['expected']} expected found, {t['false']} false, {t['right']} right"
        for t in totals.values()) + " |")
    return "\n".join(lines), totals


def budget_points(scores: dict[str, SecondScores], spec: dict[str, dict], name: str, grid: np.ndarray = GRID
                  ) -> np.ndarray:
    """(K, 2) expected groups found and false groups over the clips of ``spec`` (``clips_table``'s counting) at
    each shared agreement threshold of ``grid``; each clip's agreement is computed once for the whole grid."""
    vocab = load_vocabulary(name)
    names = list(vocab.names)
    thr = np.asarray(grid, np.float64)[:, None, None]  # (K, 1, 1)
    points = np.zeros((len(thr), 2), np.int64)
    for clip, e in spec.items():
        found = (video_agreement(scores[clip], vocab)[None] >= thr).any(1)  # (K, G): groups with an AV event
        expected = [names.index(g) for g in e["expected"] if g in names]
        allowed = np.isin(names, [*e["expected"], *e.get("present", [])])  # (G,) found, not false
        points[:, 0] += found[:, expected].sum(1)
        points[:, 1] += (found & ~allowed).sum(1)
    return points


def clips_curve(cache: str | Path, expect: str | Path, vocabs: list[str], budgets: tuple[int, ...] = (0, 2, 4, 6, 10, 16)
                ) -> str:
    """Markdown: per vocabulary, the most expected groups found over the threshold grid with at most k false
    ones, for each budget k. A description of the whole trade-off (nothing is chosen on the clips)."""
    scores = load_scores(cache)
    spec = json.loads(Path(expect).read_text())["clips"]
    lines = ["| sound vocabulary | " + " | ".join(f"<= {k} false" for k in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for name in vocabs:
        points = budget_points(scores, spec, name)
        best = [max([h for h, f in points.tolist() if f <= k], default=0) for k in budgets]
        total = sum(len(e["expected"]) for e in spec.values())
        lines.append(f"| {name} | " + " | ".join(f"{b}/{total}" for b in best) + " |")
    return "\n".join(lines)
