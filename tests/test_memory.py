"""Per-run peak RSS: a run after a bigger one in the same process reports its own peak."""

from __future__ import annotations

import sys

import pytest

from avloc.engine.memory import peak_rss_mb, reset_peak_rss


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak reset needs /proc (Linux)")
def test_reset_starts_a_new_peak():
    big = bytearray(300 * 1024 * 1024)  # touch 300 MiB
    big[::4096] = b"x" * len(big[::4096])
    high = peak_rss_mb()
    del big
    if not reset_peak_rss():
        pytest.skip("/proc/self/clear_refs is not writable here")
    assert peak_rss_mb() < high - 200
