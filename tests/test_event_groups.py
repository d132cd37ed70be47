"""The committed ILSVRC event-group table: matches SoundNet's category file, rebuilds from WordNet, tiles animals."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avloc.inference.event_groups import TABLE, load_event_groups

ROOT = Path(__file__).resolve().parents[1]
WORDNET = Path("/usr/share/wordnet")


def rows() -> list[dict[str, str]]:
    with open(TABLE, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_table_has_the_1000_classes_in_order():
    table = rows()
    assert [int(r["index"]) for r in table] == list(range(1000))
    assert table[0]["name"] == "tench" and table[999]["name"] == "toilet tissue"
    wnids = [r["wnid"] for r in table]
    assert wnids == sorted(wnids)  # ILSVRC order is the sorted wnid order


def test_table_matches_soundnet_categories(shared_dir):
    path = shared_dir / "reference" / "soundnet" / "categories_imagenet.txt"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    lines = path.read_text().splitlines()
    ref = [(ln.split(" ", 1)[0], ln.split(" ", 1)[1].split(",")[0].strip()) for ln in lines]
    assert [(r["wnid"], r["name"]) for r in rows()] == ref


def test_groups_are_the_probe_groups():
    groups = load_event_groups()
    members = {g: sorted(groups.members[:, j].nonzero().flatten().tolist()) for j, g in enumerate(groups.names)}
    assert members["dog"] == list(range(151, 269))
    assert members["cat"] == list(range(281, 286)) and members["big_cat"] == list(range(286, 294))
    animal = sorted(i for g, k in zip(groups.names, groups.kinds) if k == "animal" for i in members[g])
    assert animal == list(range(398))  # the animal groups tile 0-397 exactly
    assert members["rail"] == [466, 547, 565, 705, 820, 829]
    assert {407, 468, 751, 779, 817, 874} <= set(members["road_vehicle"])  # ambulance, cab, racer, buses, sports car
    assert groups.members.sum(1).max() == 1  # a class is in at most one group
    assert groups.ave_name("dog") == "Bark" and groups.ave_name("road_vehicle") == "road_vehicle"


def test_group_mass_sums_class_probabilities():
    groups = load_event_groups()
    probs = torch.softmax(torch.randn(3, 1000, generator=torch.Generator().manual_seed(0)), -1)
    mass = groups.mass(probs)
    assert mass.shape == (3, len(groups.names))
    dog = groups.index("dog")
    assert torch.allclose(mass[:, dog], probs[:, 151:269].sum(1).double())
    assert (mass.sum(1) < 1 + 1e-9).all()


def test_script_rebuilds_the_committed_table(shared_dir, tmp_path):
    cats = shared_dir / "reference" / "soundnet" / "categories_imagenet.txt"
    if not cats.is_file() or not (WORDNET / "data.noun").is_file():
        pytest.skip("needs SoundNet's category file and the WordNet database (apt-get install wordnet-base)")
    out = tmp_path / "groups.tsv"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_event_groups.py"), str(cats), "--wordnet",
                    str(WORDNET), "--out", str(out)], check=True, capture_output=True)
    assert out.read_text() == TABLE.read_text()


def test_ave_names_are_ave_classes():
    from avloc.data.ave_labels import AVE_CLASSES

    used = {r["ave_class"] for r in rows()} - {""}
    assert used and used <= set(AVE_CLASSES)


def test_the_ucs_speaker_group_sees_what_people_wear_but_not_a_diaper():
    from avloc.inference.sound_vocab import load_vocabulary

    worn = load_vocabulary("ucs").wnids("speaker")
    assert {"n03759954", "n04296562", "n04350905", "n04591157"} <= worn  # microphone, stage, suit, Windsor tie
    assert {"n02667093", "n03595614", "n03617480", "n03770439"} <= worn  # abaya, jersey, kimono, miniskirt
    assert "n03188531" not in worn and len(worn) == 50  # the diaper: a baby's, the baby group's sound
    assert load_vocabulary("soundnet").wnids("speaker") == {"n02883205", "n03759954", "n04296562", "n04350905",
                                                           "n04591157"}  # the first-shipped groups are unchanged


def test_script_rebuilds_the_speaker_garments_of_the_ucs_table(shared_dir):
    from avloc.inference.sound_vocab import UCS_TABLE

    cats = shared_dir / "reference" / "soundnet" / "categories_imagenet.txt"
    if not cats.is_file() or not (WORDNET / "data.noun").is_file():
        pytest.skip("needs SoundNet's category file and the WordNet database (apt-get install wordnet-base)")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_event_groups.py"), str(cats), "--wordnet",
                          str(WORDNET), "--garments"], check=True, capture_output=True, text=True).stdout.strip()
    with open(UCS_TABLE, newline="") as fh:
        row = next(r for r in csv.DictReader(fh, delimiter="\t") if r["group"] == "speaker")
    assert out == row["imagenet"] and "n03188531" not in out and out.count("|") == 47
