"""Every registered model (of any task, present or future) builds from its defaults, runs forward and
backward on its own example batch, gives every parameter a finite gradient and is deterministic in eval
mode; plus exact parameter counts of PSP/VSCG against hand counts from the layer definitions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from avloc.catalog import LOSSES, MODELS
from avloc.models.ave_io import check_ave_inputs
from avloc.models.outputs import AVEOutput, AVVPOutput, DenseOutput, present_fields

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def shipped_loss_name(name: str) -> str:
    """The loss of a shipped config that trains model ``name`` (every registered model has one)."""
    for path in sorted(CONFIGS.rglob("*.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        if (raw.get("model") or {}).get("name") == name and (raw.get("loss") or {}).get("name"):
            return raw["loss"]["name"]
    raise AssertionError(f"no shipped config in configs/ trains model '{name}'")


def objective(name: str, out: AVEOutput | DenseOutput | AVVPOutput, batch: dict) -> torch.Tensor:
    return LOSSES.create({"name": shipped_loss_name(name)})(out, batch)["loss"]


@pytest.fixture(params=MODELS.names())
def built(request):
    torch.manual_seed(0)
    model = MODELS.create({"name": request.param})
    batch = model.example_batch(2, torch.Generator().manual_seed(0))
    return request.param, model, batch


def test_forward_backward_every_parameter_gets_a_finite_gradient(built):
    name, model, batch = built
    model.train()
    out = model(batch)
    assert isinstance(out, (AVEOutput, DenseOutput, AVVPOutput)), f"{name}: forward must return its task's output type"
    assert isinstance(out, AVEOutput) == (model.task == "ave"), f"{name}: output type of the wrong task"
    for key in present_fields(out):
        val = getattr(out, key)
        assert val.shape[0] == 2, f"{name}: output '{key}' {tuple(val.shape)} lacks the batch dim"
        if torch.is_floating_point(val):
            assert torch.isfinite(val).all(), f"{name}: output '{key}' has NaN/inf"
    loss = objective(name, out, batch)
    assert loss.dim() == 0 and torch.isfinite(loss), f"{name}: loss {loss}"
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{name}: parameters without gradient (dead layers?): {missing}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradients in {bad}"


def test_eval_mode_is_deterministic(built):
    name, model, batch = built
    model.eval()
    with torch.no_grad():
        first, second = model(batch), model(batch)
    for key in present_fields(first):
        same = torch.equal(getattr(first, key), getattr(second, key))
        assert same, f"{name}: output '{key}' differs between two eval passes"


def test_ave_models_predict_one_class_per_segment(built):
    name, model, batch = built
    if model.task != "ave":
        pytest.skip("dense model")
    model.eval()
    with torch.no_grad():
        pred = model.segment_predictions(model(batch))
    assert pred.shape == batch["segment_labels"].shape and pred.dtype == torch.long
    assert int(pred.min()) >= 0 and int(pred.max()) <= batch["labels"].shape[-1] - 1


# ---- exact parameter counts (hand counts of the forward-path layers, ave_anchors.md sections 1.3-1.4)

def lin(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def rnn(gates: int, i: int, h: int) -> int:  # one bidirectional single-layer LSTM (4 gates) / GRU (3)
    return 2 * (gates * h * (i + h) + 2 * gates * h)


AGVA = lin(128, 512) + lin(512, 512) + 2 * lin(512, 49, False) + lin(49, 1, False)  # 378,929
PSP_FC = 4 * lin(256, 256, False) + 2 * lin(256, 256, False) + 2 * 256  # branches + fc + shared LN
PSP_NO_FC = 4 * lin(256, 256, False) + 2 * 256
HEAD = lin(256, 64, False) + lin(64, 29, False)
CONVS = (256 * 128 * 5 + 128) + (128 * 128 * 5 + 128)
ESCM_FULLY = CONVS + 2 * rnn(3, 256, 128) + 2 * lin(256, 256, False) + 2 * 256  # 970,496
ESCM_WEAK = CONVS + 2 * lin(128, 128, False) + 2 * rnn(3, 256, 128) + 2 * 256
FA = lin(128, 256, False) + lin(256, 128, False)
FV = lin(512, 256, False) + lin(256, 128, False)
PSP_FULLY_ENC = FA + AGVA + FV + 2 * rnn(4, 128, 128) + PSP_FC
PSP_WEAK_ENC = AGVA + lin(512, 128) + 2 * rnn(4, 128, 128)

HAND_COUNTS = {
    "psp": PSP_FULLY_ENC + HEAD,
    "psp_weak": PSP_WEAK_ENC + PSP_NO_FC + HEAD + lin(29, 1, False),
    "vscg": PSP_FULLY_ENC + ESCM_FULLY + lin(256, 1) + lin(256, 28),
    "vscg_weak": PSP_WEAK_ENC + PSP_FC + ESCM_WEAK + HEAD + lin(29, 1, False),
}
# The reference's rounded hand counts of the *used* layers (M parameters).
REFERENCE_M = {"psp": 1.55, "psp_weak": 1.25, "vscg": 2.51, "vscg_weak": 2.26}


@pytest.mark.parametrize("name", sorted(HAND_COUNTS))
def test_parameter_counts_match_hand_counts(name):
    n = MODELS.create({"name": name}).num_parameters()
    print(f"{name}: {n:,} parameters")
    assert n == HAND_COUNTS[name]
    assert abs(n / 1e6 - REFERENCE_M[name]) < 0.01


def test_escm_plug_in_and_ablations_change_exactly_the_expected_layers():
    base = MODELS.create({"name": "psp"}).num_parameters()
    assert MODELS.create({"name": "psp", "escm": {}}).num_parameters() == base + ESCM_FULLY
    full = HAND_COUNTS["vscg"]
    expect = {
        "no_escm": full - ESCM_FULLY,
        "no_isce": full - CONVS,  # zero-initialised GRUs: no CERE
        "isce_avg": full - CONVS,
        "isce_max": full - CONVS,
        "cere_unshared": full + CONVS,
    }
    for ablation, n in expect.items():
        assert MODELS.create({"name": "vscg", "ablation": ablation}).num_parameters() == n, ablation
    with pytest.raises(ValueError, match="ablation"):
        MODELS.create({"name": "vscg", "ablation": "nope"})


def test_vscg_prediction_thresholds_relevance_and_uses_the_video_category():
    model = MODELS.create({"name": "vscg", "relevance_threshold": 0.7})
    # sigmoid(0) = 0.5 -> bg; sigmoid(ln 4) = 0.8 -> event; just below sigmoid(ln(7/3)) = 0.7 -> bg
    rel = torch.log(torch.tensor([[1.0, 4.0, 7.0 / 3.0 - 1e-4], [4.0, 4.0, 1.0]]))
    cat = torch.zeros(2, 28)
    cat[0, 5] = 1.0
    cat[1, 27] = 2.0
    pred = model.segment_predictions(AVEOutput(event_logits=rel, class_logits=cat))
    assert pred.tolist() == [[28, 5, 28], [27, 27, 28]]


def test_weak_models_weighting_never_changes_the_segment_argmax():
    torch.manual_seed(0)
    model = MODELS.create({"name": "psp_weak"}).eval()
    score = torch.randn(3, 10, 29)
    weighted = model.weighting(score)
    ratio = weighted / score
    assert torch.allclose(ratio, ratio[..., :1].expand_as(ratio), atol=1e-6)  # one scalar per segment
    assert ((ratio >= 0.5) & (ratio < 1.0)).all()


def test_bad_input_shapes_name_the_key_and_shape():
    model = MODELS.create({"name": "psp"})
    batch = model.example_batch(1, torch.Generator().manual_seed(0))
    batch["visual"] = batch["visual"][..., :100]
    with pytest.raises(ValueError, match=r"'visual' must be \(B, T, H, W, 512\), got \(1, 10, 7, 7, 100\)"):
        model(batch)
    with pytest.raises(ValueError, match="no 'audio'"):
        check_ave_inputs({"visual": batch["visual"]}, 128, 512, "psp")


@pytest.mark.parametrize("name", MODELS.names())
def test_every_loss_either_scores_the_model_or_the_pair_is_refused_by_name(name):
    """A model/loss pair that cannot work together fails when the run is built, naming both, never with a
    bare KeyError/AttributeError mid-epoch; the shipped pair always works."""
    from avloc.config import load_config
    from avloc.engine.build import check_model_and_loss
    from avloc.registry import ConfigError

    torch.manual_seed(0)
    model = MODELS.create({"name": name})
    works = []
    for loss_name in LOSSES.names():
        cfg = load_config(None, [f"model.name={name}", f"loss.name={loss_name}"])
        try:
            check_model_and_loss(cfg, model, LOSSES.create(cfg.loss), torch.device("cpu"))
            works.append(loss_name)
        except ConfigError as exc:
            assert f"model '{name}' and loss '{loss_name}' do not work together" in str(exc)
    assert shipped_loss_name(name) in works
