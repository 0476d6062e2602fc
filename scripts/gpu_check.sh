#!/usr/bin/env bash
# GPU check for issue 17 (must show 6): runs as is on a CUDA machine with the package installed.
#   1. the GPU tests:                  pytest -m gpu tests/gpu
#   2. single-GPU LightGCN / SimGCL on yelp2018 (coldstart pretrain --device cuda)
#   3. multi-GPU data-parallel (NCCL): torchrun --nproc-per-node $(nvidia-smi -L | wc -l), same global batch
#   4. if TorchRec is installed: neighbour-sampled LightGCN on all GPUs, dense vs row-wise sharded tables
# Timings and result JSON go to $OUT (if set) or benchmarks/results/gpu/; a summary table to summary.md.
# Needs torch (CUDA build) only; faiss-gpu is optional. Data: $RECSYS_COLDSTART_DATA/yelp2018.
#
# Options:  --device cpu|cuda  (default cuda)   --dry-run  (print the commands; with --device cpu, run a
#           2-epoch ml-100k-sized smoke version of every step on CPU/gloo so the script itself is checked)
#           --epochs N (default 20)   --models "lightgcn simgcl"   --dataset yelp2018
set -euo pipefail
DEVICE=cuda; DRY=0; EPOCHS=20; MODELS="lightgcn simgcl"; DATASET=yelp2018; BATCH=2048
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2;;
    --dry-run) DRY=1; shift;;
    --epochs) EPOCHS=$2; shift 2;;
    --models) MODELS=$2; shift 2;;
    --dataset) DATASET=$2; shift 2;;
    --batch-size) BATCH=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUTDIR=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUTDIR"
if [ "$DEVICE" = cuda ]; then
  NGPU=$(nvidia-smi -L | wc -l)
  nvidia-smi > "$OUTDIR/nvidia-smi.txt" || true
else
  NGPU=2   # gloo ranks for the CPU dry run
fi
if [ "$DRY" = 1 ] && [ "$DEVICE" = cpu ]; then EPOCHS=2; DATASET=ml-100k; fi
$PY - <<PYEOF > "$OUTDIR/env.txt"
import torch, platform
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "gpus", torch.cuda.device_count(), [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
try:
    import torch_geometric; print("torch_geometric", torch_geometric.__version__)
except ImportError: print("torch_geometric absent")
try:
    import faiss; print("faiss", faiss.__version__, "gpus", getattr(faiss, "get_num_gpus", lambda: 0)())
except ImportError: print("faiss absent (optional)")
PYEOF
cat "$OUTDIR/env.txt"

run() {  # run a command, or print it under --dry-run with --device cuda
  echo "+ $*"
  if [ "$DRY" = 1 ] && [ "$DEVICE" = cuda ]; then return 0; fi
  "$@"
}

# 1. GPU tests (they skip without CUDA: the CPU dry run checks that they collect)
if [ "$DEVICE" = cuda ]; then
  run $PY -m pytest -q -m gpu tests/gpu 2>&1 | tee "$OUTDIR/pytest_gpu.txt"
else
  run $PY -m pytest -q -m gpu tests/gpu -p no:cacheprovider 2>&1 | tee "$OUTDIR/pytest_gpu.txt"
fi

summarize() {  # summarize TAG LABEL NPROC: one row of summary.md from the saved model's manifest
  [ -f "$OUTDIR/models/$1/config.json" ] || return 0
  $PY - "$OUTDIR" "$1" "$2" "$3" <<'PYEOF' >> "$OUTDIR/summary.md"
import json, sys
out, tag, model, n = sys.argv[1:]
meta = json.load(open(f"{out}/models/{tag}/config.json")).get("meta", {})
m, ep, s = meta.get("metrics", {}), meta.get("epochs", 0), meta.get("fit_seconds", float("nan"))
get = lambda k: next((v for kk, v in m.items() if kk.startswith("test_") and kk.endswith(k)), float("nan"))
print(f"| {model} | {n} | {ep} | {s:.1f} | {s / max(ep, 1):.2f} | {get('recall@20'):.4f} | {get('ndcg@20'):.4f} |")
PYEOF
}

# 2 + 3. single device, then data-parallel on all devices, same global batch
echo "| model | processes | epochs | fit s | s/epoch | test recall@20 | test ndcg@20 |" > "$OUTDIR/summary.md"
echo "|---|---|---|---|---|---|---|" >> "$OUTDIR/summary.md"
for model in $MODELS; do
  for n in 1 $NGPU; do
    tag="${DATASET}_${model}_np${n}"
    common=(pretrain -m "$model" --dataset "$DATASET" --device "$DEVICE" --epochs "$EPOCHS" --eval-every "$EPOCHS"
            --patience 1000 --batch-size "$BATCH" --no-progress --save "$OUTDIR/models/$tag" -o "$OUTDIR/$tag.json")
    if [ "$n" = 1 ]; then
      run $PY -m recsys_coldstart.cli "${common[@]}" 2>&1 | tee "$OUTDIR/$tag.log"
    else
      run $PY -m torch.distributed.run --standalone --nproc-per-node "$n" -m recsys_coldstart.cli "${common[@]}" \
        2>&1 | tee "$OUTDIR/$tag.log"
    fi
    summarize "$tag" "$model" "$n"
  done
done

# 4. neighbour-sampled LightGCN on all devices, whole tables per rank vs TorchRec row-wise sharded tables
#    (optional: needs torchrec + the fbgemm wheel built for this torch; recsys_coldstart/train/sharded.py)
if $PY -c "from recsys_coldstart.train.sharded import torchrec_available as a; raise SystemExit(0 if a() else 1)"; then
  OPT=adam; [ "$DEVICE" = cpu ] && OPT=adagrad   # fbgemm's CPU kernels: SGD / Adagrad only
  LR=1e-3; [ "$OPT" = adagrad ] && LR=0.1
  for tables in dense sharded; do
    tag="${DATASET}_lightgcn-sampled-${tables}_np${NGPU}"
    run $PY -m torch.distributed.run --standalone --nproc-per-node "$NGPU" -m recsys_coldstart.cli pretrain -m lightgcn \
      --dataset "$DATASET" --device "$DEVICE" --epochs "$EPOCHS" --eval-every "$EPOCHS" --patience 1000 \
      --batch-size "$BATCH" --no-progress --set sampler=neighbor --set tables="$tables" --set optimizer="$OPT" \
      --set lr="$LR" --save "$OUTDIR/models/$tag" -o "$OUTDIR/$tag.json" 2>&1 | tee "$OUTDIR/$tag.log"
    summarize "$tag" "lightgcn sampled, $tables tables ($OPT)" "$NGPU"
  done
else
  echo "TorchRec not installed: the sharded-table step is skipped (see recsys_coldstart/train/sharded.py)"
fi
cat "$OUTDIR/summary.md"
