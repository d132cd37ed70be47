"""AVEL (fully and weak): head, max pooling, losses on hand-computed values, the ESCM switch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avloc.models.blocks import ESCM
from avloc.catalog import LOSSES, MODELS
from helpers import train_losses


def _model(name: str, **cfg) -> nn.Module:
    torch.manual_seed(0)
    return MODELS.create({"name": name, **cfg})


def _batch(model: nn.Module, n: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    return model.example_batch(n, torch.Generator().manual_seed(seed))


def test_outputs_attention_and_argmax_prediction() -> None:
    model = _model("avel").eval()
    with torch.no_grad():
        out = model(_batch(model))
    assert out["segment_logits"].shape == (3, 10, 29) and out["segment_logits"].dtype == torch.float32
    assert torch.allclose(out["attention"].sum(-1), torch.ones(3, 10))
    assert torch.equal(model.segment_predictions(out), out["segment_logits"].argmax(-1))


def test_weak_video_logits_are_max_over_time() -> None:
    model = _model("avel_weak").eval()
    with torch.no_grad():
        out = model(_batch(model))
    assert torch.equal(out["video_logits"], out["segment_logits"].amax(1))
    # test-time prediction stays per segment
    assert torch.equal(model.segment_predictions(out), out["segment_logits"].argmax(-1))


def test_weak_loss_gradient_reaches_only_the_max_segment_of_each_class() -> None:
    """MIL max pooling: each class's video score comes from one segment, so only it gets gradient."""
    model = _model("avel_weak").eval()
    batch = _batch(model, 2)
    out = model(batch)
    seg = out["segment_logits"]
    seg.retain_grad()
    LOSSES.create({"name": "avel_weak"})(out, batch)["loss"].backward()
    assert seg.grad is not None
    argmax_t = seg.detach().argmax(1, keepdim=True)  # (B, 1, C)
    touched = torch.zeros_like(seg, dtype=torch.bool).scatter_(1, argmax_t, True)
    assert (seg.grad[~touched] == 0).all()
    assert (seg.grad[touched] != 0).all()


def test_fully_loss_is_cross_entropy_and_official_switch_is_softmax_soft_margin() -> None:
    out = {"segment_logits": torch.zeros(1, 2, 3)}
    batch = {"segment_labels": torch.tensor([[0, 2]]), "labels": torch.eye(3)[[0, 2]].unsqueeze(0)}
    assert LOSSES.create({"name": "avel"})(out, batch)["loss"].item() == pytest.approx(math.log(3), rel=1e-6)
    # official: MultiLabelSoftMarginLoss on softmax = 1/3 everywhere, one positive of three per segment
    pos, neg = math.log1p(math.exp(-1 / 3)), math.log1p(math.exp(1 / 3))
    got = LOSSES.create({"name": "avel", "official_softmax_mlsm": True})(out, batch)["loss"].item()
    assert got == pytest.approx((pos + 2 * neg) / 3, rel=1e-6)


def test_weak_loss_hand_value_and_official_switch() -> None:
    out = {"video_logits": torch.tensor([[1.0, -1.0], [0.0, 3.0]])}
    batch = {"video_label": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731  softplus
    expect = (sp(-1.0) + sp(-1.0) + sp(0.0) + sp(-3.0)) / 4
    assert LOSSES.create({"name": "avel_weak"})(out, batch)["loss"].item() == pytest.approx(expect, rel=1e-6)
    official = nn.MultiLabelSoftMarginLoss()(out["video_logits"].softmax(-1), batch["video_label"]).item()
    got = LOSSES.create({"name": "avel_weak", "official_softmax_mlsm": True})(out, batch)["loss"].item()
    assert got == pytest.approx(official, rel=1e-6)


@pytest.mark.parametrize("name,mode", [("avel", "fully"), ("avel_weak", "weak")])
def test_escm_switch_adds_exactly_the_escm_parameters(name: str, mode: str) -> None:
    off, on = _model(name), _model(name, escm={})
    assert not any("escm" in n for n, _ in off.named_parameters())
    escm = ESCM(256, 128, mode=mode)
    assert on.num_parameters() - off.num_parameters() == sum(p.numel() for p in escm.parameters())
    batch = _batch(on)
    LOSSES.create({"name": name})(on(batch), batch)["loss"].backward()
    grads = [p.grad for n, p in on.named_parameters() if "escm" in n]
    assert grads and all(g is not None for g in grads)


def test_parameter_count_matches_att_net() -> None:
    """AGVA 378,929 + Bi-LSTMs 264,192 + 657,408 + head 32,832 + 1,885 (official att_Net)."""
    assert _model("avel").num_parameters() == 1_335_246


def test_training_steps_reduce_the_loss() -> None:
    model = _model("avel")
    loss_fn = LOSSES.create({"name": "avel"})
    batch = _batch(model, 2, seed=1)
    losses = train_losses(model, loss_fn, batch, steps=3, lr=1e-3)
    assert losses[-1] < losses[0]


def test_bad_visual_shape_names_the_key() -> None:
    model = _model("avel")
    batch = _batch(model)
    batch["visual"] = batch["visual"].flatten(2, 3)
    with pytest.raises(ValueError, match="'visual'"):
        model(batch)
