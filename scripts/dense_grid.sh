#!/usr/bin/env bash
# The experiment grid of docs/dense.md: synthetic UnAV-100 stand-ins from the real annotations at
# the 1 s and the 0.32 s grid, every row of `avloc reproduce dense` and `dense_ablation`, then the
# post-processing audit.
# Usage: scripts/dense_grid.sh ANNOTATIONS_JSON OUT [SEEDS_1S] [SEEDS_032] [SEEDS_CLASP_1S]
# Two worker processes with one thread each (a shared 2-core machine); re-running resumes (finished cells
# are kept), so an interrupted grid still has every row at the seeds done.
set -euo pipefail
ann=$1; out=$2; seeds1=${3:-3}; seeds032=${4:-3}; seeds_clasp=${5:-5}
export OMP_NUM_THREADS=1
G1="data.feat_stride=25 data.num_frames=25 data.fps=25"
mkdir -p "$out"
[ -f "$out/syn1s/unav100_annotations.json" ] || avloc synth unav --annotations "$ann" --videos 1500 --seed 0 \
    --out "$out/syn1s" --feat-stride 25 --num-frames 25 --fps 25
[ -f "$out/syn032/unav100_annotations.json" ] || avloc synth unav --annotations "$ann" --videos 1500 --seed 0 \
    --out "$out/syn032"
# 1 s grid: the models under the common post-processing and under their own, then CLASP's ablations.
avloc reproduce dense --data "$out/syn1s" --seeds "$seeds1" --out "$out/runs_1s" --workers 2 $G1 train.threads=1 \
    > "$out/log_1s.txt" 2>&1
avloc reproduce dense_ablation --data "$out/syn1s" --seeds "$seeds1" --out "$out/runs_1s" --workers 2 $G1 \
    train.threads=1 > "$out/log_1s_ablation.txt" 2>&1
# 0.32 s grid (the original I3D grid, ~3x the steps): the same two tables.
avloc reproduce dense --data "$out/syn032" --seeds "$seeds032" --out "$out/runs_032" --workers 2 train.threads=1 \
    > "$out/log_032.txt" 2>&1
avloc reproduce dense_ablation --data "$out/syn032" --seeds "$seeds032" --out "$out/runs_032" --workers 2 \
    train.threads=1 > "$out/log_032_ablation.txt" 2>&1
# 1 s grid: more seeds for CLASP and its ablations (their differences are what the error of the mean limits).
avloc reproduce dense_ablation --data "$out/syn1s" --seeds "$seeds_clasp" --out "$out/runs_1s" --workers 2 $G1 \
    train.threads=1 > "$out/log_1s_clasp.txt" 2>&1
# Post-processing audit of the linear_mil / MIL / CLASP cells (trained with the shipped post-processing).
python scripts/dense_postproc.py --data "$out/syn1s" --out "$out/postproc_1s.json" --reproduce-out "$out/runs_1s" \
    --seeds "$seeds1" $G1 train.threads=1
python scripts/dense_tables.py --combined "$out/postproc_1s.json" > "$out/postproc_1s.md"
