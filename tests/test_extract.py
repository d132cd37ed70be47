"""``avloc extract`` end to end: real clips (skipped without ../shared) and synthetic files made with PyAV."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import h5py
import numpy as np
import pytest

from avloc.media.decode import MediaError, decode, probe
from avloc.media.extract import ExtractConfig, Extractor, features_for_video, read_feature_meta, unav_steps
from avloc.media.extract_folder import extract_videos

CLIPS = ["anet_GGSY1Qvo990.mp4", "anet_ZNVhz7ctTq0.mp4", "llp_BjCEufrlXm4_speech_dog.mp4",
         "unav_HuBNHXu9I_man_speaking.mp4"]
AVE_CFG = ExtractConfig(format="ave", frames_per_segment=1)  # 1 frame per second: the recipe, cheaply
UNAV_CFG = ExtractConfig(format="unav", fps=3.125)  # 1 frame per 0.32 s step, 3 per window


def make_video(path: Path, seconds: float = 2.0, fps: Fraction | int = 10, audio: str | None = "aac",
               layout: str = "mono", rate: int = 44100, size: tuple[int, int] = (64, 48),
               amplitude: float = 0.3) -> Path:
    """A clip whose brightness ramps with time and whose audio is a 440 Hz tone."""
    with av.open(str(path), "w") as box:
        vs = box.add_stream("libx264", rate=fps)
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        aus = box.add_stream(audio, rate=rate, layout=layout) if audio else None
        for i in range(int(round(seconds * float(fps)))):
            img = np.full((size[1], size[0], 3), int(200 * i / (seconds * float(fps))), np.uint8)
            box.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        box.mux(vs.encode(None))
        if aus is not None:
            channels = len(av.AudioLayout(layout).channels)
            n = aus.codec_context.frame_size or 1024
            t = np.arange(int(seconds * rate)) / rate
            wave = (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(wave) - n + 1, n):
                chunk = np.repeat(wave[None, start : start + n], channels, 0)  # planar; encode() converts
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                frame.sample_rate, frame.pts = rate, start
                box.mux(aus.encode(frame))
            box.mux(aus.encode(None))
    return path


@pytest.fixture(scope="module")
def ave_extractor() -> Extractor:
    return Extractor(AVE_CFG)


@pytest.fixture(scope="module")
def unav_extractor() -> Extractor:
    return Extractor(UNAV_CFG)


@pytest.mark.parametrize("name", CLIPS)
def test_real_clip_decodes_with_aligned_audio(shared_dir, name):
    path = shared_dir / "media" / name
    info = probe(path)
    d = decode(path, np.arange(0, 3, 0.25), 16000)
    assert d.frames.shape == (12, info.height, info.width, 3) and d.frames.dtype == np.uint8
    assert d.has_audio and not d.flags
    assert abs(len(d.audio) / 16000 - info.duration) < 0.2  # audio on the video's clock, same length
    assert unav_steps(info.duration, 0.32, 0.96) == math.floor((info.duration - 0.96) / 0.32) + 1


def test_real_clips_ave_end_to_end_read_by_the_ave_dataset(shared_dir, tmp_path, ave_extractor):
    from avloc.data.ave import AVEDataset

    ids = [Path(c).stem for c in CLIPS]
    (tmp_path / "Annotations.txt").write_text("".join(f"Bark&{v}&good&0&10\n" for v in reversed(ids)))
    for split, rows in (("train", [0, 1]), ("val", [2]), ("test", [3])):
        with h5py.File(tmp_path / f"{split}_order.h5", "w") as h5:
            h5["order"] = np.array(rows)
    summary = extract_videos([shared_dir / "media"], tmp_path, AVE_CFG, annotations=tmp_path / "Annotations.txt",
                             progress=False, extractor=ave_extractor)
    assert summary.exit_status == 0 and len(summary.extracted) == 4
    assert summary.flagged["unav_HuBNHXu9I_man_speaking"] == ["longer_than_10s_first_10s_used"]
    data = AVEDataset(AVEDataset.Config(), tmp_path)
    assert data.video_ids == list(reversed(ids))
    assert tuple(data.audio.shape) == (4, 10, 512) and tuple(data.visual.shape) == (4, 10, 7, 7, 1280)
    assert data.model_dims()["visual_dim"] == 1280 and data.model_dims()["att_regions"] == 49
    _, visual, _ = features_for_video(shared_dir / "media" / CLIPS[-1], read_feature_meta(tmp_path), ave_extractor)
    np.testing.assert_allclose(visual, data.visual[0].numpy(), rtol=1e-4, atol=1e-5)  # predict sees the same


def test_real_clip_unav_end_to_end_read_by_the_dense_dataset(shared_dir, tmp_path, unav_extractor):
    from avloc.data.unav import UnAVDataset

    clip = shared_dir / "media" / "llp_BjCEufrlXm4_speech_dog.mp4"
    summary = extract_videos([clip], tmp_path, UNAV_CFG, progress=False, extractor=unav_extractor)
    assert summary.exit_status == 0
    meta = read_feature_meta(tmp_path)
    vid = clip.stem
    steps = unav_steps(probe(clip).duration, 0.32, 0.96)
    assert meta.videos[vid]["steps"] == steps == 29
    a = np.load(tmp_path / "av_features" / f"{vid}_aisfx.npy")
    v = np.load(tmp_path / "av_features" / f"{vid}_efficientnet_lite0.npy")
    assert a.shape == (steps, 512) and v.shape == (steps, 1280)
    db = {"database": {vid: {"duration": 10.0, "subset": s, "annotations": [
        {"segment": [1.0, 4.0], "label": "dog barking", "label_id": 0}]} for s in ["train"]}}
    ann = {"database": {f"{vid}": db["database"][vid]}}
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    data_cfg = {k: v for k, v in meta.data_config().items() if k != "name"}
    cfg = UnAVDataset.Config(annotations="ann.json", val_subset="train", test_subset="train", **data_cfg)
    data = UnAVDataset(cfg, tmp_path)
    assert data.model_dims()["visual_dim"] == 1280 and data.model_dims()["audio_dim"] == 512
    assert int(data.lengths[0]) == steps


def test_synthetic_inputs_are_extracted_flagged_or_reported(tmp_path, unav_extractor):
    src = tmp_path / "in"
    src.mkdir()
    make_video(src / "noaudio.mp4", audio=None)
    make_video(src / "three_s.mp4", seconds=3.0)
    make_video(src / "fps7_5.mp4", fps=Fraction(15, 2), size=(50, 38))  # odd fps and odd size
    make_video(src / "surround.mp4", layout="5.1", rate=48000)
    make_video(src / "mp3.mkv", audio="libmp3lame")
    make_video(src / "opus.mkv", audio="libopus", rate=48000)
    make_video(src / "short.mp4", seconds=0.3)
    make_video(src / "silent.mp4", amplitude=0.0)
    full = make_video(tmp_path / "full.mp4", seconds=3.0).read_bytes()
    (src / "truncated.mp4").write_bytes(full[: len(full) // 2])
    (src / "garbage.mp4").write_bytes(b"\x00not a video" * 100)
    out = tmp_path / "out"
    summary = extract_videos([src], out, UNAV_CFG, progress=False, extractor=unav_extractor)
    assert set(summary.failed) == {str(src / "truncated.mp4"), str(src / "garbage.mp4")}
    assert summary.exit_status == 1
    meta = read_feature_meta(out).videos
    assert meta["noaudio"]["flags"] == ["no_audio"]
    assert np.all(np.load(out / "av_features" / "noaudio_aisfx.npy") == 0)
    assert meta["three_s"]["steps"] == unav_steps(3.0, 0.32, 0.96) == 7
    assert meta["short"]["steps"] == 1 and "shorter_than_window" in meta["short"]["flags"]
    assert meta["silent"]["flags"] == ["silent"]
    for vid in ("three_s", "fps7_5", "surround", "mp3", "opus"):  # opus in Matroska, mp3 too
        assert meta[vid]["flags"] == [], vid
        assert np.abs(np.load(out / "av_features" / f"{vid}_aisfx.npy")).max() > 0, vid
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # nothing half-written
    again = extract_videos([src], out, UNAV_CFG, progress=False, extractor=unav_extractor)
    assert len(again.skipped) == 8 and not again.extracted  # resumed: nothing redone


def test_decode_errors_name_the_file(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"junk" * 10)
    with pytest.raises(MediaError, match="bad.mp4"):
        probe(tmp_path / "bad.mp4")
    with pytest.raises(MediaError, match="file not found"):
        probe(tmp_path / "absent.mp4")


def test_decode_picks_the_frame_at_or_before_each_time(tmp_path):
    clip = make_video(tmp_path / "ramp.mp4", seconds=2.0, fps=10, audio=None)
    d = decode(clip, np.array([0.0, 0.05, 0.1, 0.99, 1.5]), 16000)
    level = d.frames.reshape(5, -1).mean(1)  # frame i has brightness 10 i
    np.testing.assert_allclose(level, [0, 0, 10, 90, 150], atol=3)
    assert d.flags == ["no_audio"] and len(d.audio) == 32000


@pytest.mark.distributed
def test_torchrun_style_two_ranks_merge_the_ave_h5_once(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        make_video(src / f"v{i}.mp4", seconds=1.0, fps=5)
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(29500 + os.getpid() % 1000),
           "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "avloc", "extract", str(src), "--out", str(tmp_path / "out"),
           "--frames-per-segment", "1", "--no-progress"]
    procs = [subprocess.Popen(cmd, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with h5py.File(tmp_path / "out" / "visual_feature.h5") as h5:
        visual = h5["avadataset"][:]
    assert visual.shape == (3, 10, 7, 7, 1280) and (np.abs(visual).reshape(3, -1).max(1) > 0).all()
    meta = read_feature_meta(tmp_path / "out")
    assert list(meta.videos) == ["v0", "v1", "v2"]
    assert all("shorter_than_10s" in meta.videos[v]["flags"] for v in meta.videos)


def test_the_python_extract_equals_the_folder_writer(tmp_path):
    """``avloc.extract`` (the Python face of the verb) writes what ``extract_videos`` writes; an unknown
    setting is an error naming it. Both on the torch engine: ``auto`` picks the fastest engine by timing, and
    two engines agree to float rounding, not bit for bit."""
    import avloc

    clip = make_video(tmp_path / "clip.mp4", seconds=2.0)
    with pytest.raises(ValueError, match=r"unknown extract setting\(s\) \['strid'\]"):
        avloc.extract(clip, tmp_path / "bad", strid=0.5)
    summary = avloc.extract(clip, tmp_path / "api", format="unav", fps=3.125, engine="torch")
    assert summary.extracted == ["clip"] and summary.exit_status == 0
    cfg = dataclasses.replace(UNAV_CFG, engine="torch")
    extract_videos([clip], tmp_path / "ref", cfg, progress=False, extractor=Extractor(cfg))
    for name in ("clip_efficientnet_lite0.npy", "clip_aisfx.npy"):
        assert np.array_equal(np.load(tmp_path / "api" / "av_features" / name),
                              np.load(tmp_path / "ref" / "av_features" / name))
def test_audio_layer_is_recorded_and_old_folders_read_as_conv7(tmp_path):
    """The tapped layer is part of the recipe: written out, never "the default"; a folder from before the option
    holds conv7 and a resume with another layer is refused."""
    assert ExtractConfig(audio="soundnet8").audio_layer == "pool5"
    assert ExtractConfig(audio="aisfx").audio_layer == ""
    cfg = ExtractConfig(format="ave", audio="soundnet8", frames_per_segment=1)
    meta = {"config": {k: v for k, v in cfg.__dict__.items() if k != "audio_layer"}, "visual_dim": 1280,
            "audio_dim": 1024, "grid": 7, "audio_rate": 22050, "videos": {}}
    (tmp_path / "features.json").write_text(json.dumps(meta))
    assert read_feature_meta(tmp_path).config.audio_layer == "conv7"
    with pytest.raises(ValueError, match="audio_layer='conv7' \\(asked: 'pool5'\\)"):
        extract_videos([tmp_path / "none.mp4"], tmp_path, cfg, progress=False)
    with pytest.raises(ValueError, match="soundnet8 layer 'pool6'"):
        Extractor(ExtractConfig(audio="soundnet8", audio_layer="pool6"), random_weights=True)
