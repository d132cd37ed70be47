"""What a new user reads first: ``--help`` with defaults and help text for every option, ``--version``,
``avloc eval RUN`` without ``--data``, and a terminal table that never cuts a video id."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from avloc.tools.cli import build_parser, main


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_of_every_verb_has_help_text():
    missing = [f"{verb} {a.option_strings or a.dest}" for verb, p in _verbs().items() for a in p._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, missing


@pytest.mark.parametrize(("verb", "shown"), [
    ("extract", ["--format {ave,unav,llp}", "(default: ave)", "(default: efficientnet_lite0)", "(default: aisfx)",
                 "(default: squash)", "(default: 0.32)"]),
    ("predict", ["(default: predictions)"]),
    ("demo", ["(default: runs/demo)", "(default: 2)", "(default: 0)"]),  # a default of 0 is shown too
])
def test_help_shows_defaults(verb, shown):
    text = " ".join(_verbs()[verb].format_help().split())  # argparse wraps lines: compare word by word
    for s in shown:
        assert s in text, (verb, s)
    assert "(default: None)" not in text and "(default: False)" not in text


def test_version(capsys):
    from avloc import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"avloc {__version__}"


def test_eval_reads_the_data_folder_the_run_recorded(tiny_ave_dir, tmp_path, capsys):
    from avloc.engine.loop import fit
    from avloc.config import load_config
    from avloc.tools.paths import config_path

    run = tmp_path / "run"
    cfg = load_config(config_path("ave/psp_fully.yaml"), ["train.epochs=1", "train.batch_size=8", "train.threads=1",
                                                          "train.progress=false"])
    fit(cfg, tiny_ave_dir, run, log=lambda *_: None)
    assert main(["eval", str(run)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["data"] == str(Path(tiny_ave_dir).resolve())
    assert got["acc"] == json.loads((run / "report.json").read_text())["test_acc"]
    (run / "data.json").write_text(json.dumps({"folder": str(tmp_path / "gone")}))
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert "recorded data folder" in err and "gone" in err and "--data" in err


def test_terminal_table_keeps_long_ids_and_labels_whole():
    from avloc.inference.events import Events
    from avloc.inference.prediction import ScoreTrack, VideoPrediction
    from avloc.report.table import events_table

    vid = "a_very_long_video_identifier_from_youtube_0123456789"
    label = "Male speech, man speaking"
    ev = Events(np.array([label]), np.array([1.0]), np.array([3.0]), np.array([0.7]), np.array(["av"]))
    pred = VideoPrediction(vid, Path(f"{vid}.mp4"), 10.0, "zero-shot", ev,
                           [ScoreTrack("av", [label], np.zeros((10, 1)), 1.0)])
    text = events_table([pred])
    assert vid in text and label in text
