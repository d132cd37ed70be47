"""bf16 autocast: every registered model trains a step under CPU bf16 autocast (the CPU LSTM used to fail
there on raw float32 features), and the device check names what it looked at."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from avloc.engine.precision import CPU_BF16_FLAGS, bf16_matmul_support
from avloc.catalog import MODELS


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_runs_forward_and_backward_under_cpu_bf16_autocast(name: str):
    torch.manual_seed(0)
    model = MODELS.create({"name": name}).train()
    batch = model.example_batch(2, torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    fields = [getattr(out, f.name) for f in dataclasses.fields(out)]  # every tensor the model returns
    loss = torch.stack([v.float().sum() for v in fields if isinstance(v, torch.Tensor) and v.is_floating_point()]).sum()
    assert torch.isfinite(loss), name
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads), name


def test_bf16_support_check_names_the_flags_it_looked_for():
    ok, reason = bf16_matmul_support(torch.device("cpu"))
    assert isinstance(ok, bool) and "oneDNN" in reason
    assert ok or all(flag in reason for flag in CPU_BF16_FLAGS)
