#!/usr/bin/env bash
# Data-parallel on CPU (gloo): one process vs `--nproc 2` (torchrun) at the same global batch.
# Usage: benchmarks/ddp_cpu.sh OUT_DIR DATASET "MODELS" "SEEDS" [extra pretrain options...]
#   e.g. benchmarks/ddp_cpu.sh runs/ddp ml-100k "lightgcn simgcl" "0 1 2"
#        benchmarks/ddp_cpu.sh runs/ddp yelp2018 "lightgcn simgcl" "0" --epochs 5 --eval-every 5 --patience 100
# Env: NPROCS (default "1 2": the process counts to run), LABEL (added to the model's name in the
#   file names and the summary, e.g. LABEL=sharded with --set tables=sharded).
# Writes OUT_DIR/<dataset>_<model>[-LABEL]_np<N>_s<seed>.json (result records) and .log; summarise with
# benchmarks/ddp_cpu_summary.py OUT_DIR.
set -euo pipefail
out=$1; dataset=$2; models=$3; seeds=$4; shift 4
mkdir -p "$out"
timer=""  # GNU time, where present: peak RSS of the largest process of the run (OUT_DIR/<tag>.time)
[ -x /usr/bin/time ] && timer="/usr/bin/time -v -o"
for model in $models; do
  for seed in $seeds; do
    for n in ${NPROCS:-1 2}; do
      tag="${dataset}_${model}${LABEL:+-$LABEL}_np${n}_s${seed}"
      [ -s "$out/$tag.json" ] && continue
      OMP_NUM_THREADS=1 ${timer:+$timer $out/$tag.time} python -m recsys_coldstart.cli pretrain -m "$model" --dataset "$dataset" --seed "$seed" \
        --nproc "$n" --no-progress --save "$out/models/$tag" -o "$out/$tag.json" "$@" > "$out/$tag.log" 2>&1 \
        || echo "FAILED $tag (see $out/$tag.log)"
    done
  done
done
