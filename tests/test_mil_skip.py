"""MIL's linear skip: the logits are the encoder path's plus a linear read-out of concat(audio, visual)."""

from __future__ import annotations

import torch

from avloc.catalog import create_model

DIMS = {"audio_dim": 6, "visual_dim": 10, "num_classes": 4, "hidden": 8}


def test_linear_skip_adds_linear_mil_read_out():
    torch.manual_seed(0)
    model = create_model("mil", **DIMS, linear_skip=True).eval()
    plain = create_model("mil", **DIMS).eval()
    assert model.num_parameters() - plain.num_parameters() == (6 + 10) * 4  # no bias: the head has one
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("skip.")})
    batch = model.example_batch(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, ref = model(batch), plain(batch)
    skip = model.skip(torch.cat([batch["audio"], batch["visual"]], dim=-1))
    assert torch.allclose(out.cas_logits, ref.cas_logits + skip, atol=1e-5)
