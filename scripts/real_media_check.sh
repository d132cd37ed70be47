#!/usr/bin/env bash
# End-to-end check on composed real media (ESC-10 recordings + ImageNet photos, AVE layout):
# compose -> avloc extract (efficientnet_lite0 + aisfx) -> avloc train (PSP, VSCG) -> test accuracy of the
# val-selected checkpoint, beside the linear per-second floor (C chosen on val). CPU, one thread.
# Usage: scripts/real_media_check.sh OUT [VIDEOS] [EPOCHS]
set -euo pipefail
OUT=${1:?output folder}; VIDEOS=${2:-140}; EPOCHS=${3:-30}
SHARED=${SHARED:-../shared/real}
export OMP_NUM_THREADS=1
AVLOC=${AVLOC:-avloc}
DATA=$OUT/composed_ave
[ -f "$DATA/Annotations.txt" ] || $AVLOC synth ave --media --sounds "$SHARED/esc10" --photos "$SHARED/imagenet_samples" \
  --videos "$VIDEOS" --seed 0 --out "$DATA"
# still photos: every frame of a second is the same picture, so one frame per second is the 16-frame mean
[ -f "$DATA/features.json" ] || $AVLOC extract "$DATA/videos" --out "$DATA" --format ave \
  --annotations "$DATA/Annotations.txt" --frames-per-segment 1 --no-progress
for m in psp vscg; do
  [ -f "$OUT/runs/$m/report.json" ] || $AVLOC train "ave/${m}_fully.yaml" --data "$DATA" --out "$OUT/runs/$m" \
    train.epochs="$EPOCHS" train.batch_size=16 train.lr_decay_epochs=[] train.threads=1 train.progress=false
done
${PYTHON:-python} - "$DATA" "$OUT" <<'PY'
import json, sys
from pathlib import Path
from avloc.catalog import DATASETS
from avloc.evaluation.linear_floor import linear_floor
data, out = Path(sys.argv[1]), Path(sys.argv[2])
floor = linear_floor(DATASETS.create({"name": "ave"}, data))
rows = {"linear floor (per second, C on val)": floor}
for m in ("psp", "vscg"):
    rep = json.loads((out / "runs" / m / "report.json").read_text())
    rows[m] = {k: rep.get(k) for k in ("val_acc", "test_acc", "selected_epoch", "test")}
print(json.dumps(rows, indent=1))
(out / "summary.json").write_text(json.dumps(rows, indent=1))
PY
