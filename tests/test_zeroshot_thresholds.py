"""The zero-shot detector's decisions on hand-made per-second tables (no network runs): the UCS vocabulary hears
a dog SoundNet's tables do not, the threshold chosen on a labelled split is the right one, the score cache
round-trips, and thresholds are never chosen on a test split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avloc.inference.zeroshot_eval import choose_threshold, composed_truth, evaluate_zero_shot, group_classes
from avloc.inference.zeroshot_report import tune_thresholds
from avloc.inference.sound_vocab import load_vocabulary
from avloc.inference.zeroshot import ZeroShotConfig, detect
from avloc.inference.zeroshot_scores import SecondScores, load_scores, save_scores
from avloc.media.ucs_vocab import UCS_CATEGORIES

DOG = 151  # ILSVRC index of the first dog breed (n02085620, Chihuahua)
ANIMALS = UCS_CATEGORIES.index("ANIMALS")


def tables(video: str, heard: dict[range, float], seen: dict[range, float], t: int = 10) -> SecondScores:
    """A video whose aiSFX ANIMALS mass and EfficientNet dog probability are given per range of seconds."""
    visual, ucs = np.zeros((t, 1000)), np.zeros((t, len(UCS_CATEGORIES)))
    for r, p in seen.items():
        visual[list(r), DOG] = p
    for r, p in heard.items():
        ucs[list(r), ANIMALS] = p
    return SecondScores(video, float(t), visual, np.zeros((t, 1000)), ucs)


def test_ucs_vocabulary_hears_the_dog_that_soundnet_tables_miss():
    s = tables("v", heard={range(2, 6): 0.8}, seen={range(0, 10): 0.8})
    ucs = detect(s, load_vocabulary("ucs"), ZeroShotConfig("ucs", 0.3, 0.25))
    av = ucs.events.of_track("av")
    assert av.label.tolist() == ["dog"] and (av.start[0], av.end[0]) == (2.0, 6.0)
    assert ucs.thresholds["av"]["dog"] == 0.3
    old = detect(s, load_vocabulary("soundnet"), ZeroShotConfig("soundnet", 0.3, 0.25))  # its table is silent
    assert len(old.events.of_track("av")) == 0 and "dog" in old.events.of_track("visual").label
    seen_only = detect(tables("w", {}, {range(0, 10): 0.8}), load_vocabulary("ucs"), ZeroShotConfig("ucs", 0.3, 0.25))
    assert len(seen_only.events.of_track("av")) == 0  # seen, not heard: no audio-visual event


def labelled_case(tmp_path):
    """Three videos: a true dog 0-4 s (agreement 0.6), a false dog 2-6 s (0.35), a true dog 5-10 s (0.475)."""
    scores = {"a": tables("a", {range(0, 4): 0.6}, {range(0, 4): 0.6}),
              "b": tables("b", {range(2, 6): 0.35}, {range(2, 6): 0.35}),
              "c": tables("c", {range(5, 10): 0.475}, {range(5, 10): 0.475})}
    events = {"a": [["Dog bark", 0, 4]], "b": [], "c": [["Dog bark", 5, 10]]}
    videos = {}
    for v, ev in events.items():
        kinds = ["bg"] * 10
        for _, s, e in ev:
            kinds[s:e] = ["av"] * (e - s)
        videos[v] = {"split": "val", "audio": ["Dog bark"] * 10, "kinds": kinds, "events": ev}
    (tmp_path / "timeline.json").write_text(json.dumps({"videos": videos}))
    (tmp_path / "map.json").write_text(json.dumps({"classes": {"Dog bark": {"depicts": ["n02085620"]}}}))
    return scores, composed_truth(tmp_path, "val")


def test_threshold_selection_picks_the_right_threshold(tmp_path):
    scores, truth = labelled_case(tmp_path)
    vocab = load_vocabulary("ucs")
    classes = group_classes(vocab, tmp_path / "map.json")
    assert classes["dog"] == "Dog bark" and classes["bird"] == ""
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    best, rows = choose_threshold(scores, truth, vocab, classes, grid)
    # 0.40 and 0.45 both keep the two true dogs and drop the false one (F1 1); ties go to the higher one
    assert best.threshold == 0.45 and best.f1 == 1.0 and best.false_events == 0
    low = next(r for r in rows if r.threshold == 0.3)
    assert (low.found, low.matched, low.false_events) == (3, 2, 1)
    high = evaluate_zero_shot(scores, truth, vocab, classes, 0.5)
    assert (high.matched, high.recall) == (1, 0.5)
    assert high.per_second_acc == pytest.approx((10 + 10 + 5) / 30)  # c's 5 dog seconds missed


def test_tuning_refuses_the_test_split_and_the_cache_round_trips(tmp_path):
    scores, _ = labelled_case(tmp_path)
    cache = save_scores(list(scores.values()), tmp_path / "cache.npz")
    back = load_scores(cache)
    assert set(back) == {"a", "b", "c"} and np.allclose(back["a"].ucs, scores["a"].ucs)
    with pytest.raises(ValueError, match="never on 'test'"):
        tune_thresholds(cache, tmp_path, "test", ["ucs"], tmp_path / "map.json")
    table = tune_thresholds(cache, tmp_path, "val", ["ucs"], tmp_path / "map.json", "avloc zeroshot tune ...")
    (tmp_path / "thr.json").write_text(json.dumps(table))
    cfg = ZeroShotConfig.from_file(tmp_path / "thr.json", "ucs")
    assert cfg.av_threshold == table["vocabularies"]["ucs"]["av_threshold"] == 0.47  # the grid step is 0.01
    with pytest.raises(ValueError, match="no zero-shot thresholds for vocabulary 'soundnet'"):
        ZeroShotConfig.from_file(tmp_path / "thr.json", "soundnet")


def test_wrong_sound_copies_are_seen_not_heard_negatives(tmp_path):
    from avloc.inference.zeroshot_eval import with_wrong_sound_copies

    scores, truth = labelled_case(tmp_path)
    s2, t2 = with_wrong_sound_copies(scores, truth)
    assert len(s2) == 6 and t2["a~wrong_sound"].events == [] and not t2["a~wrong_sound"].seconds.any()
    # a's dog pictures (0.6 at 0-4 s) with b's sound (ANIMALS 0.35 at 2-6 s) agree at 2-4 s with
    # sqrt(0.35 * 0.6) = 0.458: one more false event below that threshold (b's and c's copies agree at 0.408)
    vocab = load_vocabulary("ucs")
    classes = group_classes(vocab, tmp_path / "map.json")
    assert evaluate_zero_shot(s2, t2, vocab, classes, 0.45).false_events == 1
    assert evaluate_zero_shot(s2, t2, vocab, classes, 0.46).false_events == 0
    table = tune_thresholds(save_scores(list(scores.values()), tmp_path / "c.npz"), tmp_path, "val", ["ucs"],
                            tmp_path / "map.json", wrong_sound=True)
    assert "3 wrong-sound copies" in table["chosen_on"] and table["vocabularies"]["ucs"]["av_threshold"] == 0.47


def test_shipped_thresholds_cover_every_vocabulary_and_say_how_they_were_chosen():
    from avloc.inference.sound_vocab import VOCABULARIES
    from avloc.inference.zeroshot import shipped_thresholds

    ship = shipped_thresholds()
    assert "split 'val'" in ship["chosen_on"] and ship["command"].startswith("avloc zeroshot tune")
    for name in VOCABULARIES:
        assert 0 < ZeroShotConfig(name).resolved().av_threshold < 1


def test_cli_tunes_on_val_and_scores_a_split_from_the_cache(tmp_path, capsys):
    from avloc.inference.zeroshot_eval import composed_split_videos
    from avloc.tools.cli import main

    scores, _ = labelled_case(tmp_path)
    cache = save_scores(list(scores.values()), tmp_path / "cache.npz")
    common = ["--cache", str(cache), "--data", str(tmp_path), "--class-map", str(tmp_path / "map.json"),
              "--vocab", "ucs", "soundnet"]
    assert main(["zeroshot", "tune", *common, "--split", "val", "--out", str(tmp_path / "thr.json")]) == 0
    table = json.loads((tmp_path / "thr.json").read_text())
    assert table["vocabularies"]["ucs"]["av_threshold"] == 0.47 and "--split val" in table["command"]
    capsys.readouterr()
    assert main(["zeroshot", "eval", *common, "--split", "val", "--thresholds", str(tmp_path / "thr.json")]) == 0
    out = capsys.readouterr().out
    assert "| ucs | 0.47 | 0 | 100.0 | 2 | 2 | 0 | 100.0 | 100.0 | 100.0 |" in out  # every second and event right
    assert "| soundnet | " in out and "| Dog bark | 2 / 2, 0 | 0 / 2, 0 |" in out  # its sound tables are silent
    assert main(["zeroshot", "tune", *common, "--split", "test", "--out", str(tmp_path / "t.json")]) == 2
    (tmp_path / "valSet.txt").write_text("Dog bark&a&good&0&4\nbackground&b&good&0&0\n")
    assert [p.name for p in composed_split_videos(tmp_path, "val")] == ["a.mp4", "b.mp4"]


def test_a_bad_group_table_is_named_with_the_group(tmp_path):
    from avloc.inference.sound_vocab import UCS_TABLE

    rows = UCS_TABLE.read_text().splitlines()
    for bad, msg in (("clock\tobject\tTICKS\tn02708093 analog clock", "unknown UCS Category 'TICKS'"),
                     ("clock\tobject\tCLOCKS\tn99999999 nothing", "unknown ILSVRC wnid 'n99999999'")):
        table = tmp_path / f"t{len(msg)}.tsv"
        table.write_text("\n".join([*rows[:-1], bad]) + "\n")
        with pytest.raises(ValueError, match=msg):
            load_vocabulary("ucs", table)
    with pytest.raises(ValueError, match="unknown zero-shot vocabulary 'vggish'"):
        ZeroShotConfig("vggish").resolved()


def test_predict_refuses_zero_shot_options_without_zero_shot(tmp_path, capsys):
    from avloc.tools.cli import main
    from media_clips import write_clip

    clip = write_clip(tmp_path / "clip.mp4", 1.0)
    for extra in (["--vocab", "soundnet"], ["--thresholds", str(tmp_path / "t.json")]):
        rc = main(["predict", str(clip), "--run", str(tmp_path / "run"), "--out", str(tmp_path / "out"), *extra])
        err = capsys.readouterr().err
        assert rc == 2 and "use them with --zero-shot" in err, err


def test_an_engine_net_of_a_soundnet_layer_map_knows_its_layer():
    """The bf16 check of ``--precision auto`` is keyed by (backbone, layer): a LayerMap must name its layer."""
    from avloc.media.backbones.soundnet import SoundNet8
    from avloc.media.engines import EngineNet

    net = SoundNet8().eval()
    assert EngineNet(net.map_net("pool5"), "soundnet8", "torch").layer == "pool5"
    assert EngineNet(net, "soundnet8", "torch").layer == net.cfg.layer


def test_a_short_dip_is_bridged_between_two_agreeing_seconds_only():
    from avloc.inference.zeroshot import bridge_gaps

    a = np.zeros((10, 2), bool)
    a[[0, 3, 7, 9], 0] = True  # dips of 2, 3 and 1 s
    a[2, 1] = True  # a lone second: nothing on either side to bridge to
    assert (bridge_gaps(a, 0) == a).all()
    assert np.flatnonzero(bridge_gaps(a, 2)[:, 0]).tolist() == [0, 1, 2, 3, 7, 8, 9]
    assert bridge_gaps(a, 3)[:, 0].all() and np.flatnonzero(bridge_gaps(a, 3)[:, 1]).tolist() == [2]


def test_the_choice_bridges_a_dip_inside_a_true_event(tmp_path):
    """A dog barks 0-10 s, heard at 0-4 and 6-10 s: unbridged it is two false halves (tIoU 0.4); bridging
    2 s makes it the true event, and the choice takes the shortest bridge that does."""
    scores = {"d": tables("d", {range(0, 4): 0.6, range(6, 10): 0.6}, {range(0, 10): 0.6})}
    videos = {"d": {"split": "val", "audio": ["Dog bark"] * 10, "kinds": ["av"] * 10,
                    "events": [["Dog bark", 0, 10]]}}
    (tmp_path / "timeline.json").write_text(json.dumps({"videos": videos}))
    (tmp_path / "map.json").write_text(json.dumps({"classes": {"Dog bark": {"depicts": ["n02085620"]}}}))
    truth, vocab = composed_truth(tmp_path, "val"), load_vocabulary("ucs")
    classes = group_classes(vocab, tmp_path / "map.json")
    plain = evaluate_zero_shot(scores, truth, vocab, classes, 0.5)
    assert (plain.found, plain.matched, plain.per_second_acc) == (2, 0, 0.8)
    best, _ = choose_threshold(scores, truth, vocab, classes, np.array([0.5]))
    assert (best.max_gap, best.found, best.matched, best.per_second_acc) == (2, 1, 1, 1.0)
    cfg = ZeroShotConfig("ucs", 0.5, 0.25, max_gap=best.max_gap)
    av = detect(scores["d"], vocab, cfg).events.of_track("av")
    assert (av.start.tolist(), av.end.tolist()) == ([0.0], [10.0])
    table = tune_thresholds(save_scores(list(scores.values()), tmp_path / "c.npz"), tmp_path, "val", ["ucs"],
                            tmp_path / "map.json")
    (tmp_path / "thr.json").write_text(json.dumps(table))
    assert ZeroShotConfig.from_file(tmp_path / "thr.json", "ucs").max_gap == 2


def test_a_thresholds_file_without_a_gap_bridges_nothing():
    from pathlib import Path

    first = Path(__file__).resolve().parents[1] / "configs" / "zeroshot" / "first_shipped.json"
    assert ZeroShotConfig.from_file(first, "soundnet").resolved().max_gap == 0  # chosen before bridging
    assert ZeroShotConfig("ucs").resolved().max_gap in (0, 1, 2, 3)  # the shipped, val-chosen one
