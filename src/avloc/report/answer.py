"""What the report says before anything else: the audio-visual events found, or in words why there are none;
what the number on an event means; and the decision thresholds the timeline draws.

A zero-shot prediction has three tracks (heard AND seen, heard, seen); when the main track is empty the
other two say why ("dog seen, not heard"). A trained run has only the main track: no event means every
second was classified as background.
"""

from __future__ import annotations

from avloc.inference.prediction import VideoPrediction
from avloc.report.names import display_name

MAIN = "av"


def _labels(pred: VideoPrediction, track: str) -> list[str]:
    return list(dict.fromkeys(pred.events.of_track(track).label.tolist()))


def _names(labels: list[str]) -> str:
    names = [display_name(lab) for lab in labels]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def answer(pred: VideoPrediction) -> str:
    """One sentence: the audio-visual events, or why there are none."""
    main = pred.events.of_track(MAIN)
    if len(main):
        parts = [f"{display_name(lab)} {s:.1f}-{e:.1f} s"
                 for s, e, lab in zip(main.start.tolist(), main.end.tolist(), main.label.tolist())]
        return f"Audio-visual event{'s' if len(parts) > 1 else ''}: " + "; ".join(parts) + "."
    heard, seen = _labels(pred, "audio"), _labels(pred, "visual")
    if not any(t.name in ("audio", "visual") for t in pred.tracks):
        return "No audio-visual event: every second was classified as background."
    both = [lab for lab in seen if lab in heard]
    if both:
        return f"No audio-visual event: {_names(both)} heard and seen, but never in the same second."
    if seen and heard:
        return f"No audio-visual event: seen: {_names(seen)}; heard: {_names(heard)}; never the same thing."
    if seen:
        return f"No audio-visual event: {_names(seen)} seen, not heard."
    if heard:
        return f"No audio-visual event: {_names(heard)} heard, not seen."
    return "No audio-visual event: nothing was heard or seen above the thresholds."


def score_note(pred: VideoPrediction) -> str:
    """What the number on an event is, for the method that made it."""
    if pred.method == "zero-shot":
        thr = decision_thresholds(pred)
        av = sorted(set(thr.get(MAIN, {}).values()))
        alone = sorted(set(v for t in ("audio", "visual") for v in thr.get(t, {}).values()))
        return ("The number on an event is its mean score over its seconds, from 0 to 1. Audio-visual: "
                "sqrt(heard x seen), the geometric mean of the probabilities that the sound and the frames give "
                f"the class; a second counts from {' or '.join(f'{v:.2f}' for v in av)} (by class). Heard or "
                f"seen alone: that one probability, counted from {' or '.join(f'{v:.2f}' for v in alone)}. "
                "The dashed line on each score strip is its threshold.")
    return ("The number on an event is the model's mean confidence over its seconds (its probability for the "
            "class, from 0 to 1); a second belongs to the class the model scores highest, background included.")


def decision_thresholds(pred: VideoPrediction) -> dict[str, dict[str, float]]:
    """Per track and class, the score from which a step counts as an event; empty where the decision is not
    a threshold (a trained run: the highest-scoring class wins). A zero-shot prediction that does not carry
    its thresholds (one made by hand) is drawn with the shipped ones of the first vocabulary."""
    if pred.method != "zero-shot":
        return {}
    if pred.thresholds:
        return pred.thresholds
    from avloc.inference.zeroshot import ZeroShotConfig

    cfg = ZeroShotConfig().resolved()
    return {tr.name: {lab: cfg.av_threshold if tr.name == MAIN else cfg.track_threshold for lab in tr.labels}
            for tr in pred.tracks}
