"""The initialisation of every AVE model follows its official code, layer by layer.

Official scheme (read from the four reference repos): the layers listed in ``XAVIER`` get
``xavier_uniform_`` on their weight and keep PyTorch's default bias; every other Linear / Conv1d keeps
PyTorch's default (kaiming-uniform with a = sqrt(5): U(+-1/sqrt(fan_in)) for weight and bias); LSTMs and
GRUs keep theirs (U(+-1/sqrt(hidden))); LayerNorms start at (1, 0); ``nn.MultiheadAttention`` keeps its own
(xavier-uniform in-projection, zero in-projection and out-projection biases), as CMBS's reference builds
it. No layer is zero-initialised (the official ``init_layers`` helpers that zero biases belong to modules
the official forwards never use).

A weight is recognised from its empirical standard deviation: a uniform U(+-b) has std b/sqrt(3). The
tolerance is 5 standard errors of that estimate, and every pinned layer is checked to be told apart from
the other scheme at that tolerance, so the test fails if a layer switches scheme.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avloc.catalog import MODELS

AGVA = ("attention.affine_audio", "attention.affine_video", "attention.affine_v", "attention.affine_g",
        "attention.affine_h")
PSP_BRANCHES = ("psp.v_L1", "psp.v_L2", "psp.a_L1", "psp.a_L2")
PSP_FC = ("psp.v_fc", "psp.a_fc")

# Layers (module paths in avloc) whose weight the official code initialises with xavier_uniform_.
XAVIER: dict[str, set[str]] = {
    # PSP fully (fully_model.py): AVGA, the PSP branches and fc, the head L1/L2; fa/fv default.
    "psp": {f"encoder.{n}" for n in (*AGVA, *PSP_BRANCHES, *PSP_FC)} | {"head.L1", "head.L2"},
    # PSP weak (weakly_model.py): AVGA, the PSP branches, the head; linear_v and W3 default.
    "psp_weak": {f"encoder.{n}" for n in (*AGVA, *PSP_BRANCHES)} | {"head.L1", "head.L2"},
    # VSCG fully (vscgfully_model.py): as PSP fully plus ESCM's a_fc/v_fc and L3/L4 (relevance, category).
    "vscg": {f"encoder.{n}" for n in (*AGVA, *PSP_BRANCHES, *PSP_FC)}
    | {"escm.a_fc", "escm.v_fc", "relevance", "category"},
    # VSCG weak (vscgweakly_model.py): AVGA, PSP branches and fc, ESCM L1/L2, the head.
    "vscg_weak": {f"encoder.{n}" for n in (*AGVA, *PSP_BRANCHES, *PSP_FC)}
    | {"escm.L1", "escm.L2", "head.L1", "head.L2"},
    # AVEL (AVE-ECCV18 models.py att_Net): AVGA and L1/L2 (fc1/fc2 here).
    "avel": {*AGVA, "fc1", "fc2"},
    "avel_weak": {*AGVA, "fc1", "fc2"},
    # CMBS (model/main_model.py, models.py): no explicit init anywhere.
    "cmbs": set(),
    "cmbs_weak": set(),
}
AVE_MODELS = sorted(XAVIER)


def uniform_bound(kind: str, weight: torch.Tensor) -> float:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return math.sqrt(6.0 / (fan_in + fan_out)) if kind == "xavier" else 1.0 / math.sqrt(fan_in)


def tolerance(n: int) -> float:
    """5 standard errors of the relative std estimate of n uniform draws (kurtosis 1.8)."""
    return 5.0 * math.sqrt(0.8 / (4 * n))


def check_uniform(name: str, t: torch.Tensor, bound: float) -> None:
    t = t.detach().double()
    assert t.abs().max().item() <= bound * (1 + 1e-6), f"{name}: |w| beyond U(+-{bound:.4g})"
    if t.numel() < 8:  # too few draws for a spread: the bound alone
        return
    ratio = t.std().item() * math.sqrt(3) / bound
    assert abs(ratio - 1) < tolerance(t.numel()), f"{name}: std is {ratio:.3f} x that of U(+-{bound:.4g})"


def expected_scheme(model_name: str, module_name: str) -> str:
    return "xavier" if module_name in XAVIER[model_name] else "default"


@pytest.fixture(params=AVE_MODELS)
def ave_model(request):
    torch.manual_seed(0)
    return request.param, MODELS.create({"name": request.param})


def test_every_ave_model_is_pinned():
    ave = {n for n in MODELS.names() if MODELS.get(n).task == "ave"}
    assert ave == set(AVE_MODELS), "a new AVE model needs its official init scheme listed here"


def test_pinned_layers_exist(ave_model):
    name, model = ave_model
    modules = dict(model.named_modules())
    missing = sorted(XAVIER[name] - set(modules))
    assert not missing, f"{name}: no such layers {missing}"


def test_initialisation_follows_the_official_scheme(ave_model):
    name, model = ave_model
    seen = 0
    for mname, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d)) and not mname.endswith("out_proj"):
            kind = expected_scheme(name, mname)
            other = "default" if kind == "xavier" else "xavier"
            w = module.weight
            b_kind, b_other = uniform_bound(kind, w), uniform_bound(other, w)
            if kind == "xavier":  # the test can tell the two schemes apart for every pinned layer
                assert abs(b_other / b_kind - 1) > tolerance(w.numel()), f"{name}.{mname}: schemes alike"
            check_uniform(f"{name}.{mname}.weight ({kind})", w, b_kind)
            if module.bias is not None:  # PyTorch's default bias, also under a xavier weight
                check_uniform(f"{name}.{mname}.bias", module.bias, 1.0 / math.sqrt(w[0].numel()))
            seen += 1
        elif isinstance(module, (nn.LSTM, nn.GRU)):
            for pname, p in module.named_parameters():
                check_uniform(f"{name}.{mname}.{pname}", p, 1.0 / math.sqrt(module.hidden_size))
        elif isinstance(module, nn.LayerNorm):
            assert torch.equal(module.weight, torch.ones_like(module.weight)), f"{name}.{mname}"
            assert torch.equal(module.bias, torch.zeros_like(module.bias)), f"{name}.{mname}"
        elif isinstance(module, nn.MultiheadAttention):
            check_uniform(f"{name}.{mname}.in_proj_weight", module.in_proj_weight,
                          uniform_bound("xavier", module.in_proj_weight))
            assert not module.in_proj_bias.any() and not module.out_proj.bias.any(), f"{name}.{mname}"
            check_uniform(f"{name}.{mname}.out_proj.weight", module.out_proj.weight,
                          uniform_bound("default", module.out_proj.weight))
    assert seen > 0


def test_scheme_check_rejects_a_switched_layer():
    """Re-initialising one pinned xavier layer with PyTorch's default makes the check fail."""
    torch.manual_seed(0)
    model = MODELS.create({"name": "psp"})
    model.encoder.psp.v_fc.reset_parameters()  # default kaiming-uniform instead of xavier
    with pytest.raises(AssertionError, match="psp.v_fc"):
        test_initialisation_follows_the_official_scheme(("psp", model))
