"""W-DAVEL table for `avloc reproduce dense`: mAP (%) at tIoU 0.1:0.1:0.9 and their average on UnAV-100.

Rows: the MIL baseline, CLASP (our design of MEAE + CSAI + ATP; the paper's equations and numbers are not
public, so there is no paper column) and CLASP with one module switched off at a time. Every cell is the
test score of the val-selected checkpoint.

On real UnAV-100 features the shipped configs are used as they are. On the synthetic stand-in (the real
features are not reachable offline) pass ``SYNTHETIC_OVERRIDES`` on the command line, e.g.::

    avloc synth unav --annotations unav100_annotations.json --videos 3000 --seed 0 --out SYN
    avloc reproduce dense --data SYN --seeds 3 model.hidden=128 model.dropout=0.1 train.epochs=8 \\
        train.batch_size=16 train.lr=1e-3 train.lr_decay_epochs=[] train.eval_every=2 data.max_seq_len=64
"""

from __future__ import annotations

from avloc.tools.tables.table import Run, Table

TIOUS = [f"0.{i}" for i in range(1, 10)]
COLUMNS = {**{t: f"test.mAP@{t}" for t in TIOUS}, "Avg": "test_mAP_avg"}

# The CPU-sized schedule used for the synthetic table (README): a smaller, less regularised network,
# 8 epochs, and videos resampled to at most 64 steps (~1 s) instead of UnAV's 0.32 s grid.
SYNTHETIC_OVERRIDES = [
    "model.hidden=128", "model.dropout=0.1", "train.epochs=8", "train.batch_size=16", "train.lr=1e-3",
    "train.lr_decay_epochs=[]", "train.eval_every=2", "data.max_seq_len=64",
]

_ROWS = [
    ("MIL baseline", "unav/mil.yaml", []),
    ("CLASP", "unav/clasp.yaml", []),
    ("CLASP w/o MEAE (anchors by confidence)", "unav/clasp.yaml", ["model.meae=false"]),
    ("CLASP w/o global anchors", "unav/clasp.yaml", ["model.global_anchors=false"]),
    ("CLASP w/o local anchors", "unav/clasp.yaml", ["model.local_anchors=false"]),
    ("CLASP w/o ATP (no anchors)", "unav/clasp.yaml", ["model.atp=false"]),
]

DENSE = Table(
    name="dense",
    title="W-DAVEL on UnAV-100: mAP (%) at tIoU 0.1-0.9 and average, MIL baseline vs CLASP and its ablations",
    columns=[*TIOUS, "Avg"],
    runs=[Run(row=row, config=cfg, columns=dict(COLUMNS), overrides=ov) for row, cfg, ov in _ROWS],
    quick_overrides=["train.epochs=2", "train.batch_size=8", "model.hidden=32", "data.limit=40",
                     "data.max_seq_len=64"],
)

TABLES = {"dense": DENSE}
