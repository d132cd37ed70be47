"""``avvp``: the official audio-visual video parsing F-scores of a model on one split of the ``llp`` dataset.

Segment-level and event-level F-scores of audio, visual and audio-visual events, Type@AV and Event@AV
(:mod:`avloc.evaluation.avvp_metrics`), in [0, 1], from the official decisions at the official thresholds
(segment and video probabilities >= 0.5). Model selection uses the segment-level Type@AV, as the official
training does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from avloc.data.base import InMemoryDataset
from avloc.evaluation.avvp_metrics import avvp_f_scores, binarize
from avloc.evaluation.base import Evaluator
from avloc.formats.atomic import write_text_atomic
from avloc.models.base import AVModel
from avloc.models.outputs import AVVPOutput
from avloc.registry import EVALUATORS

PREDICTIONS_FILE = "predictions_test.json"


@torch.inference_mode()
def predict_avvp(model: AVModel, data: InMemoryDataset, split: str, device: torch.device,
                 batch_size: int) -> dict[str, torch.Tensor]:
    """Segment probabilities (N, T, 2, C), video probabilities (N, C) and the truths (N, T, C) of a split."""
    was_training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("segment_prob", "video_prob", "audio", "visual")}
    for batch in data.batches(data.splits[split].split(batch_size)):
        out = model({k: v.to(device) for k, v in batch.items()})
        if not isinstance(out, AVVPOutput):
            raise TypeError(f"avvp evaluator needs an AVVP model; {type(model).__name__} returns {type(out).__name__}")
        parts["segment_prob"].append(out.segment_prob.float().cpu())
        parts["video_prob"].append(out.video_prob.float().cpu())
        parts["audio"].append(batch["audio_labels"].clone())
        parts["visual"].append(batch["visual_labels"].clone())
    model.train(was_training)
    return {k: torch.cat(v) for k, v in parts.items()}


@EVALUATORS.register("avvp")
class AVVPEvaluator(Evaluator):
    """Mean per-clip F-scores ``seg_*`` and ``evt_*`` (audio, visual, av, type, event); primary ``seg_type``."""

    primary = "seg_type"

    @dataclass
    class Config:
        audio_threshold: float = 0.5  # segment is audible for a class at P_audio >= this (official 0.5)
        visual_threshold: float = 0.5  # segment is visible for a class at P_visual >= this (official 0.5)
        video_threshold: float = 0.5  # the class must also be predicted for the clip (official 0.5)

    def decisions(self, pred: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        return binarize(pred["segment_prob"], pred["video_prob"], c.audio_threshold, c.visual_threshold,
                        c.video_threshold)

    def __call__(self, model: AVModel, data: InMemoryDataset, split: str, device: torch.device,
                 batch_size: int) -> dict[str, float]:
        pred = predict_avvp(model, data, split, device, batch_size)
        audio, visual = self.decisions(pred)
        scores = avvp_f_scores(audio, visual, pred["audio"], pred["visual"])
        return {k: float(v.double().mean()) if len(v) else 0.0 for k, v in scores.items()}

    def finalize(self, model: AVModel, data: InMemoryDataset, run_dir: Path, device: torch.device,
                 batch_size: int) -> dict[str, Any]:
        """Write the test clips' predicted audio and visual events: ``[class, onset s, offset s]`` runs."""
        pred = predict_avvp(model, data, "test", device, batch_size)
        names = getattr(data, "class_names", [str(i) for i in range(pred["video_prob"].shape[-1])])
        ids = getattr(data, "video_ids", None)
        audio, visual = self.decisions(pred)  # (N, T, C) each
        clips = {ids[i] if ids is not None else str(i): {"audio": _runs(audio[row], names),
                                                         "visual": _runs(visual[row], names)}
                 for row, i in enumerate(data.splits["test"].tolist())}
        write_text_atomic(run_dir / PREDICTIONS_FILE, json.dumps({"classes": names, "clips": clips}) + "\n")
        return {"predictions": PREDICTIONS_FILE}


def _runs(x: torch.Tensor, names: list[str]) -> list[list[Any]]:
    """(T, C) bool -> [[class name, onset, offset], ...] of every run of positive segments."""
    padded = torch.nn.functional.pad(x.T.to(torch.int8), (1, 1))  # (C, T + 2)
    edges = padded[:, 1:] - padded[:, :-1]  # (C, T + 1): +1 at an onset, -1 at an offset
    on, off = (edges == 1).nonzero(), (edges == -1).nonzero()  # both sorted by class, then time
    return [[names[int(c)], int(a), int(b)] for (c, a), (_, b) in zip(on.tolist(), off.tolist())]
