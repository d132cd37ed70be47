"""SoundNet-8: the border-frame trap (white noise must not be a dog), trimming changes nothing else, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avloc.media.weights import WeightsError

NORFOLK_TERRIER = 185  # 0-based ILSVRC index: what the untrimmed network says for any 9.5-10.9 s input
RATE = 22050


@pytest.fixture(scope="module")
def net():
    from avloc.media.backbones.soundnet import SoundNet8

    try:
        return SoundNet8.weights_from_package()
    except WeightsError as exc:
        pytest.skip(str(exc))


def white_noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, int(round(seconds * RATE))).astype(np.float32)


def test_untrimmed_network_calls_white_noise_a_dog(net):
    """The trap is real: keep conv7's border frame and 10 s of white noise is a Norfolk terrier."""
    with torch.no_grad():
        objects, _ = net.heads_logits(net.conv7(torch.from_numpy(white_noise(10.0))[None], drop_border=False))
    assert objects.max() < -20  # every logit blown far negative by the border frame
    assert objects[0, :, 0].argmax() == NORFOLK_TERRIER


def test_white_noise_is_not_a_dog(net):
    """220,500 samples of white noise, through what avloc uses (border frame dropped, window looped)."""
    from avloc.inference.event_groups import load_event_groups

    objects, places = net.class_probs(white_noise(10.0), np.array([0.0]), 10.0)  # (1, 1000), (1, 401)
    assert objects.argmax() != NORFOLK_TERRIER
    assert load_event_groups().mass(objects)[0, load_event_groups().index("dog")] < 0.15
    with torch.no_grad():
        logits, _ = net.heads_logits(net.conv7(torch.from_numpy(white_noise(11.0))[None]))
    assert logits.max() > -20  # no blown-up output left


@pytest.mark.parametrize("seconds", [11.0, 12.5, 14.0, 20.0])
def test_dropping_the_border_frame_changes_no_other_output(net, seconds):
    x = torch.from_numpy(white_noise(seconds, seed=1))[None]
    with torch.no_grad():
        full, _ = net.heads_logits(net.conv7(x, drop_border=False))  # (1, 1000, n_full)
        trimmed, _ = net.heads_logits(net.conv7(x))  # (1, 1000, n_trim)
    n = trimmed.shape[-1]
    assert n >= 1 and n in (full.shape[-1], full.shape[-1] - 1)
    assert torch.allclose(trimmed, full[..., :n], atol=1e-4)


def test_embed_one_vector_per_window_any_length(net):
    wave = white_noise(2.5)
    emb = net.embed(wave, np.array([0.0, 1.0, 2.0]), 1.0)  # last window is cut at 2.5 s
    assert net.cfg.layer == "pool5" and emb.shape == (3, 256) and torch.isfinite(emb).all()
    assert net.embed(np.zeros(0, np.float32), np.array([0.0]), 1.0).shape == (1, 256)  # silent clip


def test_tapped_layer_is_an_option(net):
    """conv7 is the map the heads read (border frame dropped); pool5 and conv6 are on the way to it."""
    from avloc.media.backbones import create_backbone

    x = torch.from_numpy(white_noise(11.0, seed=2))[None]
    with torch.no_grad():
        maps = {layer: net.layer_map(x, layer) for layer in ("pool5", "conv6", "conv7")}
        assert torch.equal(maps["conv7"], net.conv7(x))
    assert [m.shape[1] for m in maps.values()] == [256, 512, 1024]
    assert maps["pool5"].shape[2] == 30 and maps["conv6"].shape[2] == 16  # 8,192- and 16,384-sample hops
    conv6 = create_backbone("soundnet8", layer="conv6")
    assert conv6.out_dim == 512 and conv6.embed(white_noise(2.0), np.array([0.0]), 1.0).shape == (1, 512)
    with pytest.raises(ValueError, match="soundnet8 layer 'fc7'"):
        create_backbone("soundnet8", layer="fc7")
    with pytest.raises(ValueError, match="aisfx' has no layer option"):
        create_backbone("aisfx", layer="conv7")


def test_wrong_file_is_refused_by_name(tmp_path):
    from avloc.media.backbones.soundnet import SoundNet8

    bad = tmp_path / "sound8.npy"
    np.save(bad, np.zeros(3))
    with pytest.raises(WeightsError, match="sound8.npy"):
        SoundNet8.from_file(bad)
