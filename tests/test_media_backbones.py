"""Backbones: front ends against a direct numpy DFT + mel filterbank, the public weight layouts, the
ImageNet head on real frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avloc.media.backbones import BACKBONES, create_backbone
from avloc.media.backbones.aisfx import AiSFX
from avloc.media.backbones.vgg import VGG19, VGGish
from avloc.media.weights import WeightsError

DOG_CLASSES = range(151, 269)  # ILSVRC-2012 indices of the dog breeds


def _np_mel(n_fft: int, rate: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangles on the HTK mel scale (2595 log10(1 + f/700)), one band at a time."""
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    freqs = np.arange(n_fft // 2 + 1) * rate / n_fft
    edges = np.linspace(mel(fmin), mel(fmax), n_mels + 2)
    out = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m : m + 3]
        x = mel(freqs)
        rising, falling = (lo < x) & (x <= mid), (mid < x) & (x < hi)
        out[rising, m] = (x[rising] - lo) / (mid - lo)
        out[falling, m] = (hi - x[falling]) / (hi - mid)
    return out


def _np_dft_mag(frame: np.ndarray, n_fft: int) -> np.ndarray:
    """|X_k| of a zero-padded frame by the DFT sum, no FFT."""
    x = np.zeros(n_fft)
    x[: len(frame)] = frame
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    return np.abs((x * np.exp(-2j * np.pi * k * n / n_fft)).sum(1))


def test_aisfx_log_mel_matches_reference():
    rng = np.random.default_rng(0)
    wave = (0.3 * rng.standard_normal(8192)).astype(np.float32)
    net = AiSFX()
    got = net.log_mel(torch.from_numpy(wave)[None])[0].numpy()  # (F, 96)
    padded = np.concatenate([np.zeros(1024), wave, np.zeros(1024)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2048) / 2047)  # Essentia's symmetric Hann
    fb = _np_mel(2048, 44100, 96, 0.0, 22050.0)
    fb /= fb.sum(0, keepdims=True)  # unit_sum bands
    frames = [padded[i : i + 2048] for i in range(0, len(padded) - 2048 + 1, 1024)]
    want = np.stack([np.log10(1 + 1e4 * (_np_dft_mag(f * window, 2048) ** 2 @ fb)) / 9.457798957824707
                     for f in frames])
    assert got.shape == want.shape == (1 + 8192 // 1024, 96)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_vggish_log_mel_matches_reference():
    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    got = VGGish().log_mel(torch.from_numpy(wave)[None])[0].numpy()  # (96, 64)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic Hann (mel_features.py)
    fb = _np_mel(512, 16000, 64, 125.0, 7500.0)
    fb[0] = 0.0
    want = np.stack([np.log(_np_dft_mag(wave[i * 160 : i * 160 + 400] * window, 512) @ fb + 0.01)
                     for i in range(96)])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


VGG19_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
               (14, 256, 256), (16, 256, 256), (19, 256, 512), (21, 512, 512), (23, 512, 512), (25, 512, 512),
               (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512)]  # torchvision vgg19 features


def test_vgg19_reads_the_torchvision_layout(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    state = {}
    for i, cin, cout in VGG19_CONVS:
        state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        state[f"features.{i}.bias"] = torch.zeros(cout)
    state["classifier.6.bias"] = torch.zeros(1000)  # a full file's head is ignored
    torch.save(state, tmp_path / "vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("AVLOC_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(WeightsError, match=r"vgg19-dcbb9e9d.pth at .*empty"):
        create_backbone("vgg19")
    monkeypatch.setenv("AVLOC_WEIGHTS", str(tmp_path))
    net = create_backbone("vgg19")
    assert not net.caffe  # torchvision's own file: torchvision normalisation
    frames = np.random.default_rng(0).integers(0, 255, (1, 240, 320, 3), dtype=np.uint8)
    with torch.no_grad():
        fmap = net(net.preprocess(frames))
    assert fmap.shape == (1, 512, 7, 7) and bool((fmap >= 0).all())
    direct = torch.nn.functional.conv2d(net.preprocess(frames), state["features.0.weight"], padding=1).relu()
    torch.testing.assert_close(net.features[:2](net.preprocess(frames)), direct)
    del state["features.34.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(WeightsError, match=r"broken.pth.*features.34.bias"):
        VGG19.from_file(tmp_path / "broken.pth")


def test_vgg19_caffe_preprocessing_is_bgr_minus_mean():
    frames = np.zeros((1, 224, 224, 3), np.uint8)
    frames[..., 0] = 200  # red
    x = VGG19().preprocess(frames)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), [-103.939, -116.779, 200 - 123.68], atol=1e-4)


def test_vggish_reads_the_torchvggish_layout(tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {}
    for i, cin, cout in [(0, 1, 64), (3, 64, 128), (6, 128, 256), (8, 256, 256), (11, 256, 512), (13, 512, 512)]:
        state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g).half() * 0.05
        state[f"features.{i}.bias"] = torch.zeros(cout).half()
    for i, cin, cout in [(0, 12288, 4096), (2, 4096, 4096), (4, 4096, 128)]:
        state[f"embeddings.{i}.weight"] = (torch.randn(cout, cin, generator=g) * 0.01).half()
        state[f"embeddings.{i}.bias"] = torch.full((cout,), 0.01).half()
    torch.save(state, tmp_path / "vggish-10086976.pth")
    net = VGGish.from_file(tmp_path / "vggish-10086976.pth")
    wave = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    emb = net.embed(wave, np.arange(3) * 0.96, 0.96)
    assert emb.shape == (3, 128) and bool((emb >= 0).all())  # post-ReLU, as AVE stores it
    assert not torch.allclose(emb[0], emb[1])


def test_registry_lists_the_backbones():
    assert {"efficientnet_lite0", "aisfx", "vgg19", "vggish"} <= set(BACKBONES.names())


@pytest.fixture(scope="module")
def efficientnet():
    return create_backbone("efficientnet_lite0")


def test_efficientnet_imagenet_head_sees_a_dog_in_the_llp_clip(shared_dir, efficientnet):
    from avloc.media.decode import iter_frames

    clip = shared_dir / "media" / "llp_BjCEufrlXm4_speech_dog.mp4"
    times, frames = next(iter_frames(clip, np.arange(1, 10, 2.0), chunk=16))
    with torch.no_grad():
        x = efficientnet.preprocess(frames)
        probs = efficientnet.classify(x).softmax(-1)  # (5, 1000)
        fmap = efficientnet(x)
    assert fmap.shape == (5, 1280, 7, 7)
    assert int(probs.mean(0).argmax()) in DOG_CLASSES
    assert sum(int(p.argmax()) in DOG_CLASSES for p in probs) >= 4


def test_aisfx_package_weights_give_non_negative_512d(shared_dir):
    from avloc.media.decode import decode_audio

    net = create_backbone("aisfx")
    wave = decode_audio(shared_dir / "media" / "llp_BjCEufrlXm4_speech_dog.mp4", net.sample_rate)
    with torch.no_grad():
        emb = net.embed(wave, np.arange(3.0), 1.0)
        silent = net.embed(np.zeros(44100, np.float32), np.zeros(1), 1.0)
    assert emb.shape == (3, 512) and bool((emb >= 0).all())
    assert float((emb - silent).abs().max()) > 0.1  # real sound differs from silence


@pytest.mark.parametrize("name", ["efficientnet_lite0", "soundnet8", "aisfx"])
def test_folding_the_batch_norms_keeps_the_function(name):
    """Random weights and random running statistics (so that every BatchNorm does something): the folded
    network computes the same features, has no BatchNorm left, and refuses to fold in training mode."""
    torch.manual_seed(0)
    net = BACKBONES.get(name)()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    with pytest.raises(RuntimeError, match="needs eval mode"):
        net.train().fold_batchnorm()
    net.eval()
    if name == "efficientnet_lite0":
        x = torch.rand(2, 3, 224, 224) * 2 - 1  # two preprocessed frames
    else:
        x = torch.rand(2, net.sample_rate) * 2 - 1  # two 1-s waveform windows
    with torch.no_grad():
        before = net(x)
        pairs = list(net.conv_bn_pairs())
        assert pairs and all(isinstance(net.get_submodule(n), torch.nn.modules.batchnorm._BatchNorm) for _, n in pairs)
        net.fold_batchnorm()
        after = net(x)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4 * float(before.abs().max()))
