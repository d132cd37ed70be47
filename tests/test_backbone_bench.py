"""The backbone benchmark: the exact L2-loss SVM, ESC windows per protocol, ImageNet head on real photos, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avloc.evaluation.linear_svm import fit_linear_svm
from avloc.media.weights import WeightsError


def _dual_coordinate_descent(x: np.ndarray, y: np.ndarray, c: float, epochs: int = 300) -> np.ndarray:
    """liblinear's -s 1 solver (Hsieh et al. 2008, L2-loss dual, no shrinking), plainly, for one class."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    alpha, w = np.zeros(len(x)), np.zeros(xb.shape[1])
    diag = 0.5 / c
    qii = (xb * xb).sum(1) + diag
    for _ in range(epochs):
        for i in range(len(x)):
            g = y[i] * xb[i] @ w - 1 + diag * alpha[i]
            new = max(alpha[i] - g / qii[i], 0.0)
            w += (new - alpha[i]) * y[i] * xb[i]
            alpha[i] = new
    return w


def test_svm_matches_liblinears_dual_solver():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.0, 1.0, (20, 4)), rng.normal(1.0, 1.0, (20, 4)), rng.normal(-1, 1, (20, 4))])
    labels = np.repeat(np.arange(3), 20)
    svm = fit_linear_svm(torch.from_numpy(x), torch.from_numpy(labels), 3, c=0.01, tol=1e-10)
    for k in range(3):
        want = _dual_coordinate_descent(x, np.where(labels == k, 1.0, -1.0), 0.01)
        assert np.allclose(svm.weights[:, k].numpy(), want, atol=1e-6), k
    c = 10.0  # a weakly regularised problem: the primal gradient vanishes at the solution
    w = fit_linear_svm(torch.from_numpy(x), torch.from_numpy(labels), 3, c=c, tol=1e-10).weights.numpy()
    xb = np.hstack([x, np.ones((len(x), 1))])
    y = np.where(labels[:, None] == np.arange(3), 1.0, -1.0)
    margin = np.clip(1 - y * (xb @ w), 0, None)
    grad = w - 2 * c * xb.T @ (y * margin)
    assert np.abs(grad).max() < 1e-6 * np.abs(w).max() * 100


def test_svm_refuses_bad_labels():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        fit_linear_svm(torch.zeros(3, 2), torch.tensor([0, 1, 2]), 2)


def test_fold_accuracies_average_decision_values_per_clip():
    """Windows of one clip are scored together: clips whose windows are mostly clean are right."""
    from avloc.media.probes.esc import fold_accuracies

    rng = np.random.default_rng(1)
    labels = np.tile(np.arange(3), 10)  # 30 clips
    folds = np.repeat(np.arange(1, 6), 6)
    centres = np.eye(3) * 20
    clip_of = np.repeat(np.arange(30), 4)  # 4 windows per clip
    feats = centres[labels[clip_of]] + rng.normal(0, 1, (120, 3))
    feats[::4] = centres[(labels[clip_of[::4]] + 1) % 3]  # one window in four says the wrong class
    acc = fold_accuracies(feats.astype(np.float32), clip_of, labels, folds, 3)
    assert sorted(acc) == [1, 2, 3, 4, 5] and all(a == 1.0 for a in acc.values())


@pytest.fixture(scope="module")
def esc(shared_dir):
    from avloc.media.probes.esc import list_esc

    folder = shared_dir / "real" / "esc10"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return list_esc(folder, limit_per_class=2)


def test_esc_listing_keeps_folds_and_classes(esc):
    clips, names = esc
    assert names[0] == "Dog bark" and len(names) == 10
    assert len(clips) == 20 and {c.fold for c in clips} == {1, 2}  # round-robin over the folds
    assert all(c.path.name.startswith(f"{c.fold}-") for c in clips)


def test_soundnet_windows_follow_the_papers_script(esc):
    """pool5 of the looped 10 s: 27 frames, 3-frame (1-s) windows at every frame, flattened 256 x 3."""
    from avloc.media.probes.esc import clip_windows
    from avloc.media.backbones import create_backbone
    from avloc.media.decode import decode_audio

    try:
        net = create_backbone("soundnet8", layer="pool5")
    except WeightsError as exc:
        pytest.skip(str(exc))
    clip = esc[0][0]
    wave = decode_audio(clip.path, net.sample_rate)
    w = clip_windows(net, wave)
    with torch.no_grad():
        fmap = net.layer_map(torch.from_numpy(np.resize(wave, 220500))[None], "pool5")[0]  # (256, 27)
    assert fmap.shape == (256, 27) and w.shape == (25, 768)
    assert torch.allclose(w[4], fmap[:, 4:7].reshape(-1), atol=1e-5)


def test_cache_is_used_and_refused_for_other_clips(esc, tmp_path, monkeypatch):
    from avloc.media.probes import esc as esc_probe
    from avloc.media.backbones import create_backbone

    try:
        net = create_backbone("aisfx")
    except WeightsError as exc:
        pytest.skip(str(exc))
    clips = esc[0][:2]
    feats, owner = esc_probe.esc_features(clips, net, "k", tmp_path)
    assert feats.shape == (2 * 19, 512) and owner.tolist() == [0] * 19 + [1] * 19
    monkeypatch.setattr(esc_probe, "decode_audio", lambda *a, **k: pytest.fail("cache not used"))
    again, _ = esc_probe.esc_features(clips, net, "k", tmp_path)
    assert np.array_equal(feats, again)
    with pytest.raises(BaseException, match="cache not used"):  # another clip list: recomputed
        esc_probe.esc_features(clips[:1], net, "k", tmp_path)


def test_imagenet_head_on_real_photos(shared_dir):
    from avloc.media.probes.imagenet import image_logits, list_images, read_image, topk_accuracy
    from avloc.media.backbones import create_backbone

    folder = shared_dir / "real" / "imagenet_samples"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    try:
        net = create_backbone("efficientnet_lite0")
    except WeightsError as exc:
        pytest.skip(str(exc))
    files, labels, wnids = list_images(folder, limit=10)
    assert len(wnids) == 1000 and labels[0] == 0 and labels[-1] == 999
    assert read_image(files[0]).dtype == np.uint8 and read_image(files[0]).shape[2] == 3
    acc = topk_accuracy(image_logits(files, net, "center_crop", "k", None), labels)
    assert acc["top1"] >= 0.6 and acc["top5"] >= acc["top1"]  # chance is 0.1 %


def test_bench_backbones_cli_writes_the_table(shared_dir, tmp_path, capsys):
    from avloc.tools.cli import main

    esc, images = shared_dir / "real" / "esc10", shared_dir / "real" / "imagenet_samples"
    if not esc.is_dir() or not images.is_dir():
        pytest.skip("../shared/real is absent")
    from avloc.media.engines import installed

    other = next((e for e in ("onnxruntime", "openvino") if installed(e)), "torch")
    out = tmp_path / "bench"
    rc = main(["bench", "backbones", "--esc", str(esc), "--images", str(images), "--out", str(out),
               "--audio", "soundnet8", "--layers", "pool5", "--visual", "efficientnet_lite0", "--esc-per-class", "2",
               "--images-limit", "4", "--engines", "torch:fp32", f"{other}:fp32:uint8"])
    if rc == 1:
        pytest.skip("backbone weights are not installed")
    assert rc == 0
    report = json.loads((out / "backbones.json").read_text())
    rows = {(r["backbone"], r["variant"], r["engine"], r.get("resize_precision", "-")): r for r in report["rows"]}
    assert set(rows) == {("soundnet8", "pool5", "torch", "-"), ("soundnet8", "pool5", other, "-"),
                         *((("efficientnet_lite0", m, e, r) for m in ("squash", "center_crop")
                            for e, r in (("torch", "fp32"), (other, "uint8"))))}
    sn = rows["soundnet8", "pool5", "torch", "-"]
    assert sn["clips"] == 20 and sorted(sn["folds"]) == ["1", "2"] and sn["published"] == 0.922
    assert sn["vs_reference"] == 0.0 and rows["soundnet8", "pool5", other, "-"]["precision"] == "fp32"
    assert rows["efficientnet_lite0", "squash", other, "uint8"]["vs_reference"] is not None
    text = capsys.readouterr().out
    assert "| ImageNet top-1 / top-5 | efficientnet_lite0 | squash | torch fp32 |" in text
    assert f"| efficientnet_lite0 | squash | {other} fp32, uint8 resize |" in text
    assert (out / "cache" / "esc10_soundnet8_pool5_torch_fp32.npz").is_file()


def test_engine_nets_give_the_layer_map_and_the_head():
    """What the bench (and the zero-shot detector) runs on an engine: SoundNet's layer map as a module of its
    own, EfficientNet's head apart from its network."""
    from avloc.media.backbones.efficientnet import EfficientNetLite0
    from avloc.media.backbones.soundnet import SoundNet8
    from avloc.media.engines import EngineNet, installed

    torch.manual_seed(0)
    sn = SoundNet8().eval()
    wave = torch.randn(2, 22050 * 2) * 0.1  # (2, S)
    engine = "onnxruntime" if installed("onnxruntime") else "torch"
    for layer in ("pool5", "conv7"):
        with torch.no_grad():
            want = sn.layer_map(wave, layer)  # (2, C, L)
        torch.testing.assert_close(EngineNet(sn.map_net(layer), "soundnet8", engine)(wave), want,
                                   rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    with pytest.raises(ValueError, match="layer"):
        sn.map_net("conv9")
    eff = EfficientNetLite0().eval()
    x = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(eff.head(eff(x)), eff.classify(x))


def test_bench_backbones_needs_an_input(capsys):
    from avloc.tools.cli import main

    assert main(["bench", "backbones"]) == 2
    assert "--esc" in capsys.readouterr().out


def test_linear_floor_learns_per_second_classes():
    """Toy AVE-layout data: class c's seconds carry direction c in audio and visual; the floor finds it."""
    from types import SimpleNamespace

    from avloc.evaluation.linear_floor import linear_floor

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (30, 10), generator=g)  # 3 events + background (3)
    audio = torch.nn.functional.one_hot(labels, 8).float() * 3 + torch.randn(30, 10, 8, generator=g)
    visual = torch.nn.functional.one_hot(labels, 5).float()[:, :, None, None, :].expand(30, 10, 2, 2, 5)
    visual = visual * 2 + torch.randn(30, 10, 2, 2, 5, generator=g)
    data = SimpleNamespace(tensors={"audio": audio, "visual": visual, "segment_labels": labels},
                           class_names=["a", "b", "c", "background"],
                           splits={"train": torch.arange(20), "val": torch.arange(20, 25), "test": torch.arange(25, 30)})
    res = linear_floor(data, c_grid=(0.01, 1.0))
    assert res["c"] in (0.01, 1.0) and res["val_acc"] > 0.9 and res["test_acc"] > 0.9


def test_weak_linear_floor_learns_when_from_video_labels_alone():
    """Toy AVE-layout data, weak setting: class c's event seconds carry direction c, the others noise; only the
    video labels (with background-only videos, as AVE's weak setting has) reach the floor, which still finds
    the event seconds: far above the all-background answer."""
    from types import SimpleNamespace

    from avloc.evaluation.linear_floor import weak_linear_floor

    g = torch.Generator().manual_seed(0)
    n, t = 60, 10
    cls = torch.randint(0, 3, (n,), generator=g)
    cls[:12] = 3  # background-only videos
    start = torch.randint(0, 5, (n,), generator=g)
    inside = (torch.arange(t) >= start[:, None]) & (torch.arange(t) < start[:, None] + 4) & (cls[:, None] < 3)
    labels = torch.where(inside, cls[:, None].expand(n, t), torch.full((n, t), 3))  # (n, t)
    hot = torch.nn.functional.one_hot(labels, 4)[..., :3].float()  # background: no direction
    audio = hot @ torch.randn(3, 8, generator=g) * 3 + torch.randn(n, t, 8, generator=g)
    visual = (hot @ torch.randn(3, 5, generator=g) * 2)[:, :, None, None, :] + torch.randn(n, t, 2, 2, 5, generator=g)
    video = torch.nn.functional.one_hot(cls, 4).float()
    order = torch.randperm(n, generator=g)
    data = SimpleNamespace(tensors={"audio": audio, "visual": visual, "segment_labels": labels, "video_label": video},
                           class_names=["a", "b", "c", "background"],
                           splits={"train": order[:40], "val": order[40:50], "test": order[50:]})
    res = weak_linear_floor(data, l2_grid=(1e-3, 1e-1))
    all_bg = float((labels[order[50:]] == 3).double().mean())
    assert res["l2"] in (1e-3, 1e-1) and res["test_acc"] > all_bg + 0.2 and res["val_acc"] > 0.8, (res, all_bg)
