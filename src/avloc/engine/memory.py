"""Peak resident memory of the current run, not of the whole process.

``getrusage`` reports the process's lifetime peak, so in one process that trains several runs (``avloc
reproduce``, ``avloc bench``) every run after the biggest would report the biggest run's peak. On Linux the
peak (``VmHWM``) can be reset through ``/proc/self/clear_refs``; elsewhere the lifetime peak is reported.
"""

from __future__ import annotations

import re
import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def peak_rss_mb() -> float:
    """Peak resident memory (MiB) since the last :func:`reset_peak_rss` (or since the process started)."""
    try:
        match = re.search(r"VmHWM:\s+(\d+)\s+kB", _STATUS.read_text())
    except OSError:
        match = None
    if match:
        return int(match.group(1)) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def reset_peak_rss() -> bool:
    """Start a new peak from the current resident size; False where the OS does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True
