"""How a trained model meets a video: the 10-s windows that cover any length, and the model's outputs read as
per-step labels, confidences or probabilities (the one adapter between the models' output types and predict)."""

from __future__ import annotations

import numpy as np
import torch

AVE_WINDOW = 10  # seconds per model window (AVE and LLP clips)


def clip_seconds(duration: float) -> int:
    """Seconds scored in a clip of ``duration`` s: a last partial second counts from half a second on."""
    return max(1, int(np.floor(duration + 0.5)))


def step_outputs(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The adapter between models and predict: ``labels`` (B, T) and ``confidence`` (B, T) for AVE models,
    ``cas`` (B, T, C) and ``video_probs`` (B, C) for dense ones, ``segment_prob`` (B, T, 2, C) (audio, visual)
    and ``video_prob`` (B, C) for AVVP ones (from an AVEOutput / DenseOutput / AVVPOutput)."""
    out = model(batch)
    if model.task == "dense":
        return {"cas": out.cas.float(), "video_probs": torch.sigmoid(out.video_logits.float())}
    if model.task == "avvp":
        return {"segment_prob": out.segment_prob.float(), "video_prob": out.video_prob.float()}
    labels = model.segment_predictions(out)  # (B, T), background = last class
    background = labels == model.cfg.num_classes - 1  # (B, T)
    if out.class_logits.dim() == 3:  # per-second class logits (AVEL, PSP)
        conf = torch.softmax(out.class_logits.float(), -1).gather(-1, labels[..., None]).squeeze(-1)  # (B, T)
    else:  # one video-level class; the per-second confidence is the event gate's
        gate = torch.sigmoid(out.event_logits.float()) if out.event_logits is not None else out.av_gate.float()
        conf = torch.where(background, 1 - gate, gate)  # (B, T)
    return {"labels": labels, "confidence": conf}

def ave_windows(seconds: int) -> tuple[np.ndarray, np.ndarray]:
    """Window starts (W,) and, per second (S,), the (window, position) it is read from: (S, 2)."""
    full = max(1, seconds // AVE_WINDOW)
    starts = list(range(0, full * AVE_WINDOW, AVE_WINDOW))
    sec = np.arange(seconds)
    win, pos = np.minimum(sec // AVE_WINDOW, full - 1), sec % AVE_WINDOW
    if seconds > AVE_WINDOW and seconds % AVE_WINDOW:
        starts.append(seconds - AVE_WINDOW)  # the end-aligned window, for the tail only
        tail = sec >= full * AVE_WINDOW
        win = np.where(tail, full, win)
        pos = np.where(tail, sec - (seconds - AVE_WINDOW), pos)
    return np.array(starts, dtype=np.float64), np.stack([win, pos], 1)
