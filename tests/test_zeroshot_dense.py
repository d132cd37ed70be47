"""The zero-shot detector scored by mAP@tIoU (the dense models' metric) on a composed UnAV-layout split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avloc.inference.sound_vocab import load_vocabulary
from avloc.inference.zeroshot_dense import zero_shot_map
from avloc.inference.zeroshot_eval import composed_split_videos, group_classes
from avloc.inference.zeroshot_scores import SecondScores, save_scores

CLASS_MAP = Path(__file__).resolve().parents[1] / "configs" / "media" / "esc10_imagenet_transfer.json"


def _planted(vid: str, t: int, group: str, start: int, end: int) -> SecondScores:
    """Group ``group`` heard and seen (probability 0.9 on one member each) over seconds start..end."""
    vocab = load_vocabulary("ucs")
    j = vocab.names.index(group)
    vis, ucs = np.zeros((t, 1000)), np.zeros((t, vocab.audio.shape[0]))
    vis[start:end, int(np.flatnonzero(vocab.visual[:, j].numpy() > 0)[0])] = 0.9
    ucs[start:end, int(np.flatnonzero(vocab.audio[:, j].numpy() > 0)[0])] = 0.9
    return SecondScores(vid, float(t), vis, np.zeros((t, 1000)), ucs)


@pytest.fixture
def composed(tmp_path):
    videos = {  # u0: a dog found where it is; u1: a bird found at the wrong time; u2 (train) is not scored
        "u0": {"split": "test", "events": [["Dog bark", 2, 5]]},
        "u1": {"split": "test", "events": [["Rooster", 6, 8]]},
        "u2": {"split": "train", "events": [["Rooster", 0, 2]]},
    }
    (tmp_path / "timeline.json").write_text(json.dumps({"videos": {
        v: {**r, "kinds": ["bg"] * 10, "audio": [""] * 10} for v, r in videos.items()}}))
    cache = tmp_path / "cache.npz"
    save_scores([_planted("u0", 10, "dog", 2, 5), _planted("u1", 10, "bird", 1, 3)], cache)
    return tmp_path, cache


def test_map_counts_found_events_per_class(composed):
    folder, cache = composed
    res = zero_shot_map(cache, folder, "test", ["ucs"], CLASS_MAP)["ucs"]
    assert list(res.classes) == ["Dog bark", "Rooster"]
    np.testing.assert_allclose(res.ap[:, 0], 1.0)  # the dog run is the true event at every tIoU
    np.testing.assert_allclose(res.ap[:, 1], 0.0)  # the bird run misses the rooster event
    assert res.average_map == pytest.approx(0.5)
    assert res.num_predictions == 2


def test_unav_split_videos_come_from_the_timeline(composed):
    folder, _ = composed
    assert [p.name for p in composed_split_videos(folder, "test")] == ["u0.mp4", "u1.mp4"]


def test_map_refuses_a_cache_without_the_split(composed, tmp_path):
    folder, _ = composed
    partial = tmp_path / "partial.npz"
    save_scores([_planted("u0", 10, "dog", 2, 5)], partial)
    with pytest.raises(ValueError, match="no cached scores for 1 videos"):
        zero_shot_map(partial, folder, "test", ["ucs"], CLASS_MAP)


def test_transfer_map_groups_stand_for_its_classes():
    stands = {g: c for g, c in group_classes(load_vocabulary("ucs"), CLASS_MAP).items() if c}
    assert stands == {"dog": "Dog bark", "bird": "Rooster"}


def test_cli_map_refuses_the_mismatched_sound_control(composed, capsys):
    from avloc.tools.cli import main

    folder, cache = composed
    args = ["zeroshot", "eval", "--cache", str(cache), "--data", str(folder), "--class-map", str(CLASS_MAP), "--map"]
    assert main(args + ["--mismatched-sound"]) == 2
    assert "--mismatched-sound" in capsys.readouterr().err
    assert main(args + ["--vocab", "ucs"]) == 0
    assert json.loads(capsys.readouterr().out)["ucs"]
