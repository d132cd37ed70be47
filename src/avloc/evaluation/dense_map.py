"""``dense_map``: mAP at tIoU thresholds of a dense (W-DAVEL) model on one split of the ``unav`` dataset.

The model's per-timestep class probabilities ``cas`` (B, T, C) and video-level ``video_logits`` (B, C)
become scored segments through the WSTAL post-processing of :mod:`avloc.evaluation.proposals`
(multi-threshold binarisation, outer-inner contrast, per-class soft-NMS, top-N per video), and those are
scored with the ActivityNet / UnAV rules of :mod:`avloc.evaluation.detection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avloc.data.base import InMemoryDataset
from avloc.evaluation.base import Evaluator
from avloc.evaluation.detection import DetectionResult, evaluate_detection, format_table, resolve_tious
from avloc.evaluation.proposals import ProposalConfig, generate_proposals
from avloc.formats.activitynet import Segments, save_predictions
from avloc.models.base import AVModel
from avloc.registry import EVALUATORS

PREDICTIONS_FILE = "predictions_test.json"


def metric_name(tiou: float) -> str:
    """0.5 -> "mAP@0.5", 0.55 -> "mAP@0.55" (shortest exact decimal)."""
    return f"mAP@{round(float(tiou), 4):g}"


def _concat(parts: list[Segments]) -> Segments:
    if not parts:
        z = np.zeros(0)
        return Segments(np.zeros(0, dtype=np.int64), z, z, np.zeros(0, dtype=np.int64), z)
    return Segments(
        np.concatenate([p.video for p in parts]), np.concatenate([p.start for p in parts]),
        np.concatenate([p.end for p in parts]), np.concatenate([p.label for p in parts]),
        np.concatenate([p.score for p in parts]),  # type: ignore[misc]
    )


@torch.no_grad()
def predict_segments(model: AVModel, data: InMemoryDataset, split: str, device: torch.device, batch_size: int,
                     cfg: ProposalConfig) -> Segments:
    """Scored segments (video = dataset index, label = class index, seconds) of every video of ``split``.

    Reads from the data the per-video time grid: ``lengths`` (N,) valid steps, ``step_sec``/``offset_sec``
    (N,) (step i is centred at offset + i * step seconds) and ``durations`` (N,).
    """
    for attr in ("lengths", "step_sec", "offset_sec", "durations"):
        if not hasattr(data, attr):
            raise TypeError(f"dense_map needs a dense dataset with a time grid; {type(data).__name__} lacks '{attr}'")
    was_training = model.training
    model.eval()
    idx = data.splits[split]
    lengths = np.asarray(data.lengths)
    parts = []
    for chunk in idx.split(batch_size):
        batch = data.batch(chunk)
        out = model({k: v.to(device) for k, v in batch.items()})
        if "cas" not in out or "video_logits" not in out:
            raise KeyError(f"dense_map: model outputs {sorted(out)} lack 'cas' and/or 'video_logits'")
        ids = chunk.numpy()
        seg = generate_proposals(
            out["cas"].float().cpu(), torch.sigmoid(out["video_logits"].float()).cpu(), lengths[ids],
            data.step_sec[ids], data.offset_sec[ids], data.durations[ids], cfg,
        )
        seg.video = ids[seg.video]  # batch position -> dataset index
        parts.append(seg)
    model.train(was_training)
    return _concat(parts)


@EVALUATORS.register("dense_map")
class DenseMAP(Evaluator):
    """mAP@tIoU per threshold (``mAP@0.1`` ... ``mAP@0.9`` for the UnAV preset) and ``mAP_avg`` (primary)."""

    @dataclass
    class Config(ProposalConfig):
        tiou: str = "unav"  # tIoU thresholds: preset unav (0.1:0.1:0.9) | anet (0.5:0.05:0.95) | comma list

    primary = "mAP_avg"

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.tious = resolve_tious(cfg.tiou)

    def score(self, model: AVModel, data: InMemoryDataset, split: str, device: torch.device,
              batch_size: int) -> tuple[DetectionResult, Segments]:
        """Detection result and the predicted segments of ``split``."""
        pred = predict_segments(model, data, split, device, batch_size, self.cfg)
        return evaluate_detection(data.ground_truth(split), pred, self.tious), pred  # type: ignore[attr-defined]

    def __call__(self, model: AVModel, data: InMemoryDataset, split: str, device: torch.device,
                 batch_size: int) -> dict[str, float]:
        res, pred = self.score(model, data, split, device, batch_size)
        out = {metric_name(t): float(m) for t, m in zip(res.tious, res.mAP)}
        out["mAP_avg"] = float(res.average_map)
        out["num_predictions"] = float(len(pred))
        return out

    def finalize(self, model: AVModel, data: InMemoryDataset, run_dir: Path, device: torch.device,
                 batch_size: int) -> dict[str, Any]:
        """Write the test predictions (ActivityNet results format) and return the test mAP table."""
        res, pred = self.score(model, data, "test", device, batch_size)
        save_predictions(Path(run_dir) / PREDICTIONS_FILE, pred, video_ids=data.video_ids,  # type: ignore[attr-defined]
                         class_names=data.class_names)  # type: ignore[attr-defined]
        return {
            "predictions": PREDICTIONS_FILE,
            "mAP_table": {metric_name(t): float(m) for t, m in zip(res.tious, res.mAP)} | {"mAP_avg": res.average_map},
            "mAP_table_markdown": format_table(res),
        }
