"""CLASP: MEAE agreement, CSAI anchor selection, ATP propagation, module switches and the clasp loss."""

from __future__ import annotations

import pytest
import torch

from avloc.models.clasp import (
    claimed_steps,
    class_background,
    class_global_anchors,
    class_local_anchors,
    confidence_salience,
    global_anchors,
    grow_anchors,
    local_anchors,
    meae_agreement,
    pseudo_labels,
)
from avloc.models.dense_blocks import js_agreement, masked_topk_mean
from avloc.catalog import LOSSES, MODELS

DIMS = {"audio_dim": 6, "visual_dim": 10, "num_classes": 4, "hidden": 16, "window": 4, "global_ratio": 4.0}
SWITCHES = [
    {},
    {"meae": False},
    {"global_anchors": False},
    {"local_anchors": False},
    {"atp": False},
    {"propagate_features": False},
    {"anchor_fusion": "mean", "fusion": "sum"},
    {"meae": False, "linear_skip": True},
]


def make(**kw):
    torch.manual_seed(0)
    return MODELS.create({"name": "clasp", **DIMS, **kw}).eval()


def test_agreement_is_one_for_equal_and_low_for_disjoint_predictions():
    fn = js_agreement
    a = torch.tensor([[[8.0, -8.0, -8.0], [8.0, -8.0, -8.0]]])
    v = torch.tensor([[[8.0, -8.0, -8.0], [-8.0, 8.0, -8.0]]])
    s = fn(a, v)
    assert s.shape == (1, 2)
    assert float(s[0, 0]) == pytest.approx(1.0, abs=1e-4)
    assert float(s[0, 1]) < 0.01


def test_meae_agreement_is_per_class_and_needs_both_modalities():
    logit = lambda p: torch.logit(torch.tensor(p))
    # step 0: both modalities say class 0; step 1: audio alone says class 0 very loudly (a distractor);
    # step 2: both say class 1
    la = torch.stack([logit([0.45, 0.01]), logit([0.99, 0.01]), logit([0.01, 0.7])])[None]  # (1, 3, 2)
    lv = torch.stack([logit([0.45, 0.01]), logit([0.02, 0.01]), logit([0.01, 0.7])])[None]
    m = meae_agreement(la, lv)
    assert m.shape == (1, 3, 2)
    assert float(m[0, 0, 0]) == pytest.approx(0.45, abs=1e-5)  # agreed: sqrt(0.45 * 0.45)
    assert float(m[0, 1, 0]) < float(m[0, 0, 0])  # the distractor: only one modality says class 0
    assert float(m[0, 2, 1]) > 10 * float(m[0, 2, 0])  # per class: step 2 agrees on class 1 only
    c = confidence_salience(la, lv)
    assert float(c[0, 1, 0]) > float(c[0, 0, 0])  # by confidence the distractor outranks the event


def test_global_anchors_are_chosen_by_agreement_so_a_distractor_is_not_one():
    logit = lambda p: torch.logit(torch.tensor(p))
    pa = [0.42, 0.45, 0.4, 0.05, 0.05, 0.99, 0.99, 0.05]  # steps 0-2: an A/V event; 5-6: audio-only distractor
    pv = [0.42, 0.45, 0.4, 0.05, 0.05, 0.02, 0.02, 0.05]
    la, lv = logit(pa).view(1, 8, 1), logit(pv).view(1, 8, 1)
    mask = torch.ones(1, 8, dtype=torch.bool)
    glob = class_global_anchors(meae_agreement(la, lv), mask, ratio=4.0)
    assert glob[0, :, 0].nonzero().view(-1).tolist() == [0, 1]  # k = 2: the two most agreed event steps
    by_confidence = class_global_anchors(confidence_salience(la, lv), mask, ratio=4.0)
    assert by_confidence[0, :, 0].nonzero().view(-1).tolist() == [5, 6]  # without MEAE: the distractor


def test_class_global_local_anchors_background_and_padding():
    sal = torch.tensor([[0.1, 0.9, 0.3, 0.2, 0.6, 0.05, 0.99, 0.99]]).unsqueeze(-1)  # (1, 8, 1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0]], dtype=torch.bool)  # steps 6, 7 are padding
    glob = class_global_anchors(sal, mask, ratio=6.0)
    assert glob[0, :, 0].nonzero().view(-1).tolist() == [1]  # k = 1: the top valid step, never padding
    loc = class_local_anchors(sal, mask, window=3, local_min=0.5)
    # windows [0-2] -> 1 (0.9), [3-5] -> 4 (0.6 >= 0.5 * 0.9), [6-7] padding only
    assert loc[0, :, 0].nonzero().view(-1).tolist() == [1, 4]
    weak = class_local_anchors(sal, mask, window=3, local_min=0.7)
    assert weak[0, :, 0].nonzero().view(-1).tolist() == [1]  # 0.6 < 0.7 * 0.9: not an anchor
    assert class_background(sal, mask, 0.2)[0, :, 0].nonzero().view(-1).tolist() == [0, 5]  # < 0.2 * 0.9
    assert class_background(sal, mask, 1.0)[0, :, 0].nonzero().view(-1).tolist() == [0, 2, 3, 4, 5]  # all but the peak


def test_grow_anchors_labels_the_whole_event_and_stops_at_gaps():
    # class 0: one event over steps 1-5 with a noisy dip at 3 (still >= 0.3 x max), background at 6,
    # a second salient run at 7-8 that holds no anchor; class 1: no anchor at all
    s0 = [0.05, 0.6, 0.9, 0.35, 0.7, 0.5, 0.1, 0.8, 0.8]
    sal = torch.stack([torch.tensor(s0), torch.full((9,), 0.5)], dim=-1)[None]  # (1, 9, 2)
    pos = torch.zeros(1, 9, 2, dtype=torch.bool)
    pos[0, 2, 0] = True
    mask = torch.ones(1, 9, dtype=torch.bool)
    grown = grow_anchors(pos, sal, mask, ratio=0.3)
    assert grown[0, :, 0].nonzero().view(-1).tolist() == [1, 2, 3, 4, 5]
    assert not grown[0, :, 1].any()
    mask[0, 4:] = False  # padding ends the run
    assert grow_anchors(pos, sal, mask, ratio=0.3)[0, :, 0].nonzero().view(-1).tolist() == [1, 2, 3]


def test_global_anchors_claim_their_step_from_weaker_co_labelled_classes():
    # class 0 is sure at steps 0-1 and lights up class 1 there (0.5); class 1 is sure at 2-3; class 3 (sure at
    # 2-3 too) agrees nearly as strongly as class 0 at step 0 (a real overlap); class 2 is not labelled
    agreement = torch.tensor([[[0.9, 0.5, 0.1, 0.75], [0.9, 0.5, 0.2, 0.1], [0.1, 0.9, 0.3, 0.8],
                               [0.1, 0.9, 0.95, 0.9]]])  # (1, 4, 4)
    mask = torch.ones(1, 4, dtype=torch.bool)
    glob = class_global_anchors(agreement, mask, ratio=2.0)  # k = 2 per class
    labels = torch.tensor([[True, True, False, True]])
    claimed = claimed_steps(glob, agreement, labels, ratio=0.8)
    assert claimed[0, :, 1].nonzero().view(-1).tolist() == [0, 1]  # 0.5 < 0.8 x 0.9 at class 0's anchors
    assert claimed[0, :, 0].nonzero().view(-1).tolist() == [2, 3]  # class 1's anchors
    assert claimed[0, :, 3].nonzero().view(-1).tolist() == [1]  # 0.75 >= 0.72 at step 0: the overlap stays
    assert not claimed[0, :, 2].any()  # unlabelled: never claimed, and its anchors (steps 2-3) claim nothing
    assert not claimed_steps(glob, agreement, labels, ratio=0.0).any()


def test_claimed_steps_become_background_and_need_the_labels():
    cfg = make(claim_ratio=0.8, global_ratio=2.0).cfg  # k = 2 global anchors per class
    agreement = torch.tensor([[[0.9, 0.5], [0.9, 0.5], [0.1, 0.9], [0.1, 0.9]]])  # (1, 4, 2)
    mask = torch.ones(1, 4, dtype=torch.bool)
    free_pos, free_neg = pseudo_labels(agreement, agreement, mask, cfg)  # no labels: no claims
    assert free_pos[0, :2, 1].all()  # class 1's labels spread over class 0's event ...
    pos, neg = pseudo_labels(agreement, agreement, mask, cfg, torch.tensor([[True, True]]))
    assert not pos[0, :2, 1].any() and neg[0, :2, 1].all()  # ... which claims it back
    assert torch.equal(pos[..., 0], free_pos[..., 0])  # class 0 agrees least nowhere it is positive
    assert not torch.any(pos & neg)
    off = make(claim_ratio=0.0, global_ratio=2.0).cfg
    assert torch.equal(pseudo_labels(agreement, agreement, mask, off, torch.tensor([[True, True]]))[0], free_pos)


def test_the_cas_never_reads_the_labels():
    model = make()
    batch = model.example_batch(3, torch.Generator().manual_seed(2))
    blind = model({k: v for k, v in batch.items() if k != "video_labels"})
    seen = model(batch)
    torch.testing.assert_close(seen.cas, blind.cas)
    torch.testing.assert_close(seen.video_logits, blind.video_logits)


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
    feature_atp = switch.get("atp", True) and switch.get("propagate_features", True)
    assert ("atp_a" in names) == feature_atp
    assert ("anchor_fuse" in names) == (feature_atp and switch.get("anchor_fusion", "concat") == "concat")


def test_switches_change_anchor_counts_and_selection():
    batch = make().example_batch(3, torch.Generator().manual_seed(1))
    t = batch["mask"].shape[1]
    full = make()(batch)
    only_local = make(global_anchors=False)(batch)
    only_global = make(local_anchors=False)(batch)
    assert only_local.anchor_index.shape[1] == -(-t // DIMS["window"])
    assert only_global.anchor_index.shape[1] == -(-t // int(DIMS["global_ratio"]))
    assert full.anchor_index.shape[1] == only_local.anchor_index.shape[1] + only_global.anchor_index.shape[1]
    # valid anchors always sit on valid steps
    for out in (full, only_local, only_global, make(meae=False)(batch)):
        idx, valid = out.anchor_index, out.anchor_valid
        assert torch.all(batch["mask"].gather(1, idx)[valid])
        assert torch.all(valid.any(dim=1))
    assert make(atp=False)(batch).anchor_index is None
    assert make(propagate_features=False)(batch).anchor_index is None
    # MEAE off chooses the global anchors by confidence instead of agreement
    assert not torch.equal(full.salience, make(meae=False)(batch).salience)
    # ATP spreads the anchors (same weights up to the salience: the heads come before ATP)
    no_atp = make(atp=False)(batch)
    assert torch.equal(no_atp.salience, full.salience)
    assert torch.all(full.anchor_positive | ~no_atp.anchor_positive)  # every anchor stays an anchor
    assert int(full.anchor_positive.sum()) > int(no_atp.anchor_positive.sum())
    assert not torch.any(full.anchor_positive & full.anchor_negative)
    # negative_ratio 1.0 (the default): every valid step of every class is an anchor or background, no padding
    # (checked without ATP's spreading, which at initialisation spreads the near-uniform scores everywhere)
    valid = batch["mask"].unsqueeze(-1).expand_as(full.anchor_positive)
    for out in (full, no_atp):
        assert torch.equal(out.anchor_positive | out.anchor_negative, valid)
    partial = make(atp=False, negative_ratio=0.1)(batch)
    assert int((partial.anchor_positive | partial.anchor_negative).sum()) < int(valid.sum())


def test_attention_weights_only_valid_anchors():
    model = make()
    batch = model.example_batch(3, torch.Generator().manual_seed(2))
    out = model(batch)
    att = out.anchor_attention  # (B, T, K)
    torch.testing.assert_close(att.sum(-1), torch.ones(att.shape[:2]))
    assert torch.all(att.masked_select(~out.anchor_valid.unsqueeze(1).expand_as(att)) == 0)


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
    torch.testing.assert_close(padded.cas[:, :9], alone.cas)
    torch.testing.assert_close(padded.video_logits, alone.video_logits)
    assert torch.all(padded.cas[:, 9:] == 0)


def test_clasp_loss_parts_and_anchor_term():
    model = make()
    batch = model.example_batch(3, torch.Generator().manual_seed(0))
    out = model(batch)
    parts = LOSSES.create({"name": "clasp", "anchor_weight": 0.5, "pseudo_weight": 2.0})(out, batch)
    assert set(parts) == {"loss", "fused", "audio", "visual", "anchor", "pseudo"}
    expected = parts["fused"] + parts["audio"] + parts["visual"] + 0.5 * parts["anchor"] + 2.0 * parts["pseudo"]
    torch.testing.assert_close(parts["loss"], expected)
    assert 0.0 <= float(parts["anchor"]) <= 1.0
    no_anchor = LOSSES.create({"name": "clasp"})(make(atp=False)(batch), batch)
    assert "anchor" not in no_anchor
    only_fused = LOSSES.create({"name": "clasp", "audio_weight": 0.0, "visual_weight": 0.0, "anchor_weight": 0.0,
                                "pseudo_weight": 0.0})
    torch.testing.assert_close(only_fused(out, batch)["loss"], parts["fused"])


def test_pseudo_label_term_fits_anchors_and_background_of_labelled_classes_only():
    from avloc.models.outputs import DenseOutput

    logits = torch.tensor([[[2.0, 3.0], [-1.0, 0.5], [0.0, -2.0]]])  # (1, 3, 2)
    pos = torch.tensor([[[True, True], [False, False], [False, False]]])
    neg = torch.tensor([[[False, False], [True, True], [True, False]]])
    out = DenseOutput(cas=torch.sigmoid(logits), cas_logits=logits, video_logits=logits.mean(1),
                      audio_logits=logits, visual_logits=logits, audio_video_logits=logits.mean(1),
                      visual_video_logits=logits.mean(1), anchor_positive=pos, anchor_negative=neg)
    batch = {"video_labels": torch.tensor([[1.0, 0.0]])}  # class 1 is absent: its pseudo-labels are ignored
    parts = LOSSES.create({"name": "clasp", "anchor_weight": 0.0})(out, batch)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = 0.5 * (bce(torch.tensor(2.0), torch.tensor(1.0))
                      + bce(torch.tensor([-1.0, 0.0]), torch.zeros(2)))  # each side averaged on its own
    torch.testing.assert_close(parts["pseudo"], expected)


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="CSAI needs"):
        make(global_anchors=False, local_anchors=False)
    with pytest.raises(ValueError, match="grow_ratio"):
        make(grow_ratio=1.5)


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
    assert not torch.allclose(make(salience_bias=0.0)(batch).cas, make(salience_bias=5.0)(batch).cas)


def test_meae_event_cas_suppresses_a_step_only_one_modality_supports():
    torch.manual_seed(0)
    model = MODELS.create({"name": "clasp", **DIMS}).eval()
    fused = MODELS.create({"name": "clasp", **DIMS, "meae": False}).eval()
    fused.load_state_dict(model.state_dict())  # same weights: without MEAE the cas is the raw fused branch
    batch = model.example_batch(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, raw = model(batch), fused(batch)
    pa, pv = torch.sigmoid(out.audio_logits), torch.sigmoid(out.visual_logits)
    m = batch["mask"].unsqueeze(-1)
    # the two differ in their global anchors too, so compare the fused branch through the CAS definition
    assert torch.allclose(out.cas, torch.sqrt(torch.sigmoid(out_fused_logits(model, batch)) * torch.sqrt(pa * pv)) * m,
                          atol=1e-6)
    assert torch.allclose(out.video_logits, masked_topk_mean(out.cas_logits, batch["mask"], 8.0), atol=1e-6)
    assert not torch.allclose(out.cas, raw.cas)
    # a step the audio branch rules out (p_a -> 0) scores ~0 whatever the fused branch says
    model.head_a.bias.data.fill_(-40.0)
    with torch.no_grad():
        assert model(batch).cas.max() < 1e-3


def out_fused_logits(model, batch):
    """The fused branch's per-step logits of ``model`` (MEAE on), read off by a forward hook on its head."""
    seen = {}
    handle = model.head_f.register_forward_hook(lambda mod, inp, out: seen.setdefault("f", out))
    with torch.no_grad():
        model(batch)
    handle.remove()
    return seen["f"]


def test_linear_skip_adds_a_linear_read_out_of_the_raw_features():
    torch.manual_seed(0)
    model = MODELS.create({"name": "clasp", **DIMS, "linear_skip": True}).eval()
    plain = MODELS.create({"name": "clasp", **DIMS}).eval()
    extra = model.num_parameters() - plain.num_parameters()
    assert extra == (6 + 10 + (6 + 10)) * 4  # audio, visual and concat -> classes, no bias
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("skip_")})
    batch = model.example_batch(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, ref = model(batch), plain(batch)
    assert torch.allclose(out.audio_logits, ref.audio_logits + model.skip_a(batch["audio"]), atol=1e-5)
