"""PSP / VSCG losses against values computed by hand on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from avloc.losses.ave_losses import avps_loss, avps_targets, negative_pair_filter_loss
from avloc.catalog import LOSSES
from avloc.models.outputs import AVEOutput
from avloc.registry import ConfigError


def test_avps_targets_are_one_over_k_on_events_and_uniform_for_event_free_videos():
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert avps_targets(mask).tolist() == [[0, 0.5, 0.5, 0], [0.25] * 4, [0.25] * 4]


def test_avps_loss_hand_value():
    sim = torch.tensor([[0.5, -0.2, 0.5, 0.0]])  # relu -> [.5, 0, .5, 0], / 1 -> same
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]])  # target [.5, .5, 0, 0]
    # squared errors [0, .25, .25, 0] -> mean .125
    assert avps_loss(sim, mask).item() == pytest.approx(0.125, abs=1e-7)


def test_psp_loss_is_ce_plus_lambda_avps():
    loss = LOSSES.create({"name": "psp", "lambda_avps": 100.0})
    logits = torch.tensor([[[0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]]])  # CE: ln 3 and -ln(2/4) = ln 2
    out = AVEOutput(class_logits=logits, av_similarity=torch.tensor([[0.2, 0.6]]))  # normalised [.25, .75]
    batch = {"segment_labels": torch.tensor([[2, 0]]), "event_mask": torch.tensor([[0.0, 1.0]])}
    parts = loss(out, batch)
    ce = (math.log(3.0) + math.log(2.0)) / 2
    avps = (0.25**2 + 0.25**2) / 2  # target [0, 1]
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-6)
    assert parts["avps"].item() == pytest.approx(avps, rel=1e-6)
    assert parts["loss"].item() == pytest.approx(ce + 100.0 * avps, rel=1e-6)


def test_psp_loss_targets_do_not_leak_between_batches():
    """The official loader keeps old 1/k values at background positions of later batches."""
    loss = LOSSES.create({"name": "psp", "lambda_avps": 1.0})
    logits = torch.zeros(1, 4, 3)
    sim = torch.tensor([[0.1, 0.1, 0.3, 0.5]])  # normalised [.1, .1, .3, .5]
    labels = torch.zeros(1, 4, dtype=torch.long)
    out = AVEOutput(class_logits=logits, av_similarity=sim)
    loss(out, {"segment_labels": labels, "event_mask": torch.ones(1, 4)})
    second = loss(out,
                  {"segment_labels": torch.zeros(1, 4, dtype=torch.long),
                   "event_mask": torch.tensor([[0.0, 0.0, 1.0, 1.0]])})
    fresh = (0.1**2 + 0.1**2 + 0.2**2 + 0.0**2) / 4  # target [0, 0, .5, .5]
    stale = (0.15**2 + 0.15**2 + 0.2**2 + 0.0**2) / 4  # target [.25, .25, .5, .5] (official buffer)
    assert second["avps"].item() == pytest.approx(fresh, rel=1e-5)
    assert second["avps"].item() != pytest.approx(stale, rel=1e-3)


def test_carried_targets_keep_earlier_rows_like_the_official_loader():
    """``avps_targets: carried``: background entries keep what earlier batches wrote in the same row."""
    loss = LOSSES.create({"name": "psp", "lambda_avps": 1.0, "avps_targets": "carried"})
    logits = torch.zeros(1, 4, 3)
    sim = torch.tensor([[0.1, 0.1, 0.3, 0.5]])  # normalised [.1, .1, .3, .5]
    labels = torch.zeros(1, 4, dtype=torch.long)
    out = AVEOutput(class_logits=logits, av_similarity=sim)
    first = loss(out, {"segment_labels": labels, "event_mask": torch.ones(1, 4)})
    assert first["avps"].item() == pytest.approx((0.15**2 * 2 + 0.05**2 + 0.25**2) / 4, rel=1e-5)
    second = loss(out, {"segment_labels": labels, "event_mask": torch.tensor([[0.0, 0.0, 1.0, 1.0]])})
    stale = (0.15**2 + 0.15**2 + 0.2**2 + 0.0**2) / 4  # target [.25, .25, .5, .5] (official buffer)
    assert second["avps"].item() == pytest.approx(stale, rel=1e-5)


def test_carried_targets_buffer_rows_and_event_free_videos():
    from avloc.losses.ave_losses import CarriedTargets

    carried = CarriedTargets()
    assert carried(torch.tensor([[1.0, 0.0], [0.0, 1.0]])).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # a smaller batch writes only its rows; an event-free video writes 1/T everywhere
    assert carried(torch.tensor([[0.0, 0.0]])).tolist() == [[0.5, 0.5]]
    assert carried(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])).tolist() == [
        [0.5, 1.0], [1.0, 1.0], [0.0, 1.0]]


@pytest.mark.parametrize("name", ["psp", "vscg"])
def test_avps_targets_must_be_known(name):
    with pytest.raises((ConfigError, ValueError), match="avps_targets"):
        LOSSES.create({"name": name, "avps_targets": "stale"})


def test_vscg_psp_pair_uses_carried_targets():
    fresh = LOSSES.create({"name": "vscg", "pair": "psp"})
    carried = LOSSES.create({"name": "vscg", "pair": "psp", "avps_targets": "carried"})
    out = AVEOutput(event_logits=torch.zeros(1, 4), class_logits=torch.zeros(1, 3),
                    av_similarity=torch.tensor([[0.1, 0.1, 0.3, 0.5]]))
    full = {"event_mask": torch.ones(1, 4), "video_class": torch.tensor([0])}
    part = {"event_mask": torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "video_class": torch.tensor([0])}
    for loss in (fresh, carried):
        loss(out, full)
    assert fresh(out, part)["pair"].item() == pytest.approx((0.1**2 * 2 + 0.2**2) / 4, rel=1e-5)
    assert carried(out, part)["pair"].item() == pytest.approx((0.15**2 * 2 + 0.2**2) / 4, rel=1e-5)


def test_avps_weight_ramps_over_the_warmup_steps():
    loss = LOSSES.create({"name": "psp", "lambda_avps": 100.0, "avps_warmup_steps": 4})
    weights = []
    for step in (0, 1, 3, 10):
        loss.step = step
        weights.append(loss.avps_weight())
    assert weights == [25.0, 50.0, 100.0, 100.0]
    assert LOSSES.create({"name": "psp"}).avps_weight() == 100.0
    with pytest.raises((ConfigError, ValueError), match="avps_warmup_steps"):
        LOSSES.create({"name": "psp", "avps_warmup_steps": -1})


def vscg_case():
    out = AVEOutput(
        event_logits=torch.tensor([[0.0, math.log(3.0)]]),  # sigmoid .5 and .75
        class_logits=torch.tensor([[0.0, 0.0]]),
        av_similarity=torch.tensor([[0.3, 0.6]]),
    )
    batch = {"event_mask": torch.tensor([[0.0, 1.0]]), "video_class": torch.tensor([1])}
    bce = (math.log(2.0) + math.log(4.0 / 3.0)) / 2  # -ln(1-.5), -ln(.75)
    return out, batch, bce, math.log(2.0)


@pytest.mark.parametrize(
    "pair, pair_value",
    [("npf", 1.0 - 0.6), ("psp", ((1 / 3) ** 2 + (1 / 3) ** 2) / 2), ("ce", 0.0)],
)
def test_vscg_loss_hand_values_for_each_pair_term(pair, pair_value):
    out, batch, bce, ce = vscg_case()
    parts = LOSSES.create({"name": "vscg", "pair": pair})(out, batch)
    assert parts["relevance"].item() == pytest.approx(bce, rel=1e-6)
    assert parts["category"].item() == pytest.approx(ce, rel=1e-6)
    assert parts["loss"].item() == pytest.approx(bce + ce + pair_value, rel=1e-6)
    assert ("pair" in parts) == (pair != "ce")


def test_vscg_loss_weights():
    out, batch, bce, ce = vscg_case()
    parts = LOSSES.create({"name": "vscg", "w_relevance": 2.0, "w_category": 0.5, "w_pair": 3.0})(out, batch)
    assert parts["loss"].item() == pytest.approx(2 * bce + 0.5 * ce + 3 * 0.4, rel=1e-6)


def test_vscg_loss_keeps_a_float64_run_float64_accurate():
    out, batch, bce, ce = vscg_case()
    out = AVEOutput(class_logits=out.class_logits.double(), av_similarity=out.av_similarity.double(),
                    event_logits=torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64))
    batch = {**batch, "event_mask": batch["event_mask"].bool()}  # the mask takes the model output's dtype
    parts = LOSSES.create({"name": "vscg", "pair": "ce"})(out, batch)
    assert parts["relevance"].dtype == torch.float64  # a float32 mask made the whole BCE float32
    assert parts["relevance"].item() == pytest.approx(bce, rel=1e-14)
    assert parts["loss"].item() == pytest.approx(bce + ce, rel=1e-14)


def test_npf_filters_background_pairs_and_psp_does_not():
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    a = torch.tensor([[0.5, 0.7, 0.1, 0.9]])
    b = torch.tensor([[0.5, 0.7, -0.8, 0.2]])  # only the background pairs differ
    assert negative_pair_filter_loss(a, mask).item() == pytest.approx((0.5 + 0.3) / 2, rel=1e-6)
    assert negative_pair_filter_loss(a, mask) == negative_pair_filter_loss(b, mask)
    assert avps_loss(a, mask) != avps_loss(b, mask)
    assert negative_pair_filter_loss(a, torch.zeros(1, 4)).item() == 0.0  # no events: no pair loss


def test_vscg_category_ignores_background_only_videos():
    out = AVEOutput(event_logits=torch.zeros(2, 2), class_logits=torch.tensor([[0.0, 0.0], [5.0, -5.0]]),
                    av_similarity=torch.zeros(2, 2))
    batch = {"event_mask": torch.zeros(2, 2), "video_class": torch.tensor([0, 2])}  # 2 = background
    parts = LOSSES.create({"name": "vscg", "pair": "ce"})(out, batch)
    assert parts["category"].item() == pytest.approx(math.log(2.0), rel=1e-6)
    only_bg = {"event_mask": torch.zeros(1, 2), "video_class": torch.tensor([2])}
    parts = LOSSES.create({"name": "vscg", "pair": "ce"})(
        AVEOutput(event_logits=torch.zeros(1, 2), class_logits=out.class_logits[:1]), only_bg)
    assert parts["category"].item() == 0.0


def test_weak_losses_read_only_video_level_targets():
    out = AVEOutput(class_logits=torch.zeros(1, 4, 2), video_logits=torch.tensor([[math.log(3.0), 0.0]]))
    batch = {"prob_label": torch.tensor([[1.0, 0.0]])}  # no segment-level keys at all
    # softmax -> p = [.75, .25]: BCE(.75|1) = BCE(.25|0) = ln(4/3)
    main = math.log(4.0 / 3.0)
    assert LOSSES.create({"name": "psp_weak_bce"})(out, batch)["loss"].item() == pytest.approx(main, rel=1e-6)
    # smooth: softmax(p) = [sigmoid(.5), sigmoid(-.5)]: BCE = -ln sigmoid(.5) = ln(1 + e^-.5) for both
    smooth = math.log(1.0 + math.exp(-0.5))
    parts = LOSSES.create({"name": "vscg_smooth"})(out, batch)
    assert parts["main"].item() == pytest.approx(main, rel=1e-6)
    assert parts["smooth"].item() == pytest.approx(smooth, rel=1e-6)
    assert parts["loss"].item() == pytest.approx(2 * main + smooth, rel=1e-6)


def test_missing_keys_and_bad_options_are_named():
    smooth = LOSSES.create({"name": "vscg_smooth"})
    out = AVEOutput(class_logits=torch.ones(1, 2, 2), video_logits=torch.ones(1, 2))
    with pytest.raises(ValueError, match="vscg_smooth loss: needs batch key 'prob_label'"):
        smooth(out, {"video_label": torch.ones(1, 2)})
    with pytest.raises(ValueError, match=r"needs model output 'video_logits' \(has: \['class_logits'\]\)"):
        smooth(AVEOutput(class_logits=torch.ones(1, 2, 2)), {"prob_label": torch.ones(1, 2)})
    with pytest.raises(ValueError, match="pair must be one of"):
        LOSSES.create({"name": "vscg", "pair": "triplet"})
    with pytest.raises(ConfigError, match="lamda"):
        LOSSES.create({"name": "psp", "lamda": 1.0})
