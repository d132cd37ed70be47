"""The linear per-second floor of an AVE-layout dataset: what a trained model must clearly beat.

Each second is one example: its audio vector and its visual map averaged over the grid, concatenated and
standardised with the training split's statistics; one-vs-rest L2-loss linear SVMs (every class including
background) are trained on the training seconds, C is chosen on the validation seconds only, and the score is
segment accuracy on the test split, the same number ``avloc eval`` reports for a model.
"""

from __future__ import annotations

from typing import Any

import torch

from avloc.evaluation.linear_svm import fit_linear_svm

C_GRID = (0.001, 0.01, 0.1, 1.0)


def second_features(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T, Da + Dv) per-second features and (N, T) segment labels of an AVE-layout dataset."""
    audio = data.tensors["audio"].float()  # (N, T, Da)
    visual = data.tensors["visual"].float()  # (N, T, H, W, Dv)
    pooled = visual.flatten(2, -2).mean(2)  # (N, T, Dv)
    return torch.cat([audio, pooled], -1), data.tensors["segment_labels"]


def linear_floor(data: Any, c_grid: tuple[float, ...] = C_GRID) -> dict[str, Any]:
    """Validation-selected C and the per-second accuracy on val and test of the linear floor."""
    feats, labels = second_features(data)
    n_classes = len(data.class_names)
    split = {s: data.splits[s] for s in ("train", "val", "test")}
    x = {s: feats[i].flatten(0, 1).double() for s, i in split.items()}  # (n * T, D)
    y = {s: labels[i].flatten() for s, i in split.items()}  # (n * T,)
    mean, std = x["train"].mean(0), x["train"].std(0).clamp(min=1e-6)
    x = {s: (v - mean) / std for s, v in x.items()}
    best: dict[str, Any] = {}
    for c in c_grid:
        svm = fit_linear_svm(x["train"], y["train"], n_classes, c=c)
        acc = {s: float((svm.decision(x[s]).argmax(1) == y[s]).double().mean()) for s in ("val", "test")}
        if not best or acc["val"] > best["val_acc"]:
            best = {"c": c, "val_acc": acc["val"], "test_acc": acc["test"]}
    return best
