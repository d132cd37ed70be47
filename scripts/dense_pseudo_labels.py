"""How good are CLASP's per-step pseudo-labels? Scores them against the truth of a `synth unav` data set.

For a trained CLASP run folder, the val-selected checkpoint runs over one split; its anchors are then chosen
again from the same audio / visual logits with each salience below (same CSAI / ATP thresholds as the run),
and for the labelled classes of every video this prints: the share of positives inside a true event of
their class, the share of true event steps labelled positive, the share of positives on one of the
generator's single-modality distractors (``synth_meta.json``), and the share of background steps that lie
inside a true event. Why: it separates what an anchor rule labels from what training makes of it.

    python scripts/dense_pseudo_labels.py --data SYN --run RUN [--split train] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from avloc.config import load_config
from avloc.engine.build import build_model, load_data
from avloc.engine.checkpoint import load_safe
from avloc.models import clasp as C

Salience = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def disagreement_weighted(logits_a: torch.Tensor, logits_v: torch.Tensor) -> torch.Tensor:
    """The second version's MEAE: sqrt(p_a p_v) (1 - |p_a - p_v|). (B,T,C) x2 -> (B,T,C)."""
    gap = (torch.sigmoid(logits_a) - torch.sigmoid(logits_v)).abs()
    return C.meae_agreement(logits_a, logits_v) * (1 - gap)


SALIENCES: dict[str, Salience] = {
    "m (1 - \\|p_a - p_v\\|)": disagreement_weighted,
    "sqrt(p_a p_v) (MEAE)": C.meae_agreement,
    "confidence (p_a + p_v) / 2": C.confidence_salience,
}


def step_truth(data, split_ids: np.ndarray, times: np.ndarray, classes: int, segments) -> torch.Tensor:
    """(B, T, C) bool: step t of video b lies inside a segment (video, start, end, label) of class c."""
    b, t = times.shape
    truth = np.zeros((b, t, classes), dtype=bool)
    row = {int(v): i for i, v in enumerate(split_ids)}
    for v, s, e, c in segments:
        i = row.get(int(v))
        if i is not None:
            truth[i, :, int(c)] |= (times[i] >= s) & (times[i] <= e)
    return torch.from_numpy(truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    meta = json.loads((args.data / "synth_meta.json").read_text())["videos"]
    cfg = load_config(args.run / "config.yaml", overrides=args.overrides)
    data = load_data(cfg, args.data)
    model = build_model(cfg, data)
    model.load_state_dict(load_safe(args.run / "best.pt")["model"])
    model.eval()
    gt = data.ground_truth(args.split)
    events = list(zip(gt.video, gt.start, gt.end, gt.label))
    distractors = [(i, *d["segment"], d["class"]) for i, vid in enumerate(data.video_ids)
                   for d in meta[vid]["distractors"]]
    rules = {name: (fn, fn) for name, fn in SALIENCES.items()}
    rules["shipped: global by MEAE, local / spreading / background by confidence"] = (
        C.meae_agreement, C.confidence_salience)
    counts = {name: np.zeros(6) for name in rules}
    with torch.no_grad():
        for chunk in data.splits[args.split].split(128):
            batch = data.batch(chunk)
            out = model(batch)
            mask = batch["mask"]
            ids = chunk.numpy()
            times = data.offset_sec[ids][:, None] + np.arange(mask.shape[1])[None] * data.step_sec[ids][:, None]
            classes = out.audio_logits.shape[-1]
            truth = step_truth(data, ids, times, classes, events)
            fake = step_truth(data, ids, times, classes, distractors) & ~truth
            labelled = batch["video_labels"].bool().unsqueeze(1) & mask.unsqueeze(-1)  # (B, T, C)
            for name, (fn_global, fn_local) in rules.items():
                sal_g = fn_global(out.audio_logits, out.visual_logits) * mask.unsqueeze(-1)
                sal_l = fn_local(out.audio_logits, out.visual_logits) * mask.unsqueeze(-1)
                pos, neg = C.pseudo_labels(sal_l, sal_g, mask, model.cfg, batch["video_labels"].bool())
                pos, neg = pos & labelled, neg & labelled
                counts[name] += [int((pos & truth).sum()), int(pos.sum()), int((truth & labelled).sum()),
                                 int((pos & fake).sum()), int((neg & truth).sum()), int(neg.sum())]
    print(f"{args.run} ({args.split}, {len(data.splits[args.split])} videos)")
    print("| anchors chosen by | positives inside a true event | true event steps labelled positive | "
          "positives on a distractor | background steps inside a true event |")
    print("|---|---|---|---|---|")
    for name, (hit, pos, true, fake, neg_true, neg) in counts.items():
        print(f"| {name} | {hit / max(pos, 1):.3f} | {hit / max(true, 1):.3f} | {fake / max(pos, 1):.3f} "
              f"| {neg_true / max(neg, 1):.3f} |")


if __name__ == "__main__":
    main()
