"""The fast frame path of extraction: decoding in a thread beside the networks, and the uint8 resize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avloc.media.backbones import create_backbone
from avloc.media.decode import iter_frames
from avloc.media.extract import ExtractConfig, Extractor
from avloc.media.prefetch import prefetch
from test_extract import make_video

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "real" / "clips" / "ave_16eUxQwxxbs_ukulele.mp4"


def test_prefetch_yields_the_same_items_in_order():
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))
    assert list(prefetch(iter([]))) == []


def test_prefetch_raises_where_the_plain_iterator_raises():
    def items():
        yield 1
        yield 2
        raise KeyError("broken at item 3")

    got = []
    with pytest.raises(KeyError, match="broken at item 3"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]


def test_prefetch_stops_and_closes_the_producer_when_the_consumer_leaves():
    closed = []

    def items():
        try:
            for i in range(10_000):
                yield i
        finally:
            closed.append(True)

    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    stream.close()  # joins the thread
    assert closed == [True]


@pytest.fixture(scope="module")
def efficientnet():
    return create_backbone("efficientnet_lite0")


@pytest.mark.parametrize("mode", ["squash", "center_crop"])
def test_uint8_resize_is_within_one_grey_level_of_float32(efficientnet, mode):
    frames = np.random.default_rng(0).integers(0, 256, (3, 97, 131, 3), dtype=np.uint8)  # odd sizes, noise
    ref = efficientnet.preprocess(frames, mode)  # (3, 3, 224, 224) in [-1, 1]
    fast = efficientnet.preprocess(frames, mode, "uint8")
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    grey = (fast - ref).abs() * 127.5  # grey levels
    assert float(grey.max()) <= 1.01 and 0 < float(grey.mean()) < 0.5
    with pytest.raises(ValueError, match="resize precision"):
        efficientnet.preprocess(frames, mode, "int4")


def test_fast_path_features_match_the_plain_path_on_a_clip(tmp_path):
    """The uint8 resize moves the features by what bf16 moves them (a grey level of rounding becomes a few
    percent of EfficientNet's 7 x 7 ReLU6 maps); flags and shapes are those of the plain path."""
    clip = REAL if REAL.is_file() else make_video(tmp_path / "ramp.mp4", seconds=3.0, size=(320, 240))
    plain = Extractor(ExtractConfig(format="ave", frames_per_segment=1, engine="torch"))
    fast = Extractor(ExtractConfig(format="ave", frames_per_segment=1, engine="torch", resize_precision="uint8"))
    a0, v0, s0, f0 = plain.video(clip)
    a1, v1, s1, f1 = fast.video(clip)
    assert (s0, f0) == (s1, f1) and v0.shape == v1.shape
    np.testing.assert_array_equal(a0, a1)  # the audio path is untouched
    rel = np.linalg.norm(v1 - v0) / np.linalg.norm(v0)
    assert 0 < rel < 0.1, rel  # the bound the bf16 engines are tested to
    with pytest.raises(ValueError, match="resize_precision"):
        ExtractConfig(resize_precision="fp16")


def test_pipelined_frames_are_the_decoded_frames(tmp_path):
    """What the networks receive through the decode thread is what a plain decode and resize give."""
    full = make_video(tmp_path / "full.mkv", seconds=4.0, size=(96, 64), audio=None).read_bytes()
    clip = tmp_path / "cut.mkv"
    clip.write_bytes(full[: len(full) * 2 // 3])  # a cut-off file: the decoder flags it
    ex = Extractor(ExtractConfig(format="ave", frames_per_segment=2, engine="torch"))
    times = np.arange(20) / 2
    flags: list[str] = []
    plain_flags: list[str] = []
    got = torch.cat(list(prefetch(ex._frames(clip, times, flags, {}))))  # (20, 3, 224, 224)
    want = torch.cat([ex.visual.preprocess(f) for _, f in iter_frames(clip, times, chunk=7, flags=plain_flags)])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert flags == plain_flags and plain_flags
