"""On CUDA (``pytest -m gpu``, run by ``scripts/gpu_check.sh``; skipped without a GPU): every registered model
gives on the GPU what it gives on the CPU, a run trains and resumes there in float32 and bf16, and local
``reproduce`` workers get one GPU each; CUDA runs the plain attention path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avloc.config import load_config
from avloc.engine.loop import fit
from avloc.engine.workers import _worker_device
from avloc.tools.paths import config_path
from avloc.catalog import MODELS

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(autouse=True)
def exact_float32():
    """TF32 would round matmuls and convolutions to 10 mantissa bits: compare true float32 instead."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("name", MODELS.names())
def test_model_on_cuda_matches_cpu(name: str):
    torch.manual_seed(0)
    model = MODELS.create({"name": name}).eval()
    batch = model.example_batch(3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu = model(batch)
        gpu = model.cuda()({k: v.cuda() for k, v in batch.items()})
    assert set(gpu) == set(cpu)
    for key, ref in cpu.items():
        got = gpu[key].cpu()
        if ref.is_floating_point():
            torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-4, msg=f"{name}: output {key!r}")
        else:
            assert torch.equal(got, ref), f"{name}: output {key!r}"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("config", ["ave/psp_weak.yaml", "ave/vscg_fully.yaml"])
def test_fit_and_resume_on_cuda(tmp_path: Path, tiny_ave_dir: Path, config: str, precision: str):
    overrides = ["train.epochs=2", "train.batch_size=8", "train.lr_decay_epochs=[]", "train.device=cuda",
                 f"train.precision={precision}", "train.progress=false"]
    whole = fit(load_config(config_path(config), overrides), tiny_ave_dir, tmp_path / "whole", log=lambda *_: None)
    cfg = load_config(config_path(config), overrides)
    assert fit(cfg, tiny_ave_dir, tmp_path / "split", stop_after=1, log=lambda *_: None)["finished"] is False
    resumed = fit(cfg, tiny_ave_dir, tmp_path / "split", resume=True, log=lambda *_: None)
    assert 0.0 <= whole["test_acc"] <= 1.0
    assert resumed["test_acc"] == pytest.approx(whole["test_acc"], abs=0.05)  # GPU kernels: not bit-exact


def test_local_workers_get_one_gpu_each():
    n = torch.cuda.device_count()
    assert [_worker_device(i) for i in range(n)] == [f"cuda:{i}" for i in range(n)]
    assert _worker_device(n) == "cuda:0"  # more workers than GPUs: round-robin


def test_cuda_runs_the_plain_attention_path():
    from avloc.kernels import fused_attn_applies

    assert not fused_attn_applies(torch.zeros(2, 3, device="cuda"))  # the kernel is measured faster on CPU only
