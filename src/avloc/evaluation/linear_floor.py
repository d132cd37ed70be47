"""The linear per-second floors of an AVE-layout dataset: what a trained model must clearly beat.

Each second is one example: its audio vector and its visual map averaged over the grid, concatenated and
standardised with the training split's statistics. ``linear_floor`` (fully supervised): one-vs-rest L2-loss linear
SVMs (every class including background) trained on the training seconds' labels. ``weak_linear_floor`` (weakly
supervised): the same linear scores per second, max-pooled over the video and trained on the video labels alone
with the multi-label soft-margin loss of AVEL's weak setting, so that a weakly supervised model is compared with a
linear model that learnt from the same labels. Either way the regularisation is chosen on the validation seconds
only, and the score is segment accuracy on the test split, the same number ``avloc eval`` reports for a model.
"""

from __future__ import annotations

from typing import Any

import torch

from avloc.evaluation.linear_svm import fit_linear_svm

C_GRID = (0.001, 0.01, 0.1, 1.0)
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


def second_features(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T, Da + Dv) per-second features and (N, T) segment labels of an AVE-layout dataset."""
    audio = data.tensors["audio"].float()  # (N, T, Da)
    visual = data.tensors["visual"].float()  # (N, T, H, W, Dv)
    pooled = visual.flatten(2, -2).mean(2)  # (N, T, Dv)
    return torch.cat([audio, pooled], -1), data.tensors["segment_labels"]


def _standardised_seconds(data: Any) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per split: (n, T, D) float64 features standardised with the training seconds' statistics, (n, T) labels."""
    feats, labels = second_features(data)
    x = {s: feats[data.splits[s]].double() for s in ("train", "val", "test")}  # (n, T, D)
    flat = x["train"].flatten(0, 1)
    mean, std = flat.mean(0), flat.std(0).clamp(min=1e-6)
    return {s: (v - mean) / std for s, v in x.items()}, {s: labels[data.splits[s]] for s in x}


def linear_floor(data: Any, c_grid: tuple[float, ...] = C_GRID) -> dict[str, Any]:
    """Validation-selected C and the per-second accuracy on val and test of the linear floor."""
    seconds, labels = _standardised_seconds(data)
    n_classes = len(data.class_names)
    x = {s: v.flatten(0, 1) for s, v in seconds.items()}  # (n * T, D)
    y = {s: v.flatten() for s, v in labels.items()}  # (n * T,)
    best: dict[str, Any] = {}
    for c in c_grid:
        svm = fit_linear_svm(x["train"], y["train"], n_classes, c=c)
        acc = {s: float((svm.decision(x[s]).argmax(1) == y[s]).double().mean()) for s in ("val", "test")}
        if not best or acc["val"] > best["val_acc"]:
            best = {"c": c, "val_acc": acc["val"], "test_acc": acc["test"]}
    return best


def fit_weak_linear(x: torch.Tensor, video_labels: torch.Tensor, l2: float, max_iter: int = 300
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (D, K) and bias (K,) of per-second linear scores whose maximum over time fits the video labels.

    x: (N, T, D) seconds; video_labels: (N, K) 0/1. Minimises the multi-label soft-margin loss of the max-pooled
    scores plus ``l2`` ||W||^2 with L-BFGS (full batch: the floor must not depend on a schedule)."""
    w = torch.zeros(x.shape[-1], video_labels.shape[1], dtype=x.dtype, requires_grad=True)
    b = torch.zeros(video_labels.shape[1], dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-10,
                            line_search_fn="strong_wolfe")
    target = video_labels.to(x.dtype)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        video = (x @ w + b).amax(1)  # (N, T, K) -> (N, K)
        loss = torch.nn.functional.multilabel_soft_margin_loss(video, target) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def weak_linear_floor(data: Any, l2_grid: tuple[float, ...] = L2_GRID) -> dict[str, Any]:
    """Validation-selected L2 strength and the per-second accuracy on val and test of the weak linear floor:
    ``data`` in the weak setting (its ``video_label`` (N, C + 1) is all the training split tells)."""
    seconds, labels = _standardised_seconds(data)
    video = data.tensors["video_label"][data.splits["train"]]  # (n, C + 1)
    best: dict[str, Any] = {}
    for l2 in l2_grid:
        w, b = fit_weak_linear(seconds["train"], video, l2)
        acc = {s: float(((seconds[s] @ w + b).argmax(-1) == labels[s]).double().mean()) for s in ("val", "test")}
        if not best or acc["val"] > best["val_acc"]:
            best = {"l2": l2, "val_acc": acc["val"], "test_acc": acc["test"]}
    return best
