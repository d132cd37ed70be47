"""The photo-transfer probe: a class whose pictures look alike across splits is recognised on val and test, a
class whose splits show unrelated-looking things is not; the shipped transfer class map keeps only the first kind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from avloc.media.compose.sources import SPLITS, MediaSources
from avloc.media.probes.photo_transfer import photo_transfer


def _sources_and_features(seed: int = 0) -> tuple[MediaSources, dict[str, np.ndarray]]:
    """Unrelated photos around the origin; 'alike': every split's photos along one direction; 'unalike': each
    split's photos along a direction of their own (other objects in every split)."""
    rng = np.random.default_rng(seed)
    dim = 64
    def direction() -> np.ndarray:
        v = rng.normal(0, 1, dim)
        return 6 * v / np.linalg.norm(v)

    centre = {"alike": direction()} | {f"unalike_{s}": direction() for s in SPLITS}
    src = MediaSources(classes=["alike", "unalike", "audio"], visual_classes=["alike", "unalike"])
    feats: dict[str, np.ndarray] = {}

    def photos(prefix: str, n: int, mean: np.ndarray) -> list[Path]:
        out = []
        for i in range(n):
            name = f"{prefix}_{i}.JPEG"
            feats[name] = (mean + rng.normal(0, 1, dim)).astype(np.float32)
            out.append(Path(name))
        return out

    src.photos = {s: {"alike": photos(f"a_{s}", 12, centre["alike"]),
                      "unalike": photos(f"u_{s}", 12, centre[f"unalike_{s}"])} for s in SPLITS}
    src.unrelated = {s: photos(f"r_{s}", 150, np.zeros(dim)) for s in SPLITS}
    return src, feats


def test_probe_recognises_only_the_class_whose_pictures_carry_over():
    src, feats = _sources_and_features()
    res = photo_transfer(src, feats)
    for split in ("val", "test"):
        assert res.recall[split]["alike"] >= 0.9
        assert res.recall[split]["unalike"] <= 0.2
        assert res.recall[split]["unrelated"] >= 0.9
    assert res.photos["test"] == {"alike": 12, "unalike": 12, "unrelated": 150}
    assert res.l2 > 0


def test_probe_refuses_a_map_without_seen_classes():
    src = MediaSources(classes=["a"], visual_classes=[])
    with pytest.raises(ValueError, match="no seen class"):
        photo_transfer(src, {})


def test_transfer_map_keeps_the_big_families_and_excludes_look_alikes():
    root = Path(__file__).resolve().parents[1] / "configs" / "media"
    full, transfer = (json.loads((root / n).read_text())["classes"]
                      for n in ("esc10_imagenet.json", "esc10_imagenet_transfer.json"))
    assert sorted(transfer) == ["Dog bark", "Rooster"]
    assert transfer["Dog bark"]["depicts"] == full["Dog bark"]["depicts"]
    rooster = transfer["Rooster"]["depicts"] + transfer["Rooster"]["stands_in"]
    assert len(rooster) == len(set(rooster)) == 59 and {"n01514668", "n01514859"} <= set(rooster)
    never = set(json.loads((root / "esc10_imagenet_transfer.json").read_text())["not_unrelated"]["wnids"])
    assert "n03218198" in never and "n02114367" in never  # dogsled, timber wolf
    assert not never & set(rooster + transfer["Dog bark"]["depicts"])
    about = json.loads((root / "esc10_imagenet_transfer.json").read_text())["about"]
    assert "avloc bench photos" in about  # the tool that measured the rule, not a script that is not shipped
    for script in re.findall(r"scripts/\w+\.py", about):
        assert (root.parents[1] / script).is_file(), script


def test_bench_photos_on_real_photos(shared_dir, tmp_path):
    esc, images = shared_dir / "real" / "esc10", shared_dir / "real" / "imagenet_samples"
    if not (esc.is_dir() and images.is_dir()):
        pytest.skip("../shared/real is absent")
    from avloc.media.backbones import create_backbone
    from avloc.media.probes.photo_transfer import transfer_table

    # every dog and bird and a fifth of the other photos, to keep the backbone's time small
    mapped = {w for entry in json.loads((Path(__file__).resolve().parents[1] / "configs" / "media" /
                                         "esc10_imagenet_transfer.json").read_text())["classes"].values()
              for w in entry.get("depicts", []) + entry.get("stands_in", [])}
    subset = tmp_path / "photos"
    subset.mkdir()
    for i, p in enumerate(sorted(images.glob("n*_*"))):
        if p.name[:9] in mapped or i % 5 == 0:
            (subset / p.name).symlink_to(p)
    maps = {"media/esc10_imagenet_transfer.json": Path(__file__).resolve().parents[1] / "configs" / "media" /
            "esc10_imagenet_transfer.json"}
    rep = transfer_table(esc, subset, maps, tmp_path / "out", create_backbone("efficientnet_lite0").eval())
    r = rep["media/esc10_imagenet_transfer.json"]["recall"]
    assert r["val"]["Dog bark"] >= 0.6 and r["val"]["Rooster"] >= 0.6
    assert (tmp_path / "out" / "photos.md").read_text().count("| media/esc10_imagenet_transfer.json |") == 3


def test_pooled_features_cache_follows_the_weights_not_only_the_name(tmp_path, monkeypatch):
    """Two backbones of one registered name with other weights (``create_backbone(name, weights=...)``) must not
    read each other's cached features."""
    import torch

    from avloc.media.backbones.base import BACKBONES
    from avloc.media.probes import photo_transfer as pt

    rng = np.random.default_rng(0)
    pics = {f"n0000000{i}_x.JPEG": rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for i in range(2)}
    monkeypatch.setattr(pt, "read_image", lambda p: pics[Path(p).name])
    files = [Path(n) for n in pics]
    torch.manual_seed(0)
    net = BACKBONES.get("efficientnet_lite0")().eval()
    first = pt.pooled_features(files, net, tmp_path)
    with torch.no_grad():
        next(net.parameters()).mul_(0.5)  # other weights, the same name and resize mode
    second = pt.pooled_features(files, net, tmp_path)
    assert not np.allclose(first[files[0].name], second[files[0].name])
    again = pt.pooled_features(files, net, tmp_path)  # unchanged weights: read from the cache
    np.testing.assert_array_equal(again[files[0].name], second[files[0].name])
    assert len(list(tmp_path.glob("pooled_efficientnet_lite0_squash_*.npz"))) == 2


def test_bench_photos_takes_one_visual_backbone(tmp_path, monkeypatch, capsys):
    from avloc.media.backbones.base import BACKBONES
    from avloc.media.probes import photo_transfer as pt
    from avloc.tools.cli import main

    seen = {}

    def fake(esc, images, maps, out, backbone):
        seen["backbone"], seen["maps"] = backbone.registered_name, maps
        out.mkdir(parents=True, exist_ok=True)
        (out / "photos.md").write_text("table\n")
        return {}

    monkeypatch.setattr(pt, "transfer_table", fake)
    monkeypatch.setattr("avloc.media.backbones.create_backbone", lambda name: BACKBONES.get(name)())  # no weights
    common = ["bench", "photos", "--esc", str(tmp_path), "--images", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main(common + ["--visual", "resnet18", "efficientnet_lite0"]) == 2
    assert "one --visual backbone" in capsys.readouterr().out
    assert main(common + ["--visual", "efficientnet_lite0"]) == 0
    assert seen["backbone"] == "efficientnet_lite0" and list(seen["maps"]) == ["media/esc10_imagenet.json"]
