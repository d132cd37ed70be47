"""Small helpers shared by several test modules (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

from typing import Mapping

import torch


def train_losses(model: torch.nn.Module, loss_fn: torch.nn.Module, batch: Mapping[str, torch.Tensor],
                 steps: int, lr: float) -> list[float]:
    """Run ``steps`` Adam steps on one batch and return the loss before each step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(batch), batch)["loss"]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
