"""Fixtures shared by every test module.

* ``shared_dir``: the read-only ``shared/`` folder checked out beside the repo (real AVE annotations,
  splits and label files, UnAV annotations, media); the test is skipped when it is absent.
* ``tiny_ave_dir``: a 40-video synthetic AVE dataset (float32, 2 noisy videos) in the official file
  layout, written once per session. Treat it as read-only: copy it to ``tmp_path`` before changing it.
* every session keeps the inference engines' exports and timed choices in a folder of its own (never the
  user's cache), so ``auto`` is timed afresh each session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
TINY_AVE_VIDEOS = 40  # train 32 / val 4 / test 4, plus 2 noisy background videos


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("engine_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AVLOC_ENGINE_CACHE", str(folder))  # avloc.media.engines.CACHE_ENV (not imported: no torch here)
        yield folder


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real-data folder {SHARED} is absent")
    return SHARED


@pytest.fixture(scope="session")
def tiny_ave_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avloc.data.synth_ave import write_synthetic_ave

    out = tmp_path_factory.mktemp("tiny_ave")
    write_synthetic_ave(out, videos=TINY_AVE_VIDEOS, seed=0, dtype="float32")
    return out
