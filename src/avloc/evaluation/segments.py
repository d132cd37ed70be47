"""AVE segment accuracy: the fraction of all (video, second) segments whose class is predicted right.

Standard across AVEL, PSP, CMBS and VSCG: 29 classes (28 events + background), every segment of every
video of the split counts once (402 x 10 = 4,020 test segments on AVE).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from avloc.data.base import InMemoryDataset
from avloc.evaluation.base import Evaluator
from avloc.models.base import AVModel
from avloc.registry import EVALUATORS


@torch.inference_mode()  # like no_grad, and skips autograd's view and version bookkeeping (~3% here)
def predict_segments(model: AVModel, data: InMemoryDataset, split: str, device: torch.device,
                     batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T) predicted and true segment classes of a split, computed in batches in eval mode."""
    was_training = model.training
    model.eval()
    idx = data.splits[split]
    preds, trues = [], []
    for batch in data.batches(idx.split(batch_size)):  # a batch lives until the next: clone what is kept
        out = model({k: v.to(device) for k, v in batch.items()})
        preds.append(model.segment_predictions(out).cpu().clone())
        trues.append(batch["segment_labels"].clone())
    model.train(was_training)
    return torch.cat(preds), torch.cat(trues)


def segment_accuracy(pred: torch.Tensor, true: torch.Tensor) -> float:
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape {tuple(true.shape)}")
    return (pred == true).float().mean().item()


@EVALUATORS.register("ave_accuracy")
class AVEAccuracy(Evaluator):
    """Segment accuracy (primary ``acc``) plus accuracy on event and on background segments."""

    @dataclass
    class Config:
        background: int = -1  # class index of background; -1 = the data's last class (AVE: 28)

    primary = "acc"

    def __call__(self, model: AVModel, data: InMemoryDataset, split: str, device: torch.device,
                 batch_size: int) -> dict[str, float]:
        pred, true = predict_segments(model, data, split, device, batch_size)
        names = getattr(data, "class_names", None)
        background = self.cfg.background if self.cfg.background >= 0 else (len(names) - 1 if names else 28)
        bg = true == background
        out = {"acc": segment_accuracy(pred, true)}
        if bg.any():
            out["bg_acc"] = (pred[bg] == true[bg]).float().mean().item()
        if (~bg).any():
            out["event_acc"] = (pred[~bg] == true[~bg]).float().mean().item()
        return out

    def finalize(self, model: AVModel, data: InMemoryDataset, run_dir: Path, device: torch.device,
                 batch_size: int) -> dict[str, Any]:
        """Write the per-video test predictions (class index per second) for plots and error analysis."""
        pred, true = predict_segments(model, data, "test", device, batch_size)
        ids = getattr(data, "video_ids", None)
        idx = data.splits["test"].tolist()
        rows = {
            (ids[i] if ids is not None and i < len(ids) else str(i)) + f"#{i}": {
                "pred": p, "true": t}
            for i, p, t in zip(idx, pred.tolist(), true.tolist())
        }
        path = run_dir / "predictions_test.json"
        path.write_text(json.dumps({"classes": getattr(data, "class_names", None), "videos": rows}))
        return {"predictions": path.name}
