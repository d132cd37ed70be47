"""CLASP: MEAE agreement, CSAI anchor selection, ATP propagation, module switches and the clasp loss."""

from __future__ import annotations

import pytest
import torch

from avloc.models.clasp import global_anchors, local_anchors, meae_salience
from avloc.models.dense_blocks import js_agreement, l1_agreement
from avloc.catalog import LOSSES, MODELS

DIMS = {"audio_dim": 6, "visual_dim": 10, "num_classes": 4, "hidden": 16, "window": 4, "global_ratio": 4.0}
SWITCHES = [
    {},
    {"meae": False},
    {"global_anchors": False},
    {"local_anchors": False},
    {"atp": False},
    {"agreement": "l1", "anchor_fusion": "mean", "fusion": "sum"},
]


def make(**kw):
    torch.manual_seed(0)
    return MODELS.create({"name": "clasp", **DIMS, **kw}).eval()


@pytest.mark.parametrize("fn", [js_agreement, l1_agreement])
def test_agreement_is_one_for_equal_and_low_for_disjoint_predictions(fn):
    a = torch.tensor([[[8.0, -8.0, -8.0], [8.0, -8.0, -8.0]]])
    v = torch.tensor([[[8.0, -8.0, -8.0], [-8.0, 8.0, -8.0]]])
    s = fn(a, v)
    assert s.shape == (1, 2)
    assert float(s[0, 0]) == pytest.approx(1.0, abs=1e-4)
    assert float(s[0, 1]) < 0.01


def test_meae_salience_needs_agreement_and_confidence():
    confident_same = torch.tensor([[[5.0, -5.0]]])
    unsure = torch.tensor([[[-5.0, -5.0]]])  # both modalities agree there is nothing: low salience
    assert float(meae_salience(confident_same, confident_same, "js")) > 0.9
    assert float(meae_salience(unsure, unsure, "js")) < 0.01
    assert float(meae_salience(confident_same, torch.tensor([[[-5.0, 5.0]]]), "js")) < 0.1


def test_global_anchors_are_top_salient_valid_steps():
    sal = torch.tensor([[0.1, 0.9, 0.3, 0.8, 0.99, 0.99], [0.5, 0.2, 0.7, 0.1, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    idx, valid = global_anchors(sal, mask, ratio=2.0)  # k = 2 and 3
    assert idx.shape == (2, 3)
    assert set(idx[0][valid[0]].tolist()) == {1, 3}  # padded 4, 5 never chosen despite 0.99
    assert valid[0].tolist() == [True, True, False]
    assert set(idx[1][valid[1]].tolist()) == {0, 1, 2}


def test_local_anchors_are_window_argmax_and_skip_padding():
    sal = torch.tensor([[0.1, 0.9, 0.3, 0.4, 0.2, 0.95, 0.96, 0.97]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    idx, valid = local_anchors(sal, mask, window=3)  # windows [0-2], [3-5], [6-7]
    assert idx.tolist()[0][:2] == [1, 3]  # window 2: step 5 is padding, step 3 (0.4) beats 4 (0.2)
    assert valid.tolist() == [[True, True, False]]


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "full")
def test_every_parameter_gets_gradient_in_every_switch_setting(switch):
    model = make(**switch).train()
    batch = model.example_batch(4, torch.Generator().manual_seed(0))
    out = model(batch)
    loss = LOSSES.create({"name": "clasp"})(out, batch)["loss"]
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert ("atp_a" in names) == switch.get("atp", True)
    assert ("anchor_fuse" in names) == (switch.get("atp", True) and switch.get("anchor_fusion", "concat") == "concat")


def test_switches_change_anchor_counts_and_selection():
    batch = make().example_batch(3, torch.Generator().manual_seed(1))
    t = batch["mask"].shape[1]
    full = make()(batch)
    only_local = make(global_anchors=False)(batch)
    only_global = make(local_anchors=False)(batch)
    assert only_local["anchor_index"].shape[1] == -(-t // DIMS["window"])
    assert only_global["anchor_index"].shape[1] == -(-t // int(DIMS["global_ratio"]))
    assert full["anchor_index"].shape[1] == only_local["anchor_index"].shape[1] + only_global["anchor_index"].shape[1]
    # valid anchors always sit on valid steps
    for out in (full, only_local, only_global, make(meae=False)(batch)):
        idx, valid = out["anchor_index"], out["anchor_valid"]
        assert torch.all(batch["mask"].gather(1, idx)[valid])
        assert torch.all(valid.any(dim=1))
    assert "anchor_index" not in make(atp=False)(batch)
    # MEAE off ranks timesteps by confidence instead of agreement x confidence
    assert not torch.equal(full["salience"], make(meae=False)(batch)["salience"])


def test_attention_weights_only_valid_anchors():
    model = make()
    batch = model.example_batch(3, torch.Generator().manual_seed(2))
    out = model(batch)
    att = out["anchor_attention"]  # (B, T, K)
    torch.testing.assert_close(att.sum(-1), torch.ones(att.shape[:2]))
    assert torch.all(att.masked_select(~out["anchor_valid"].unsqueeze(1).expand_as(att)) == 0)


@pytest.mark.parametrize("switch", [{}, {"meae": False}, {"atp": False}])
def test_padding_does_not_change_valid_outputs(switch):
    model = make(**switch)
    g = torch.Generator().manual_seed(5)
    audio, visual = torch.randn(1, 9, 6, generator=g), torch.randn(1, 9, 10, generator=g)
    alone = model({"audio": audio, "visual": visual, "mask": torch.ones(1, 9, dtype=torch.bool)})
    pad = 7
    padded = model({
        "audio": torch.cat([audio, 30 * torch.randn(1, pad, 6, generator=g)], 1),
        "visual": torch.cat([visual, 30 * torch.randn(1, pad, 10, generator=g)], 1),
        "mask": torch.arange(9 + pad)[None] < 9,
    })
    torch.testing.assert_close(padded["cas"][:, :9], alone["cas"])
    torch.testing.assert_close(padded["video_logits"], alone["video_logits"])
    assert torch.all(padded["cas"][:, 9:] == 0)


def test_clasp_loss_parts_and_anchor_term():
    model = make()
    batch = model.example_batch(3, torch.Generator().manual_seed(0))
    out = model(batch)
    parts = LOSSES.create({"name": "clasp", "anchor_weight": 0.5})(out, batch)
    assert set(parts) == {"loss", "fused", "audio", "visual", "anchor"}
    expected = parts["fused"] + parts["audio"] + parts["visual"] + 0.5 * parts["anchor"]
    torch.testing.assert_close(parts["loss"], expected)
    assert 0.0 <= float(parts["anchor"]) <= 1.0
    no_anchor = LOSSES.create({"name": "clasp"})(make(atp=False)(batch), batch)
    assert "anchor" not in no_anchor
    only_fused = LOSSES.create({"name": "clasp", "audio_weight": 0.0, "visual_weight": 0.0, "anchor_weight": 0.0})
    torch.testing.assert_close(only_fused(out, batch)["loss"], parts["fused"])


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="atp needs"):
        make(global_anchors=False, local_anchors=False)
    with pytest.raises(ValueError, match="agreement"):
        make(agreement="cosine")
    # with ATP off the anchor switches are irrelevant and allowed
    make(atp=False, global_anchors=False, local_anchors=False)


def test_salience_bias_steers_attention_to_the_most_salient_anchor():
    from avloc.models.clasp import AnchorPropagation

    torch.manual_seed(0)
    atp = AnchorPropagation(8, dropout=0.0)
    x, anchors = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    valid = torch.tensor([[True, True, True], [True, True, False]])
    mask = torch.ones(2, 5, dtype=torch.bool)
    salience = torch.tensor([[0.9, 0.01, 0.01], [0.01, 0.02, 0.99]])  # video 1: the 0.99 anchor is invalid
    _, att = atp(x, anchors, valid, mask, 60.0 * torch.log(salience))
    assert torch.all(att[0, :, 0] > 0.99) and torch.all(att[1, :, 1] > 0.99) and torch.all(att[1, :, 2] == 0)
    _, plain = atp(x, anchors, valid, mask, torch.zeros(2, 3))
    assert torch.all(plain[0].max(-1).values < 0.99)
    batch = make().example_batch(3, torch.Generator().manual_seed(4))
    assert not torch.allclose(make(salience_bias=0.0)(batch)["cas"], make(salience_bias=5.0)(batch)["cas"])
