"""Composed real media: splits by source, timelines, and tiny compositions that decode with their labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avloc.media.compose.timeline import ave_timeline, background_timeline, runs, unav_timeline

CLASS_MAP = str(Path(__file__).resolve().parents[1] / "configs" / "media" / "esc10_imagenet.json")


@pytest.fixture(scope="module")
def real(shared_dir):
    sounds, photos = shared_dir / "real" / "esc10", shared_dir / "real" / "imagenet_samples"
    if not sounds.is_dir() or not photos.is_dir():
        pytest.skip("../shared/real is absent")
    return sounds, photos


def test_timelines_label_only_audio_visual_seconds():
    classes, audio_only = ["dog", "clock"], ["rain"]
    for i in range(200):
        rng = np.random.default_rng(i)
        tl = ave_timeline(rng, "dog", audio_only)
        (cls, start, end), = tl.events
        kinds = tl.kinds(classes)
        assert cls == "dog" and 0 <= start < end <= 10 and len(kinds) == 10
        assert [k == "av" for k in kinds] == [start <= s < end for s in range(10)]
        assert set(kinds[:start] + kinds[end:]) <= ({"bg", "a"} if "a" in kinds else {"bg", "v"})
        tl = unav_timeline(rng, classes, audio_only)
        av = [k == "av" for k in tl.kinds(classes)]
        want = np.zeros(len(tl.audio), bool)
        for _, s, e in tl.events:
            assert not want[max(0, s - 1): e + 1].any()  # events are apart
            want[s:e] = True
        assert av == want.tolist() and 20 <= len(av) <= 40


def test_full_share_sets_how_many_events_span_the_clip():
    spans = {share: [ave_timeline(np.random.default_rng(i), "dog", ["rain"], share).events[0][1:]
                     for i in range(300)] for share in (0.0, 2 / 3, 1.0)}
    assert all(e == (0, 10) for e in spans[1.0])
    assert not any(e == (0, 10) for e in spans[0.0])  # every event partial: a 2-9 s run
    assert 0.6 < np.mean([e == (0, 10) for e in spans[2 / 3]]) < 0.75
    kinds = [k for i in range(300) for k in ave_timeline(np.random.default_rng(i), "dog", ["rain"], 0.0).kinds(["dog"])]
    assert {"a", "v", "bg", "av"} <= set(kinds) and 0.4 < kinds.count("av") / len(kinds) < 0.7


def test_background_videos_hold_no_audio_visual_second_but_one_sense_alone_at_times():
    kinds = [background_timeline(np.random.default_rng(i), ["dog", "clock"], ["rain"]) for i in range(300)]
    assert all(tl.events == [] and "av" not in tl.kinds(["dog", "clock"]) for tl in kinds)
    per_video = [set(tl.kinds(["dog", "clock"])) for tl in kinds]
    for sense in ("a", "v"):  # about 30 % of the videos hear (or show) an event class alone
        assert 0.2 < np.mean([sense in k for k in per_video]) < 0.4
    assert 0.3 < np.mean([k == {"bg"} for k in per_video]) < 0.5


def test_runs():
    assert runs(["", "a", "a", "", ""]) == [("", 0, 1), ("a", 1, 3), ("", 3, 5)]


def test_sources_are_split_by_recording_and_photo(real):
    from avloc.media.compose.sources import collect_sources, read_class_map

    mapping, not_unrelated = read_class_map(CLASS_MAP)
    src = collect_sources(*real, mapping, CLASS_MAP, not_unrelated)
    assert src.audio_only() == ["Rain", "Person sneeze", "Helicopter"]
    assert "Dog bark" in src.visual_classes and "Chainsaw" in src.visual_classes
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        files = [p for c in src.classes for p in src.sounds[split][c]]
        files += [p for c in src.visual_classes for p in src.photos[split][c]] + src.unrelated[split]
        for p in files:
            assert seen.setdefault(p.name, split) == split, p  # one split per recording / photo
        folds = {int(p.name[0]) for c in src.classes for p in src.sounds[split][c]}
        assert folds == {"train": {1, 2, 3}, "val": {4}, "test": {5}}[split]
    assert not any(p.name.startswith("n03218198") for s in src.unrelated.values() for p in s)  # dogsled


def test_class_map_refuses_unknown_classes(real, tmp_path):
    from avloc.media.compose.sources import collect_sources

    with pytest.raises(ValueError, match=r"map.json: classes \['Unicorn'\] have no folder"):
        collect_sources(*real, {"Unicorn": []}, str(tmp_path / "map.json"))


def test_composed_ave_decodes_with_its_labels_and_is_deterministic(real, tmp_path):
    from avloc.data.ave_labels import classes_beside, read_annotations
    from avloc.data.ave_files import read_order
    from avloc.media.compose.video import MediaCache, VideoFormat
    from avloc.media.compose.write import write_media_ave
    from avloc.media.decode import decode
    from avloc.tools.cli import main

    out = tmp_path / "ave"
    info = write_media_ave(out, *real, CLASS_MAP, videos=3, seed=1)
    assert info["videos"] == 3
    meta = json.loads((out / "timeline.json").read_text())
    assert meta["composed_real_media"] and meta["classes"] == info["classes"]
    ann = read_annotations(out / "Annotations.txt", classes=meta["classes"])
    assert classes_beside(out / "Annotations.txt") == tuple(meta["classes"])  # what avloc extract reads
    assert [read_order(out / f"{s}_order.h5").tolist() for s in ("train", "val", "test")] == [[0], [1], [2]]
    cache = MediaCache(VideoFormat())
    for row, vid in enumerate(ann.video_ids):
        rec = meta["videos"][vid]
        assert [ann.start[row], ann.end[row]] == rec["events"][0][1:]
        assert (out / ("trainSet.txt", "valSet.txt", "testSet.txt")[row]).read_text().split("&")[1] == vid
        got = decode(out / "videos" / f"{vid}.mp4", np.arange(10) + 0.5, 44100)
        assert abs(got.duration - 10) < 0.2 and got.frames.shape[0] == 10
        photos = {s: photo for s0, e0, photo in rec["photos"] for s in range(s0, e0)}
        for s in range(10):  # the frame of each second is its photo, not another one
            want = cache.photo(real[1] / photos[s]).astype(float)
            assert np.abs(got.frames[s] - want).mean() < 12
        rms = np.sqrt((got.audio[: 441000].reshape(10, -1) ** 2).mean(1))
        quiet = [rms[s] for s in range(10) if rec["audio"][s] == ""]
        assert all(r < 3e-3 for r in quiet)  # near-silence decodes as near-silence, on time
        loud = [rms[s] for s in range(10) if rec["audio"][s]]
        assert not loud or max(loud) > 5e-3
    _features_are_read_with_the_sets_classes(out, meta)
    again = tmp_path / "again"
    assert main(["synth", "ave", "--media", "--sounds", str(real[0]), "--photos", str(real[1]), "--videos", "3",
                 "--seed", "1", "--out", str(again)]) == 0
    for f in sorted((out / "videos").iterdir()) + [out / "Annotations.txt", out / "timeline.json"]:
        assert (again / f.relative_to(out)).read_bytes() == f.read_bytes(), f.name


def test_background_videos_join_the_training_split_and_leave_the_other_videos_as_they_were(real, tmp_path):
    from avloc.catalog import DATASETS
    from avloc.data.ave_files import read_order
    from avloc.media.compose.sources import check_composition
    from avloc.media.compose.write import write_media_ave

    plain, more = tmp_path / "plain", tmp_path / "more"
    write_media_ave(plain, *real, CLASS_MAP, videos=3, seed=1)
    write_media_ave(more, *real, CLASS_MAP, videos=3, seed=1, background_videos=2)
    lines = (more / "Annotations.txt").read_text().splitlines()
    assert [ln.split("&")[0] for ln in lines[1:3]] == ["background"] * 2 and len(lines) == 5
    assert [read_order(more / f"{s}_order.h5").tolist() for s in ("train", "val", "test")] == [[0, 1, 2], [3], [4]]
    for f in sorted((plain / "videos").iterdir()):  # another random stream: the event videos are unchanged
        assert (more / "videos" / f.name).read_bytes() == f.read_bytes(), f.name
    meta = json.loads((more / "timeline.json").read_text())
    assert meta["background_videos"] == 2
    check_composition(more, CLASS_MAP, 2 / 3, 2)
    with pytest.raises(ValueError, match="2 background videos, not 0"):
        check_composition(more, CLASS_MAP, 2 / 3, 0)
    check_composition(plain, CLASS_MAP, 2 / 3, 0)
    _features_are_read_with_the_sets_classes(more, meta)
    import h5py

    for name, shape in (("audio_feature.h5", (5, 10, 8)), ("visual_feature.h5", (5, 10, 7, 7, 4))):
        with h5py.File(more / name, "w") as h5:
            h5.create_dataset("avadataset", data=np.zeros(shape, np.float32))
    weak = DATASETS.create({"name": "ave", "setting": "weak"}, more)
    bg = len(meta["classes"])
    assert weak.tensors["video_label"][1:3, bg].tolist() == [1.0, 1.0]  # what a weakly supervised model learns from
    assert (weak.tensors["segment_labels"][1:3] == bg).all()


def test_composed_unav_annotations_match_the_timeline(real, tmp_path):
    from avloc.media.compose.write import UNAV_ANNOTATIONS, write_media_unav
    from avloc.formats.activitynet import read_ground_truth
    from avloc.media.decode import probe

    out = tmp_path / "unav"
    write_media_unav(out, *real, CLASS_MAP, videos=3, seed=2, seconds=(12, 14))
    gt = read_ground_truth(out / UNAV_ANNOTATIONS)
    meta = json.loads((out / "timeline.json").read_text())
    assert sorted(gt.video_ids) == sorted(meta["videos"]) and set(gt.subsets) == {"train", "validation", "test"}
    for vid, rec in meta["videos"].items():
        info = probe(out / "videos" / f"{vid}.mp4")
        assert abs(info.duration - len(rec["audio"])) < 0.2 and info.has_audio and info.video_codec == "h264"
        av = [k == "av" for k in rec["kinds"]]
        starts = [s for s in range(len(av)) if av[s] and (s == 0 or not av[s - 1])]
        assert starts == [e[1] for e in rec["events"]]


def _features_are_read_with_the_sets_classes(out, meta):
    """The ``ave`` loader takes the set's own class list from classes.txt (background added last)."""
    import h5py

    from avloc.catalog import DATASETS

    rng = np.random.default_rng(0)
    rows = len(meta["videos"])
    for name, shape in (("audio_feature.h5", (rows, 10, 8)), ("visual_feature.h5", (rows, 10, 7, 7, 4))):
        with h5py.File(out / name, "w") as h5:
            h5.create_dataset("avadataset", data=rng.random(shape, dtype=np.float32))
    data = DATASETS.create({"name": "ave"}, out)
    n = len(meta["classes"])
    assert data.class_names == [*meta["classes"], "background"] and data.model_dims()["num_classes"] == n + 1
    for row, vid in enumerate(data.video_ids):
        want = [meta["classes"].index(a) if k == "av" else n for a, k in
                zip(meta["videos"][vid]["audio"], meta["videos"][vid]["kinds"])]
        assert data.tensors["segment_labels"][row].tolist() == want


def test_a_composition_records_what_it_was_made_with_and_refuses_another(tmp_path):
    """``timeline.json`` keeps the class map and the full share; a resume (real_media_check.sh) or a zero-shot
    score with another class map or share is refused instead of silently mixing two compositions."""
    from avloc.media.compose.sources import MediaSources, check_composition
    from avloc.media.compose.write import _timeline_json

    transfer = Path(CLASS_MAP).with_name("esc10_imagenet_transfer.json")
    src = MediaSources(classes=["Dog bark", "Rain"], visual_classes=["Dog bark"])
    _timeline_json(tmp_path, "ave", src, 0, {}, CLASS_MAP, 2 / 3)
    meta = json.loads((tmp_path / "timeline.json").read_text())
    assert meta["full_share"] == 2 / 3 and "Dog bark" in meta["class_map"]["classes"]
    check_composition(tmp_path, CLASS_MAP, 2 / 3)
    check_composition(tmp_path, CLASS_MAP)  # the share is checked only when asked
    with pytest.raises(ValueError, match="another class map.*Rooster"):
        check_composition(tmp_path, transfer)
    with pytest.raises(ValueError, match="full_share 0.6666666666666666, not 0.0"):
        check_composition(tmp_path, CLASS_MAP, 0.0)
    del meta["class_map"], meta["full_share"]  # written before these were recorded: nothing to compare
    (tmp_path / "timeline.json").write_text(json.dumps(meta))
    check_composition(tmp_path, transfer, 0.0)


def test_zero_shot_scores_refuse_a_class_map_the_folder_was_not_composed_with(tmp_path):
    from avloc.inference.zeroshot_dense import zero_shot_map
    from avloc.inference.zeroshot_report import split_scores, tune_thresholds
    from avloc.media.compose.sources import MediaSources
    from avloc.media.compose.write import _timeline_json

    src = MediaSources(classes=["Dog bark"], visual_classes=["Dog bark"])
    rec = {"v": {"split": "val", "kinds": ["av"] * 3, "audio": ["Dog bark"] * 3, "events": [["Dog bark", 0, 3]]}}
    _timeline_json(tmp_path, "unav", src, 0, rec, CLASS_MAP)
    other = Path(CLASS_MAP).with_name("esc10_imagenet_transfer.json")
    for call in (lambda: tune_thresholds(tmp_path / "none.npz", tmp_path, "val", ["ucs"], other),
                 lambda: split_scores(tmp_path / "none.npz", tmp_path, "val", ["ucs"], other),
                 lambda: zero_shot_map(tmp_path / "none.npz", tmp_path, "val", ["ucs"], other)):
        with pytest.raises(ValueError, match="another class map"):
            call()


def test_full_share_flag_is_checked_and_refused_where_it_means_nothing(tmp_path, capsys):
    from avloc.tools.cli import main

    common = ["--media", "--sounds", str(tmp_path), "--photos", str(tmp_path), "--videos", "3", "--out",
              str(tmp_path / "o")]
    assert main(["synth", "ave", *common, "--full-share", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "--full-share" in err and "1.5" in err
    assert main(["synth", "unav", *common, "--full-share", "0"]) == 2  # the UnAV layout has no such share
    assert "AVE layout only" in capsys.readouterr().err
    assert main(["synth", "unav", *common, "--background-videos", "2"]) == 2
    assert "--background-videos is for the AVE layout only" in capsys.readouterr().err
    assert main(["synth", "ave", *common, "--background-videos", "-1"]) == 2
    assert "background_videos (--background-videos) must be >= 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
