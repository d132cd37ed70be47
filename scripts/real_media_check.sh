#!/usr/bin/env bash
# The "On composed real media" table of the README, end to end on one CPU thread:
#   AVE layout: avloc synth ave --media -> avloc extract (efficientnet_lite0 + aisfx, one frame per second: the
#   pictures are stills) -> avloc train of AVEL, PSP, VSCG, fully and weakly supervised, SEEDS each -> test
#   accuracy of the val-selected checkpoints beside the all-background answer and the linear per-second floors
#   (evaluation/linear_floor.py: from the seconds' labels and, for the weakly supervised rows, from the video
#   labels; regularisation chosen on val); a diagnostic row trains PSP on the audio alone (the visual
#   features replaced by zeros).
#   UnAV layout: avloc synth unav --media -> avloc extract --format unav (1-s grid) -> avloc train of
#   linear_mil, MIL, CLASP (each with the post-processing its seed-0 run scores best on val: CAS smoothing 1 or 3
#   steps, min-max or not, OIC or mean score) -> test mAP@tIoU (0.1:0.9, averaged) of the val-selected checkpoints.
#   Then avloc predict --run with the best AVE run on val: on the composed test videos (RUNS/predict_test:
#   its per-second accuracy beside avloc eval's) and on SHARED/clips and SHARED/../media (RUNS/predict_clips).
# Every step is skipped when its output exists, so an interrupted run resumes. Writes RUNS/summary.json.
# Usage: scripts/real_media_check.sh OUT [AVE_VIDEOS] [UNAV_VIDEOS] [EPOCHS] [SEEDS]
#   COMPOSED_AVE=DIR: an AVE-layout composition made before (read only; default OUT/composed_ave)
#   CLASS_MAP=FILE: the composition's class map (default media/esc10_imagenet.json; media/esc10_imagenet_transfer.json
#     keeps the classes whose photos transfer between splits)
#   FULL_SHARE=X: the AVE-layout composition's share of videos whose event spans the whole clip (default AVE's 2/3;
#     0: every event partial, with sound alone, picture alone or neither around it)
#   BACKGROUND=N: N more training videos without an event in the AVE-layout composition (default 0; AVE's weak
#     setting trains beside 178 background-only videos, 5 % of its training set)
#   AUDIO=NAME: the audio backbone of the extracted features (aisfx, the default, or soundnet8); its features go to
#     OUT/{ave,unav}_eff_NAME and its runs to OUT/runs (aisfx) or OUT/runs_NAME; the compositions are shared
set -euo pipefail
OUT=${1:?output folder}; AVE_VIDEOS=${2:-600}; UNAV_VIDEOS=${3:-160}; EPOCHS=${4:-5}; SEEDS=${5:-"0 1 2"}
SHARED=${SHARED:-../shared/real}
AVLOC=${AVLOC:-avloc}; PYTHON=${PYTHON:-python}
export OMP_NUM_THREADS=1
CLASS_MAP=${CLASS_MAP:-media/esc10_imagenet.json}; AUDIO=${AUDIO:-aisfx}
MEDIA=(--media --sounds "$SHARED/esc10" --photos "$SHARED/imagenet_samples" --class-map "$CLASS_MAP" --seed 0)
COMPOSED_AVE=${COMPOSED_AVE:-$OUT/composed_ave}
FEATS=$OUT/ave_eff_$AUDIO
RUNS=$OUT/runs; [ "$AUDIO" = aisfx ] || RUNS=$OUT/runs_$AUDIO
mkdir -p "$RUNS"

# --- AVE layout -------------------------------------------------------------------------------------------
AVE_MIX=(--background-videos "${BACKGROUND:-0}"); [ -z "${FULL_SHARE:-}" ] || AVE_MIX+=(--full-share "$FULL_SHARE")
[ -f "$COMPOSED_AVE/Annotations.txt" ] || $AVLOC synth ave "${MEDIA[@]}" "${AVE_MIX[@]}" --videos "$AVE_VIDEOS" \
  --out "$COMPOSED_AVE"
# a composition found in place must be the one asked for (CLASS_MAP, FULL_SHARE, BACKGROUND): resuming mixes nothing
made_with() { $PYTHON -c "import sys; from avloc.media.compose.sources import check_composition
from avloc.tools.paths import config_path
check_composition(sys.argv[1], config_path(sys.argv[2]), *[t(a) for t, a in zip((float, int), sys.argv[3:])])" "$@"; }
made_with "$COMPOSED_AVE" "$CLASS_MAP" "${FULL_SHARE:-0.6666666666666666}" "${BACKGROUND:-0}"
if [ ! -f "$FEATS/features.json" ]; then  # the composition's own splits (by source), not a new random one
  mkdir -p "$FEATS"
  cp "$COMPOSED_AVE"/{Annotations.txt,classes.txt,train_order.h5,val_order.h5,test_order.h5,timeline.json} "$FEATS/"
  $AVLOC extract "$COMPOSED_AVE/videos" --out "$FEATS" --format ave --annotations "$FEATS/Annotations.txt" \
    --frames-per-segment 1 --audio "$AUDIO" --no-progress
fi
AVE_TRAIN=(train.epochs="$EPOCHS" train.batch_size=16 train.lr_decay_epochs=[] train.threads=1
           train.progress=false data.storage=float16)
for seed in $SEEDS; do
  for setting in fully weak; do for m in avel psp vscg; do
    run=$RUNS/${m}_${setting}_s$seed
    [ -f "$run/report.json" ] || $AVLOC train "ave/${m}_${setting}.yaml" --data "$FEATS" --out "$run" \
      train.seed="$seed" "${AVE_TRAIN[@]}"
  done; done
done
# diagnostic: the same labels, the audio alone (visual features all zero)
AONLY=$OUT/ave_audio_only_$AUDIO
if [ ! -f "$AONLY/visual_feature.h5" ]; then
  mkdir -p "$AONLY"
  for f in Annotations.txt classes.txt train_order.h5 val_order.h5 test_order.h5 audio_feature.h5; do
    ln -sf "$(cd "$FEATS" && pwd)/$f" "$AONLY/$f"
  done
  $PYTHON -c "import h5py, numpy as np, sys; n = h5py.File(sys.argv[1] + '/audio_feature.h5')['avadataset'].shape[0]
h5py.File(sys.argv[1] + '/visual_feature.h5', 'w').create_dataset('avadataset', data=np.zeros((n, 10, 7, 7, 4), 'f4'))" "$AONLY"
fi
for seed in $SEEDS; do
  run=$RUNS/psp_audio_only_s$seed
  [ -f "$run/report.json" ] || $AVLOC train ave/psp_fully.yaml --data "$AONLY" --out "$run" train.seed="$seed" \
    "${AVE_TRAIN[@]}"
done

# --- UnAV layout (dense) ----------------------------------------------------------------------------------
COMPOSED_UNAV=$OUT/composed_unav; DENSE=$OUT/unav_eff_$AUDIO
[ -f "$COMPOSED_UNAV/unav100_annotations.json" ] || $AVLOC synth unav "${MEDIA[@]}" --videos "$UNAV_VIDEOS" \
  --out "$COMPOSED_UNAV"
made_with "$COMPOSED_UNAV" "$CLASS_MAP"
if [ ! -f "$DENSE/features.json" ]; then  # stills: one frame and one 1-s audio window per second
  $AVLOC extract "$COMPOSED_UNAV/videos" --out "$DENSE" --format unav --stride 1 --window 1 --fps 1 \
    --audio "$AUDIO" --no-progress
  cp "$COMPOSED_UNAV/unav100_annotations.json" "$DENSE/"
fi
# post-processing chosen per model on val (seed 0): the shipped recipes smooth the CAS over 3 steps, about 1 s on
# UnAV's 0.32-s grid but 3 s on this 1-s grid, which blurs every event boundary
DENSE_TRAIN=(train.threads=1 train.progress=false)
for m in linear_mil mil clasp; do
  for sm in 1 3; do for mm in true false; do for sc in oic mean; do
    run=$RUNS/postprocessing/${m}_smooth${sm}_minmax${mm}_$sc
    [ -f "$run/report.json" ] || $AVLOC train "unav/$m.yaml" --data "$DENSE" --out "$run" train.seed=0 \
      "${DENSE_TRAIN[@]}" eval.smooth=$sm eval.minmax=$mm eval.score=$sc
  done; done; done
  PP=$($PYTHON -c "import json, sys; from pathlib import Path
val = {p.parent.name: json.loads(p.read_text())['val_mAP_avg'] for p in sorted(Path(sys.argv[1]).glob(sys.argv[2] + '_smooth*/report.json'))}
sm, mm, sc = max(val, key=val.get).split('_smooth')[1].split('_')
print(f'eval.smooth={sm} eval.minmax={mm[6:]} eval.score={sc}')" "$RUNS/postprocessing" "$m")
  for seed in $SEEDS; do
    run=$RUNS/${m}_dense_s$seed
    [ -f "$run/report.json" ] || $AVLOC train "unav/$m.yaml" --data "$DENSE" --out "$run" train.seed="$seed" \
      "${DENSE_TRAIN[@]}" $PP
  done
done

# --- the table --------------------------------------------------------------------------------------------
$PYTHON - "$RUNS" "$FEATS" <<'PY'
import json, sys
from pathlib import Path
import numpy as np
import torch
from avloc.catalog import DATASETS
from avloc.evaluation.linear_floor import linear_floor, weak_linear_floor

torch.set_num_threads(1)
runs, feats = Path(sys.argv[1]), Path(sys.argv[2])
cached = feats / "linear_floor.json"
data = DATASETS.create({"name": "ave", "storage": "float16"}, feats)
if not cached.is_file():
    cached.write_text(json.dumps(linear_floor(data)))
cached_weak = feats / "linear_floor_weak.json"
if not cached_weak.is_file():  # the same linear scores, learnt from the weakly supervised models' video labels
    weak = DATASETS.create({"name": "ave", "storage": "float16", "setting": "weak"}, feats)
    cached_weak.write_text(json.dumps(weak_linear_floor(weak)))
labels = data.tensors["segment_labels"][data.splits["test"]]  # (N, 10)
timeline = json.loads((feats / "timeline.json").read_text())["videos"]
rows = {"all background (test)": float((labels == len(data.class_names) - 1).double().mean()),
        "linear floor (per second, C on val)": json.loads(cached.read_text()),
        "weak linear floor (video labels, L2 on val)": json.loads(cached_weak.read_text())}
groups = [f"{m}_{s}" for s in ("fully", "weak") for m in ("avel", "psp", "vscg")] + ["psp_audio_only"]
groups += [f"{m}_dense" for m in ("linear_mil", "mil", "clasp")]
for g in groups:
    reps = [json.loads(p.read_text()) for p in sorted(runs.glob(f"{g}_s*/report.json"))]
    if not reps:
        continue
    key = "test_acc" if "test_acc" in reps[0] else "test_mAP_avg"
    x = np.array([r[key] for r in reps])
    rows[g] = {"metric": key, "mean": x.mean(), "std": x.std(ddof=1) if len(x) > 1 else 0.0,
               "per_seed": [round(v, 4) for v in x.tolist()], "selected_epoch": [r["selected_epoch"] for r in reps],
               "val": [round(r[key.replace("test_", "val_")], 4) for r in reps]}
    if key == "test_acc":  # test seconds answered right, per class of the audio-visual ones and per kind of second
        right: dict = {}
        for p in sorted(runs.glob(f"{g}_s*/predictions_test.json")):
            for vid, r in json.loads(p.read_text())["videos"].items():
                rec = timeline[vid.split("#")[0]]
                for kind, pred, true in zip(rec["kinds"], r["pred"], r["true"]):
                    name = rec["events"][0][0] if kind == "av" else kind
                    right.setdefault(name, []).append(pred == true)
        rows[g]["right_per_class_or_kind"] = {k: round(float(np.mean(v)), 3) for k, v in sorted(right.items())}
text = json.dumps(rows, indent=1)
print(text)
(runs / "summary.json").write_text(text + "\n")
PY

# --- avloc predict --run with the best AVE run on val: the composed test videos (per-second accuracy against
# avloc eval's on their features) and the natural clips (out of the training domain) ---------------------------
BEST=$($PYTHON -c "import json, sys; from pathlib import Path
reps = {p.parent: json.loads(p.read_text())['val_acc'] for p in Path(sys.argv[1]).glob('*_s*/report.json')
        if 'audio_only' not in p.parent.name and 'test_acc' in json.loads(p.read_text())}
print(max(reps, key=reps.get))" "$RUNS")
$PYTHON - "$COMPOSED_AVE" "$RUNS/predict_test" <<'PY'
import json, sys
from pathlib import Path
composed, out = Path(sys.argv[1]), Path(sys.argv[2])
videos = json.loads((composed / "timeline.json").read_text())["videos"]
db = {v: {"subset": "test", "duration": float(len(r["audio"])),
          "annotations": [{"segment": [float(s), float(e)], "label": c} for c, s, e in r["events"]]}
      for v, r in videos.items() if r["split"] == "test"}
out.mkdir(parents=True, exist_ok=True)
(out / "gt.json").write_text(json.dumps({"database": db}))
(out / "videos.txt").write_text("".join(f"{(composed / 'videos' / v).resolve()}.mp4\n" for v in db))
PY
$AVLOC predict "$RUNS/predict_test/videos.txt" --run "$BEST" --data "$FEATS" --out "$RUNS/predict_test/pred" \
  --annotations "$RUNS/predict_test/gt.json" > /dev/null
$AVLOC eval "$BEST" --data "$FEATS" --split test > "$RUNS/predict_test/eval.json"
$PYTHON - "$RUNS/predict_test" "$BEST" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
ids = json.loads((out / "gt.json").read_text())["database"]
acc = [json.loads((out / "pred" / v / "events.json").read_text())["avloc"][v]["metrics"]["per_second_acc"] for v in ids]
res = {"run": sys.argv[2], "videos": len(ids), "predict_per_second_acc": sum(acc) / len(acc),
       "eval_acc": json.loads((out / "eval.json").read_text())["acc"]}
print(json.dumps(res))
(out / "predict_vs_eval.json").write_text(json.dumps(res) + "\n")
PY
if [ -d "$SHARED/clips" ]; then
  $AVLOC predict "$SHARED/clips" "$SHARED/../media" --run "$BEST" --data "$FEATS" --out "$RUNS/predict_clips" | tail -n 25
fi
