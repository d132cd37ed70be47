#!/usr/bin/env bash
# End-to-end check on composed real media (ESC-10 recordings + ImageNet photos, AVE layout):
# compose -> avloc extract (efficientnet_lite0 + aisfx) -> avloc train (PSP, VSCG) -> test accuracy of the
# val-selected checkpoint, beside the linear per-second floor (C chosen on val). CPU, one thread.
# Usage: scripts/real_media_check.sh OUT [VIDEOS] [EPOCHS] [SEEDS]
set -euo pipefail
OUT=${1:?output folder}; VIDEOS=${2:-140}; EPOCHS=${3:-30}; SEEDS=${4:-"0 1 2"}
SHARED=${SHARED:-../shared/real}
export OMP_NUM_THREADS=1
AVLOC=${AVLOC:-avloc}
DATA=$OUT/composed_ave
[ -f "$DATA/Annotations.txt" ] || $AVLOC synth ave --media --sounds "$SHARED/esc10" --photos "$SHARED/imagenet_samples" \
  --videos "$VIDEOS" --seed 0 --out "$DATA"
# still photos: every frame of a second is the same picture, so one frame per second is the 16-frame mean
[ -f "$DATA/features.json" ] || $AVLOC extract "$DATA/videos" --out "$DATA" --format ave \
  --annotations "$DATA/Annotations.txt" --frames-per-segment 1 --no-progress
for seed in $SEEDS; do for m in psp vscg; do
  run=$OUT/runs/${m}_s$seed
  [ -f "$run/report.json" ] || $AVLOC train "ave/${m}_fully.yaml" --data "$DATA" --out "$run" train.seed="$seed" \
    train.epochs="$EPOCHS" train.batch_size=16 train.lr_decay_epochs=[] train.threads=1 train.progress=false
done; done
${PYTHON:-python} - "$DATA" "$OUT" <<'PY'
import json, sys
from pathlib import Path
import numpy as np
from avloc.catalog import DATASETS
from avloc.evaluation.linear_floor import linear_floor
data, out = Path(sys.argv[1]), Path(sys.argv[2])
floor = linear_floor(DATASETS.create({"name": "ave"}, data))
rows = {"linear floor (per second, C on val)": floor}
for m in ("psp", "vscg"):
    reps = [json.loads(p.read_text()) for p in sorted((out / "runs").glob(f"{m}_s*/report.json"))]
    acc = np.array([r["test_acc"] for r in reps])
    rows[m] = {"test_acc_mean": acc.mean(), "test_acc_std": acc.std(ddof=1) if len(acc) > 1 else 0.0,
               "per_seed": [{k: r.get(k) for k in ("val_acc", "test_acc", "selected_epoch", "test")} for r in reps]}
print(json.dumps(rows, indent=1))
(out / "summary.json").write_text(json.dumps(rows, indent=1))
PY
