"""avloc's Dropout: nn.Dropout's distribution and gradient with a cheaper CPU mask."""

from __future__ import annotations

import torch

from avloc.models.dropout import Dropout


def test_keeps_one_minus_p_and_rescales():
    torch.manual_seed(0)
    drop = Dropout(0.2).train()
    x = torch.ones(200_000)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.005
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1.25))
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased


def test_gradient_is_the_mask_and_eval_is_identity():
    torch.manual_seed(1)
    drop = Dropout(0.5).train()
    x = torch.randn(64, 32, requires_grad=True)
    y = drop(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)
    drop.eval()
    assert drop(x) is x
    assert Dropout(0.0).train()(x) is x


def test_same_seed_same_mask_and_no_state():
    a = torch.randn(10, 10)
    torch.manual_seed(3)
    m1 = Dropout(0.3).train()(a)
    torch.manual_seed(3)
    m2 = Dropout(0.3).train()(a)
    assert torch.equal(m1, m2)
    assert Dropout(0.3).state_dict() == {}


def test_mask_entries_are_independent_across_the_four_lanes_of_a_draw():
    """Each 64-bit draw feeds four consecutive entries: every lane keeps 1 - p, and neighbours are uncorrelated."""
    from avloc.models.dropout import keep_mask

    torch.manual_seed(4)
    for p in (0.1, 0.5, 0.9):
        keep = keep_mask(torch.empty(400_000), p).float()
        lanes = keep.view(-1, 4)
        assert torch.allclose(lanes.mean(0), torch.full((4,), 1 - p), atol=0.006), (p, lanes.mean(0))
        both = (lanes[:, 0] * lanes[:, 1]).mean().item()
        assert abs(both - (1 - p) ** 2) < 0.006, (p, both)


def test_odd_sizes_and_shapes():
    from avloc.models.dropout import keep_mask

    torch.manual_seed(5)
    for shape in ((1,), (3,), (7, 5), (2, 3, 5)):
        assert keep_mask(torch.empty(shape), 0.3).shape == torch.Size(shape)
