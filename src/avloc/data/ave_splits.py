"""The AVE split files (``{train,val,test}_order.h5``, key ``order``: row indices into Annotations.txt), checked,
and the rows left out of them: the videos ``avloc extract`` could not make features for.

``avloc extract`` lists such videos under ``failed`` in its ``features.json`` (row, id, reason); their h5 rows
are zeros, and training on them would teach the model that silence and black frames are the annotated event.
They are left out of every split with a warning naming row, id and reason (``failed_videos: exclude``) or
the folder is refused (``failed_videos: error``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from avloc.data.ave_files import read_order
from avloc.data.ave_labels import Annotations
from avloc.data.base import DataError
from avloc.formats.feature_sidecar import META_FILE, sidecar_failed

log = logging.getLogger(__name__)

ORDER_KEY = "order"  # dataset key of the split files
SPLITS = ("train", "val", "test")


def read_orders(root: Path, files: dict[str, str], n: int) -> dict[str, np.ndarray]:
    """Each split's rows from ``root / files[split]``: non-empty, inside the ``n`` annotation rows, no row twice,
    no row in two splits; every problem a ``DataError`` naming the file."""
    orders = {}
    for name, fname in files.items():
        path = root / fname
        order = read_order(path, ORDER_KEY)
        if not len(order):
            raise DataError(f"{path}['{ORDER_KEY}']: the {name} split is empty (no rows)")
        if (order.min() < 0 or order.max() >= n):
            bad = int(order[(order < 0) | (order >= n)][0])
            raise DataError(f"{path}['{ORDER_KEY}']: index {bad} is outside the {n} annotation rows")
        uniq, counts = np.unique(order, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"{path}['{ORDER_KEY}']: row {int(uniq[counts > 1][0])} is listed twice")
        orders[name] = order
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            common = np.intersect1d(orders[a], orders[b])
            if len(common):
                raise DataError(
                    f"{root / files[a]} and {root / files[b]}: splits overlap in {len(common)} rows "
                    f"(e.g. row {int(common[0])})"
                )
    return orders


def without_failed(orders: dict[str, np.ndarray], root: Path, ann: Annotations,
                   policy: str) -> tuple[dict[str, np.ndarray], list[int]]:
    """``orders`` without the rows ``avloc extract`` recorded as failed, and those rows (sorted); ``policy``
    ``error`` refuses them instead. A record whose id is not its row's annotation id is an error either way."""
    failed = sidecar_failed(root)
    if not failed:
        return orders, []
    side = root / META_FILE
    rows = []
    for f in failed:
        row = f.get("row")
        if not isinstance(row, int) or not 0 <= row < len(ann) or ann.video_ids[row] != f["id"]:
            raise DataError(f"{side}: failed video {f['id']!r} is recorded at row {row!r}, but that row of "
                            f"{ann.path} is not it; re-run avloc extract with these annotations")
        rows.append(row)
    named = "; ".join(f"row {f['row']} {f['id']} ({f.get('reason', 'no reason recorded')})" for f in failed[:5])
    more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
    if policy == "error":
        raise DataError(f"{side}: {len(failed)} videos have no features (zero rows): {named}{more}; "
                        "re-extract them, remove their lines, or set data.failed_videos=exclude")
    log.warning("%s: leaving out %d videos without features (zero rows in the h5 files): %s%s",
                side, len(failed), named, more)
    kept = {name: order[~np.isin(order, rows)] for name, order in orders.items()}
    for name, order in kept.items():
        if not len(order):
            raise DataError(f"{side}: every video of the {name} split failed extraction: {named}{more}")
    return kept, sorted(rows)


def split_subset(orders: dict[str, np.ndarray], total: int, max_videos: int) -> dict[str, np.ndarray]:
    """The first ``round(max_videos * len(split) / total)`` rows of each split (>= 1 of a non-empty one)."""
    if max_videos <= 0 or max_videos >= total:
        return orders
    return {
        name: order[: max(1 if len(order) else 0, round(max_videos * len(order) / total))]
        for name, order in orders.items()
    }
