"""From a folder of labelled clips to a trained run, as the README says: ``avloc extract --class-from-folder``
writes the label and split files beside the features, with the folder's own class list and background-only
clips, and ``avloc train --data`` reads the folder as it is."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from avloc.data.ave_labels import read_annotations, read_classes
from avloc.data.base import DataError
from avloc.media.ave_layout import write_splits
from avloc.media.extract import ExtractConfig, Extractor, read_feature_meta
from avloc.media.extract_folder import extract_videos

from test_extract import make_video

CFG = ExtractConfig(format="ave", frames_per_segment=1)


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory) -> Path:
    """clips/dog (4), clips/car (4), clips/background (3): 2-s clips, one of the dogs 12 s long."""
    root = tmp_path_factory.mktemp("own") / "clips"
    for cls, n in (("dog", 4), ("car", 4), ("background", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            make_video(root / cls / f"{cls}{i}.mp4", seconds=12.0 if (cls, i) == ("dog", 0) else 2.0, fps=2)
    return root


def test_extract_writes_labels_classes_and_splits_and_train_reads_them(labelled_folder, tmp_path, capsys):
    from avloc.data.ave import AVEDataset
    from avloc.tools.cli import main

    out = tmp_path / "feats"
    summary = extract_videos([labelled_folder], out, CFG, progress=False, class_from_folder=True,
                             extractor=Extractor(CFG, random_weights=True))
    assert summary.exit_status == 0 and "Annotations.txt" in summary.written and "classes.txt" in summary.written
    assert read_classes(out / "classes.txt") == ("car", "dog")
    ann = read_annotations(out / "Annotations.txt", classes=("car", "dog"))
    lines = dict(zip(ann.video_ids, zip(ann.category.tolist(), ann.start.tolist(), ann.end.tolist())))
    assert lines["dog0"] == (1, 0, 10) and lines["dog1"] == (1, 0, 2) and lines["car3"] == (0, 0, 2)
    assert lines["background0"] == (2, 0, 0)  # background-only: category 'background', no event
    assert read_feature_meta(out).data_config() == {"name": "ave", "classes_file": "classes.txt"}
    sizes = {}
    for split in ("train", "val", "test"):
        with h5py.File(out / f"{split}_order.h5") as h5:
            sizes[split] = len(h5["order"][()])
    assert sum(sizes.values()) == 11 and min(sizes.values()) >= 1
    data = AVEDataset(AVEDataset.Config(classes_file="classes.txt"), out)
    assert data.class_names == ["car", "dog", "background"] and data.model_dims()["num_classes"] == 3
    bg_rows = [i for i, v in enumerate(data.video_ids) if v.startswith("background")]
    assert (data.tensors["segment_labels"][bg_rows] == 2).all() and not data.tensors["event_mask"][bg_rows].any()
    run = tmp_path / "run"
    rc = main(["train", "ave/psp_fully.yaml", "--data", str(out), "--out", str(run), "train.epochs=1",
               "train.batch_size=4", "train.threads=1", "train.progress=false"])
    assert rc == 0, capsys.readouterr().err
    preds = json.loads((run / "predictions_test.json").read_text())
    assert preds["classes"] == ["car", "dog", "background"]
    assert "classes_file: classes.txt" in (run / "config.yaml").read_text()


def test_user_annotations_with_their_own_classes_are_copied_in(labelled_folder, tmp_path):
    labels = tmp_path / "mine"
    labels.mkdir()
    (labels / "classes.txt").write_text("car\ndog\n")
    clips = sorted(labelled_folder.rglob("*.mp4"))
    (labels / "Annotations.txt").write_text("".join(
        f"{'background' if p.parent.name == 'background' else p.parent.name}&{p.stem}&good&0&"
        f"{0 if p.parent.name == 'background' else 2}\n" for p in clips))
    out = tmp_path / "feats"
    summary = extract_videos([labelled_folder], out, CFG, annotations=labels / "Annotations.txt",
                             classes=labels / "classes.txt", progress=False,
                             extractor=Extractor(CFG, random_weights=True))
    assert summary.written[:2] == ["Annotations.txt", "classes.txt"]
    assert (out / "Annotations.txt").read_text() == (labels / "Annotations.txt").read_text()
    assert read_feature_meta(out).classes_file == "classes.txt"
    with pytest.raises(ValueError, match="not both"):
        extract_videos([labelled_folder], out, CFG, annotations=labels / "Annotations.txt", class_from_folder=True)


def test_split_files_of_the_folder_are_never_replaced(tmp_path):
    cat = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    written = write_splits(tmp_path, cat, seed=3)
    assert len(written) == 3
    before = (tmp_path / "train_order.h5").read_bytes()
    assert write_splits(tmp_path, cat, seed=4) == [] and (tmp_path / "train_order.h5").read_bytes() == before
    rows = []
    for split in ("train", "val", "test"):
        with h5py.File(tmp_path / f"{split}_order.h5") as h5:
            rows += h5["order"][()].tolist()
    assert sorted(rows) == list(range(8))


@pytest.mark.parametrize(("text", "why"), [("car\ncar\n", "repeats"), ("car\nbackground\n", "reserved"),
                                           ("a&b\n", "contains '&'"), ("# none\n\n", "no class names")])
def test_bad_class_lists_name_file_and_line(tmp_path, text, why):
    (tmp_path / "classes.txt").write_text(text)
    with pytest.raises(DataError, match=why):
        read_classes(tmp_path / "classes.txt")


def test_an_annotation_outside_the_class_list_is_named(tmp_path):
    (tmp_path / "Annotations.txt").write_text("car&a&good&0&5\ncat&b&good&0&5\n")
    with pytest.raises(DataError, match=r"Annotations.txt:2: unknown class name \(see the class list\) 'cat'"):
        read_annotations(tmp_path / "Annotations.txt", classes=("car", "dog"))
