"""aiSFX's UCS heads as a named sound vocabulary: structure, loading, and real ESC-10 sounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avloc.media.ucs_vocab import HEADS, UCS_CATEGORIES, WINDOW_S, UCSHeads, head_classes
from avloc.media.weights import WeightsError

EXPECTED = {"Dog bark": "ANIMALS", "Rain": "RAIN", "Sea waves": "WATER", "Baby cry": "VOICES",
            "Clock tick": "CLOCKS", "Person sneeze": "HUMAN", "Helicopter": "AIRCRAFT", "Chainsaw": "TOOLS",
            "Rooster": "BIRDS", "Fire crackling": "FIRE"}


def test_head_sizes_match_the_checkpoint_layout():
    assert len(UCS_CATEGORIES) == 82 and list(UCS_CATEGORIES) == sorted(UCS_CATEGORIES)
    assert [len(head_classes(h)) for h in HEADS] == [78, 79, 69]
    probs = UCSHeads()(torch.rand(4, 512))  # random weights: still a distribution over the 82 names
    assert probs.shape == (4, 82) and torch.allclose(probs[:, [UCS_CATEGORIES.index("ARCHIVED")]], torch.zeros(4, 1))


def test_real_sounds_land_on_their_category(shared_dir):
    """One held-out (fold 5) clip per ESC-10 class: the expected Category is in the top 3 for most of them
    (chance: 3 of 82 names per clip)."""
    from avloc.media.probes.esc import list_esc
    from avloc.media.backbones import create_backbone
    from avloc.media.decode import decode_audio

    folder = shared_dir / "real" / "esc10"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    try:
        net, heads = create_backbone("aisfx"), UCSHeads.pretrained()
    except WeightsError as exc:
        pytest.skip(str(exc))
    clips, names = list_esc(folder)
    hits = 0
    for label, name in enumerate(names):
        clip = next(c for c in clips if c.label == label and c.fold == 5)
        wave = decode_audio(clip.path, net.sample_rate)
        with torch.no_grad():
            probs = heads(net.embed(wave, np.arange(0.0, max(len(wave) / 44100 - WINDOW_S, 0) + 1e-9, 1.0),
                                    WINDOW_S)).mean(0)  # (82,)
        top3 = [UCS_CATEGORIES[i] for i in probs.topk(3).indices.tolist()]
        hits += EXPECTED[name] in top3
    assert hits >= 5, hits
