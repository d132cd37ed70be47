"""CMBS (supervised and weak): CAS pooling, the weak gate fix, predictions, losses, the ESCM switch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avloc.losses.cmbs_losses import product_gate_bce, video_class_ce
from avloc.models.blocks import ESCM
from avloc.models.cmbs_blocks import topk_temporal_mean
from avloc.catalog import LOSSES, MODELS
from helpers import train_losses


def _model(name: str, **cfg) -> nn.Module:
    torch.manual_seed(0)
    return MODELS.create({"name": name, **cfg})


def _batch(model: nn.Module, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    return model.example_batch(n, torch.Generator().manual_seed(seed))


def test_topk_temporal_mean_on_hand_made_scores() -> None:
    scores = torch.tensor([[[1.0, -1.0], [5.0, -2.0], [3.0, -3.0], [2.0, -4.0], [4.0, -5.0]]])  # (1, 5, 2)
    assert torch.allclose(topk_temporal_mean(scores, 2), torch.tensor([[4.5, -1.5]]))
    assert torch.allclose(topk_temporal_mean(scores, 1), torch.tensor([[5.0, -1.0]]))
    assert torch.allclose(topk_temporal_mean(scores, 5), scores.mean(1))
    with pytest.raises(ValueError, match="k=6"):
        topk_temporal_mean(scores, 6)


def test_weak_gate_fix_predicts_background_and_the_official_bug_never_does() -> None:
    """Hand-made outputs: a low gate on segments 0..4 must give background with the fix."""
    out = {
        "av_gate": torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.45, 0.6, 0.7, 0.8, 0.9, 0.99]]),
        "raw_logits": torch.zeros(1, 29).index_fill_(1, torch.tensor([3]), 2.0),
    }
    fixed = _model("cmbs_weak").segment_predictions(out)
    bugged = _model("cmbs_weak", official_gate_bug=True).segment_predictions(out)
    assert fixed.tolist() == [[28] * 5 + [3] * 5]
    assert bugged.tolist() == [[3] * 10]


def test_weak_gate_fix_end_to_end_with_a_nearly_closed_gate() -> None:
    """Force both gate layers nearly shut (weights 0, bias -4: av_gate = sigmoid(-4) = 0.018). The fixed
    model predicts background everywhere, while the reproduced official evaluation (sigmoid of a
    probability, > 0.5 for any gate > 0) ignores the gate and gives every segment the video argmax."""
    model = _model("cmbs_weak").eval()
    with torch.no_grad():
        for gate in (model.front.audio_gate, model.front.video_gate):
            gate.weight.zero_()
            gate.bias.fill_(-4.0)
        out = model(_batch(model, 3))
    assert torch.allclose(out["av_gate"], torch.sigmoid(torch.tensor(-4.0)))
    assert (model.segment_predictions(out) == 28).all()
    model.cfg.official_gate_bug = True
    video_argmax = out["raw_logits"].argmax(-1, keepdim=True).expand(-1, 10)
    assert torch.equal(model.segment_predictions(out), video_argmax)


def test_weak_video_logits_are_max_over_time_of_gated_raw_logits() -> None:
    model = _model("cmbs_weak").eval()
    with torch.no_grad():
        out = model(_batch(model))
    assert out["video_logits"].dtype == torch.float32
    assert ((out["av_gate"] > 0) & (out["av_gate"] < 1)).all()
    expect = (out["av_gate"].unsqueeze(-1) * out["raw_logits"].unsqueeze(1)).amax(1)
    assert torch.allclose(out["video_logits"], expect)


def test_supervised_prediction_thresholds_relevance() -> None:
    model = _model("cmbs")
    scores = torch.zeros(2, 28)
    scores[0, 5], scores[1, 17] = 1.0, 1.0
    out = {"relevance": torch.tensor([[-3.0] * 5 + [0.1] * 5, [2.0] * 10]), "event_scores": scores}
    assert model.segment_predictions(out).tolist() == [[28] * 5 + [5] * 5, [17] * 10]
    model.cfg.threshold = 0.9  # sigmoid(2) = 0.88
    assert (model.segment_predictions(out) == 28).all()


def test_supervised_outputs_and_gate_product() -> None:
    model = _model("cmbs").eval()
    with torch.no_grad():
        out = model(_batch(model))
    assert out["relevance"].shape == (2, 10) and out["event_scores"].shape == (2, 28)
    prod = torch.sigmoid(out["audio_gate_logits"]) * torch.sigmoid(out["video_gate_logits"])
    assert torch.allclose(out["av_gate"], prod)
    assert all(v.dtype == torch.float32 for v in out.values())


def test_product_gate_bce_hand_values() -> None:
    zeros = torch.zeros(1, 2)  # both gates sigmoid(0) = 0.5 -> p = 0.25
    target = torch.tensor([[1.0, 0.0]])
    expect = (-math.log(0.25) - math.log(0.75)) / 2
    assert product_gate_bce(zeros, zeros, target).item() == pytest.approx(expect, rel=1e-6)
    # saturated gates stay finite (p rounds to 1 in float32)
    big = torch.full((1, 2), 40.0, requires_grad=True)
    val = product_gate_bce(big, big, target)
    val.backward()
    assert torch.isfinite(val) and torch.isfinite(big.grad).all()


def test_video_class_ce_ignores_background_videos() -> None:
    scores = torch.zeros(3, 28)
    scores[0, 2] = 1.0
    cls = torch.tensor([2, 28, 0])
    per0 = -math.log(math.e / (math.e + 27))
    per2 = math.log(28)  # row 2 is all zeros: uniform over 28 classes
    assert video_class_ce(scores, cls).item() == pytest.approx((per0 + per2) / 2, rel=1e-6)
    assert video_class_ce(scores, torch.tensor([28, 28, 28])).item() == 0.0


def test_cmbs_loss_hand_computed_and_official_gate_switch() -> None:
    out = {
        "relevance": torch.zeros(1, 2),
        "audio_gate_logits": torch.zeros(1, 2),
        "video_gate_logits": torch.zeros(1, 2),
        "av_gate": torch.full((1, 2), 0.25),
        "event_scores": torch.zeros(1, 28),
        "av_score": torch.zeros(1, 28),
    }
    batch = {"event_mask": torch.tensor([[1.0, 0.0]]), "video_class": torch.tensor([4])}
    rel = math.log(2)
    gate = (-math.log(0.25) - math.log(0.75)) / 2
    ce = math.log(28)
    parts = LOSSES.create({"name": "cmbs"})(out, batch)
    assert parts["loss"].item() == pytest.approx(rel + gate + 2 * ce, rel=1e-6)
    official_gate = (math.log1p(math.exp(-0.25)) + math.log1p(math.exp(0.25))) / 2
    parts = LOSSES.create({"name": "cmbs", "official_gate_loss": True, "cas_weight": 0.0})(out, batch)
    assert parts["gate"].item() == pytest.approx(official_gate, rel=1e-6)
    assert parts["loss"].item() == pytest.approx(rel + official_gate + ce, rel=1e-6)


def test_cmbs_weak_loss_hand_computed() -> None:
    out = {"video_logits": torch.tensor([[0.0, 2.0, -1.0]])}
    batch = {"video_label": torch.tensor([[0.0, 1.0, 0.0]])}
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731  softplus
    expect = (sp(0.0) + sp(-2.0) + sp(-1.0)) / 3
    assert LOSSES.create({"name": "cmbs_weak"})(out, batch)["loss"].item() == pytest.approx(expect, rel=1e-6)
    soft = torch.softmax(out["video_logits"], -1)
    official = nn.MultiLabelSoftMarginLoss()(soft, batch["video_label"]).item()
    got = LOSSES.create({"name": "cmbs_weak", "official_softmax_mlsm": True})(out, batch)["loss"].item()
    assert got == pytest.approx(official, rel=1e-6)


@pytest.mark.parametrize("name,mode", [("cmbs", "fully"), ("cmbs_weak", "weak")])
def test_escm_switch_adds_exactly_the_escm_parameters(name: str, mode: str) -> None:
    off, on = _model(name), _model(name, escm={})
    assert not any("escm" in n for n, _ in off.named_parameters())
    assert any("escm" in n for n, _ in on.named_parameters())
    escm = ESCM(256, 128, mode=mode)
    assert on.num_parameters() - off.num_parameters() == sum(p.numel() for p in escm.parameters())
    out = on(_batch(on))
    LOSSES.create({"name": name})(out, _batch(on))["loss"].backward()
    assert all(p.grad is not None for n, p in on.named_parameters() if "escm" in n)


def test_parameter_counts_match_the_reference_forward_path() -> None:
    """9,200,473 = the hand count of the layers supv_main_model's forward uses (its 13.5 M registered
    total minus the unused template layers); changes here mean a layer was added or lost."""
    assert _model("cmbs").num_parameters() == 9_200_473
    assert _model("cmbs_weak").num_parameters() == 9_395_518


def test_supervised_training_steps_reduce_the_loss() -> None:
    model = _model("cmbs", dropout=0.0, att_dropout=0.0, visual_fc_dropout=0.0,
                   inter_attn_dropout=0.0, inter_dropout=0.0)
    loss_fn = LOSSES.create({"name": "cmbs"})
    batch = _batch(model, 2, seed=1)
    losses = train_losses(model, loss_fn, batch, steps=4, lr=3e-4)
    assert losses[-1] < losses[0]


def test_bad_input_shape_names_the_key() -> None:
    model = _model("cmbs_weak")
    batch = _batch(model)
    batch["audio"] = batch["audio"][..., :100]
    with pytest.raises(ValueError, match="'audio'"):
        model(batch)


@pytest.mark.parametrize("name", ["cmbs", "cmbs_weak"])
def test_encoder_layers_start_as_identical_copies_like_the_official_clones(name: str) -> None:
    model = _model(name)
    for encoder in (model.front.video_encoder, model.front.audio_encoder):
        first, second = (layer.state_dict() for layer in encoder.layers)
        assert all(torch.equal(first[k], second[k]) for k in first)
        assert first["linear1.weight"].data_ptr() != second["linear1.weight"].data_ptr()  # copies, not shared
