"""Where a dense (W-DAVEL) model gains or loses, epoch by epoch: classification vs localisation.

Trains a config one epoch at a time (``fit(..., resume=True, stop_after=1)``: the same numbers as one
uninterrupted run) and after every epoch scores val and test three ways with the run's own post-processing:
``det``, the detection avg mAP; ``video``, the video-level class mAP of its sigmoid video scores (which
classes a video holds); ``oracle``, the detection avg mAP when the true video labels replace its video
scores (where in time a present class is: localisation alone).

    python scripts/dense_epoch_diag.py configs/unav/mil.yaml SYN RUN_DIR [key=value ...]
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from avloc.config import load_config
from avloc.engine.build import build_model, load_data
from avloc.engine.checkpoint import load_safe
from avloc.engine.loop import fit
from avloc.evaluation.dense_map import Scores, predict_scores, segments_from_scores
from avloc.evaluation.detection import evaluate_detection
from avloc.evaluation.proposals import ProposalConfig


def video_map(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean over classes with a positive of the average precision of ``scores`` (N, C) against ``labels``."""
    aps = []
    for c in np.flatnonzero(labels.sum(axis=0)):
        order = np.argsort(-scores[:, c], kind="stable")
        hits = labels[order, c]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float((precision * hits).sum() / hits.sum()))
    return 100 * float(np.mean(aps))


def split_scores(model: torch.nn.Module, data, split: str, pp: ProposalConfig) -> dict[str, float]:
    scores: Scores = predict_scores(model, data, split, torch.device("cpu"), 128)
    ids = np.concatenate([ids for ids, _, _ in scores])
    labels = data.batch(torch.as_tensor(ids))["video_labels"].numpy()  # (N, C)
    truth = dict(zip(ids.tolist(), labels))
    oracle = [(ids, cas, np.stack([truth[i] for i in ids.tolist()])) for ids, cas, _ in scores]
    gt = data.ground_truth(split)
    return {"det": 100 * evaluate_detection(gt, segments_from_scores(scores, data, pp), "unav").average_map,
            "video": video_map(labels, np.concatenate([v for _, _, v in scores])),
            "oracle": 100 * evaluate_detection(gt, segments_from_scores(oracle, data, pp), "unav").average_map}


def main() -> None:
    config, data_root, out, *overrides = sys.argv[1:]
    torch.set_num_threads(1)
    cfg = load_config(config, overrides)
    cfg.train.progress = False
    data = load_data(cfg, data_root)
    pp = ProposalConfig(**{f.name: getattr(cfg.eval, f.name) for f in dataclasses.fields(ProposalConfig)})
    print("| epoch | val det | val video | val oracle | test det | test video | test oracle |")
    print("|---|---|---|---|---|---|---|")
    for epoch in range(cfg.train.epochs):
        fit(cfg, data_root, Path(out), resume=epoch > 0, stop_after=1, data=data, log=lambda *a: None,
            overwrite=epoch == 0)
        model = build_model(cfg, data)
        model.load_state_dict(load_safe(Path(out) / "last.pt")["model"])
        cells = [f"{s[k]:.2f}" for s in (split_scores(model, data, sp, pp) for sp in ("val", "test"))
                 for k in ("det", "video", "oracle")]
        print(f"| {epoch + 1} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
