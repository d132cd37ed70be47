"""The shipped zero-shot detector (aiSFX UCS sound vocabulary, thresholds chosen on composed validation videos)
on the four real clips (skipped without them or the weights), and on a silent clip.

Expected (../shared/reference/zeroshot.md): a dog heard and seen at the barks of the LLP clip; a dog seen on the sidewalk
clip, mostly on the visual track, not heard; no animal or vehicle event on weightlifting. Known misses
(``docs/real_media.md``): a dark suit seen as a dog while a man speaks (not asserted); the two quieter LLP bark
candidates agree under the val-chosen threshold (asserted, so a threshold that finds them again shows here).
"""

from __future__ import annotations

import numpy as np
import pytest

from avloc.media.weights import WeightsError
from media_clips import write_clip

pytestmark = pytest.mark.slow

CLIPS = {
    "llp": "llp_BjCEufrlXm4_speech_dog.mp4",
    "sidewalk": "anet_ZNVhz7ctTq0.mp4",
    "weightlifting": "anet_GGSY1Qvo990.mp4",
    "speaking": "unav_HuBNHXu9I_man_speaking.mp4",
}


@pytest.fixture(scope="module")
def nets():
    import torch

    from avloc.inference.zeroshot_scores import ZeroShotNets

    try:
        loaded = ZeroShotNets.from_packages()
    except WeightsError as exc:
        pytest.skip(str(exc))
    torch.set_num_threads(2)
    return loaded


@pytest.fixture(scope="module")
def detector(nets):
    from avloc.inference.sound_vocab import load_vocabulary
    from avloc.inference.zeroshot import ZeroShotConfig, zero_shot_predict

    return lambda path: zero_shot_predict(path, nets, ZeroShotConfig()), load_vocabulary(ZeroShotConfig().vocab)


@pytest.fixture(scope="module")
def predictions(detector, shared_dir):
    detect, _ = detector
    paths = {k: shared_dir / "media" / v for k, v in CLIPS.items()}
    if not all(p.is_file() for p in paths.values()):
        pytest.skip("the real clips in ../shared/media are not available")
    return {k: detect(p) for k, p in paths.items()}


def labels(pred, track: str) -> set[str]:
    return set(pred.events.of_track(track).label.tolist())


def animal_or_vehicle(groups) -> set[str]:
    return {g for g, k in zip(groups.names, groups.kinds) if k in ("animal", "vehicle")}


def test_llp_clip_has_a_dog_heard_and_seen(predictions):
    pred = predictions["llp"]
    assert "dog" in labels(pred, "av")
    dog = pred.events.of_track("av")
    dog = dog.take(dog.label == "dog")
    seconds = {t for s, e in zip(dog.start, dog.end) for t in range(int(s), int(np.ceil(e)))}
    assert {7, 9} <= seconds  # the two loudest bark candidates, at about 7 and 9 s
    av = pred.track("av")
    agree = av.scores[:, av.labels.index("dog")]
    # the quieter ones (about 0.4 and 4 s) agree at about 0.19 and 0.23, under the val-chosen threshold: not
    # events (a known miss, docs/real_media.md)
    assert (agree[[0, 4]] > 0.15).all() and agree[[0, 4]].max() < pred.thresholds["av"]["dog"]


def test_sidewalk_dog_is_seen_not_heard(predictions):
    pred = predictions["sidewalk"]
    seconds = {t: pred.events.of_track(t) for t in ("av", "visual")}
    dog = {t: float((e.end - e.start)[e.label == "dog"].sum()) for t, e in seconds.items()}
    assert dog["visual"] >= 5.0 and dog["av"] <= dog["visual"] / 5  # seen far longer than heard and seen


@pytest.mark.parametrize("clip", ["weightlifting"])
def test_no_animal_or_vehicle_event_without_one(predictions, detector, clip):
    _, groups = detector
    assert not labels(predictions[clip], "av") & animal_or_vehicle(groups)


def test_scores_cover_every_second(predictions):
    for pred in predictions.values():
        for track in pred.tracks:
            assert track.scores.shape == (round(pred.duration), len(track.labels))
            assert (track.scores >= 0).all() and (track.scores <= 1 + 1e-6).all()


def test_a_silent_clip_is_predicted_and_says_so(detector, tmp_path):
    detect, _ = detector
    pred = detect(write_clip(tmp_path / "mute.mp4", 3.0, audio=False))
    assert pred.notes and "no audio" in pred.notes[0]
    assert len(pred.events.of_track("av")) == 0
    assert pred.track("visual").scores.shape[0] == 3


def test_each_audio_table_reads_its_own_rate_decoded_from_the_file(nets, tmp_path):
    """The audio decodes run in the frame thread; each network still gets the file decoded at its own rate (a
    22.05-kHz track resampled to 44.1 kHz and back would move the SoundNet table)."""
    from avloc.inference.zeroshot_scores import score_video, soundnet_probs, ucs_probs
    from avloc.media.decode import decode_audio

    clip = write_clip(tmp_path / "tone.mp4", 3.0)
    got = score_video(clip, nets)
    rate_sn, rate_sfx = nets.soundnet.sample_rate, nets.aisfx.sample_rate
    assert rate_sn != rate_sfx and got.seconds == 3
    want = soundnet_probs(decode_audio(clip, rate_sn), nets.soundnet, 3, nets.soundnet_run)
    np.testing.assert_array_equal(got.soundnet, want)
    want = ucs_probs(decode_audio(clip, rate_sfx), nets.aisfx, nets.ucs, 3, nets.aisfx_run)
    np.testing.assert_array_equal(got.ucs, want)


def test_an_engine_and_the_fast_path_find_the_same_events(detector, predictions, shared_dir):
    """The detector on another engine in float32 gives eager float32's scores; bf16 with the uint8 resize (the
    fast path, where the CPU has bf16 units) still hears and sees the LLP clip's dog."""
    import torch

    from avloc.inference.zeroshot import ZeroShotConfig, zero_shot_predict
    from avloc.inference.zeroshot_scores import ZeroShotNets
    from avloc.media.engines import installed
    from avloc.media.engines.support import has_precision

    clip = shared_dir / "media" / CLIPS["llp"]
    other = next((e for e in ("openvino", "onnxruntime") if installed(e)), None)
    if other is None:
        pytest.skip("no ONNX engine installed")
    cfg = ZeroShotConfig()
    pred = zero_shot_predict(clip, ZeroShotNets.from_packages(tables=("ucs",), engine=other), cfg)
    for got, want in zip(pred.tracks, predictions["llp"].tracks):
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
    if has_precision("openvino", "bf16", torch.device("cpu")) and other == "openvino":
        nets = ZeroShotNets.from_packages(tables=("ucs",), engine="openvino", precision="bf16",
                                          resize_precision="uint8")
        assert "dog" in labels(zero_shot_predict(clip, nets, cfg), "av")
