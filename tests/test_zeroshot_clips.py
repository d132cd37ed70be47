"""The zero-shot detector on the four real clips (skipped without them or the weights), and on a silent clip.

Expected (../shared/reference/zeroshot.md): a dog heard and seen in the LLP clip; a dog seen but not heard on
the sidewalk clip (visual track, not an AV event); no animal or vehicle event on weightlifting / man speaking.
"""

from __future__ import annotations

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
def detector():
    import torch

    from avloc.media.backbones.efficientnet import EfficientNetLite0
    from avloc.media.backbones.soundnet import SoundNet8
    from avloc.inference.event_groups import load_event_groups
    from avloc.inference.zeroshot import zero_shot_predict

    try:
        visual, audio = EfficientNetLite0.weights_from_package(), SoundNet8.weights_from_package()
    except WeightsError as exc:
        pytest.skip(str(exc))
    groups = load_event_groups()
    torch.set_num_threads(2)
    return lambda path: zero_shot_predict(path, visual, audio, groups), groups


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
    assert (dog.end - dog.start)[dog.label == "dog"].sum() >= 5.0  # most of the 10-s clip


def test_sidewalk_dog_is_seen_not_heard(predictions):
    pred = predictions["sidewalk"]
    assert "dog" in labels(pred, "visual")
    assert "dog" not in labels(pred, "av")


@pytest.mark.parametrize("clip", ["weightlifting", "speaking"])
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


def test_an_engine_and_the_fast_path_find_the_same_events(detector, predictions, shared_dir):
    """The detector on another engine in float32 gives eager float32's scores; bf16 with the uint8 resize (the
    fast path, where the CPU has bf16 units) still hears and sees the LLP clip's dog."""
    import numpy as np
    import torch

    from avloc.inference.zeroshot import ZeroShotDetector
    from avloc.media.backbones.efficientnet import EfficientNetLite0
    from avloc.media.backbones.soundnet import SoundNet8
    from avloc.media.engines import installed
    from avloc.media.engines.support import has_precision

    _, groups = detector
    clip = shared_dir / "media" / CLIPS["llp"]
    visual, audio = EfficientNetLite0.weights_from_package(), SoundNet8.weights_from_package()
    other = next((e for e in ("openvino", "onnxruntime") if installed(e)), None)
    if other is None:
        pytest.skip("no ONNX engine installed")
    pred = ZeroShotDetector(visual, audio, groups, engine=other)(clip)
    for got, want in zip(pred.tracks, predictions["llp"].tracks):
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
    if has_precision("openvino", "bf16", torch.device("cpu")) and other == "openvino":
        fast = ZeroShotDetector(visual, audio, groups, engine="openvino", precision="bf16",
                                resize_precision="uint8")(clip)
        assert "dog" in labels(fast, "av")
