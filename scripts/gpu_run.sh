#!/usr/bin/env bash
# One call on a lent GPU machine (it reaches nothing; about 15 minutes of device time per session, start included):
# the stages of scripts/train_imagenet_default.sh for several candidates at once, sharing one triplet cache, each
# stopped by its own clock, everything packed into $OUT/<candidate>.tgz before BUDGET seconds have passed.
#
#   here:  python scripts/gpu_pack.py --out .gpu   (classifiers and the train/val object photos, about 50 MiB;
#          the working tree travels too, 64 MiB in all: move results/, checkpoints/, docs/ and the weights folders
#          this run does not start from out of the tree for the call, and `git checkout -- .` after it)
#   there: bash scripts/gpu_run.sh                 (the device tool's run, carrying .gpu, timeout_s 590: the stages
#          end by BUDGET, 490 s, and the archives take seconds; OUT is set there)
#   back here: mkdir -p runs/gpu; for f in <the run's files_at>/*.tgz; do tar xzf "$f" -C runs/gpu; done
#          make imagenet-gpu-candidates GPU_RUNS=runs/gpu   (each purifier composed behind the default's gate and
#          noise route, scripts/compose_routed.py, then all validated beside the default, make imagenet-objects-val;
#          a candidate that wins there: benchmarks/inference.py --weights it, then the test rows and the cards)
#   try it at tiny scale on the CPU: PACK=none IMAGES=16 BATCH=8 VAL=4 WORKERS=0 PURIFIER_MINUTES=0.05 \
#          ANNEAL_SECONDS=1 GATE_MINUTES=0.05 BUDGET=900 OUT=/tmp/gpu-out RUNS=/tmp/gpu-runs bash scripts/gpu_run.sh
#
# Candidates (VARIANTS, name:widths, the purifier of the default widened to widths, then annealed): the purifier
# stage runs PURIFIER_MINUTES at lr 1e-3; the anneal stage then gets as many epochs as ANNEAL_SECONDS allows at the
# purifier stage's measured epoch time (cosine from 5e-4 to 0). GATE_MINUTES > 0 also retrains the gate with the
# natural look-alikes of GATE_NEGATIVE_KINDS. Nothing is composed or chosen there: the candidates come back and are
# composed and validated on the CPU (scripts/compose_routed.py, make imagenet-objects-val). ATTACK defaults to mix
# (FGSM or PGD per batch): the default, whose purifier saw PGD alone, recovers less of FGSM than of PGD on the
# validation crops (make imagenet-objects-val: 0.654 against 0.680, docs/design.md), though its gate opens on both;
# the same AE trained on mix on the CPU (-objects3-mix, START_PURIFIER's default) recovered 0.684 and 0.745 there.
# A purifier wider than the default's costs more than the speed budget dense on clean traffic: it serves as the
# strong purifier, on the images the gate flags, beside the default's small one (make imagenet-gpu-candidates
# composes each candidate both ways; the default's strong purifier is such a wide AE, trained on the CPU).
set -uo pipefail
{  # bash reads the whole block before running it: editing this file while a run is under way changes nothing in it
T0=$(date +%s)
PACK=${PACK:-.gpu}
RUNS=${RUNS:-/tmp/gpu-runs}
OUT=${OUT:-$RUNS/out}
BUDGET=${BUDGET:-490}
IMAGES=${IMAGES:-16384}
ATTACK=${ATTACK:-mix}
VARIANTS=${VARIANTS:-narrow:16,32,64 wide:16,64,128 wider:16,128,256}
PURIFIER_MINUTES=${PURIFIER_MINUTES:-2.5}
ANNEAL_SECONDS=${ANNEAL_SECONDS:-120}
GATE_MINUTES=${GATE_MINUTES:-4}
START_PURIFIER=${START_PURIFIER:-imagenet-efficientnet_lite0_lite2-objects3-mix}
export PYTHON=${PYTHON:-python3} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}  # 3 runs on 16 cores
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/gpu_run.log") 2>&1
if [ -d "$PACK/root" ]; then cp -r "$PACK/root/." / && echo "object photos installed from $PACK/root"; fi
[ -d "$PACK/site" ] && export PYTHONPATH=$(cd "$PACK/site" && pwd):$PWD${PYTHONPATH:+:$PYTHONPATH}
# every look-alike kind the gate can be shown (recondefense.train.negatives.LOOKALIKES), brightness among them
GATE_NEGATIVE_KINDS=${GATE_NEGATIVE_KINDS:-$("$PYTHON" -c \
  "from recondefense.train.negatives import LOOKALIKES; print(','.join(LOOKALIKES))")}
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
"$PYTHON" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())"
stage() {  # stage OUT_FOLDER ENV...: one run of the training script
  local out=$1; shift
  env IMAGES="$IMAGES" ATTACK="$ATTACK" BATCH="${BATCH:-128}" WORKERS="${WORKERS:-4}" VAL="${VAL:-128}" \
    CHECKPOINT_EVERY="${CHECKPOINT_EVERY:-200}" START_PURIFIER="$START_PURIFIER" "$@" \
    bash scripts/train_imagenet_default.sh "$out"
}
elapsed() { echo $(($(date +%s) - T0)); }

# 0. the triplets, made once (every worker composing object images), then hard-linked into each candidate
stage "$RUNS/shared" WORKERS="${CACHE_WORKERS:-14}" STOP_AFTER=triplets || echo "FAILED: triplets"
echo "triplets: $(elapsed) s"
link_cache() { mkdir -p "$1/triplets" && ln -f "$RUNS/shared/triplets/"triplets_*.npy "$1/triplets/"; }

anneal_epochs() {  # anneal_epochs RUN: the epochs of ANNEAL_SECONDS at the purifier stage's time per epoch
  "$PYTHON" - "$1/recon/metrics.jsonl" "$ANNEAL_SECONDS" <<'EOF'
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
seconds = max((r["seconds"] for r in lines if "seconds" in r), default=0.0)
epochs = max((r["epoch"] for r in lines if "validation" in r and "epoch" in r), default=0)  # not the final line
print(max(1, int(float(sys.argv[2]) * epochs / seconds)) if seconds and epochs else 1)
EOF
}

pids=()
for variant in $VARIANTS; do
  name=${variant%%:*} widths=${variant#*:}
  link_cache "$RUNS/$name" || continue
  (
    left=$((BUDGET - $(elapsed) - 30))  # the purifier stage too ends with a final folder inside the budget
    minutes=$(awk "BEGIN {print ($left < $PURIFIER_MINUTES * 60 ? $left : $PURIFIER_MINUTES * 60) / 60}")
    stage "$RUNS/$name" WIDTHS="$widths" GATE_EPOCHS=0 PURIFIER_EPOCHS=1000 PURIFIER_MINUTES="$minutes" \
      STOP_AFTER=purifier || exit 1
    left=$((BUDGET - $(elapsed) - 30))  # what the budget leaves, less the stage's start: the anneal ends with a final
    seconds=$(awk "BEGIN {print ($left < $ANNEAL_SECONDS) ? $left : $ANNEAL_SECONDS}")
    [ "${seconds%.*}" -gt 0 ] || exit 0
    epochs=$(ANNEAL_SECONDS=$seconds anneal_epochs "$RUNS/$name")
    echo "$name: anneal for $epochs epochs within $seconds s ($(elapsed) s)"
    stage "$RUNS/$name" WIDTHS="$widths" GATE_EPOCHS=0 ANNEAL_EPOCHS="$epochs" \
      ANNEAL_MINUTES="$(awk "BEGIN {print ($left < $ANNEAL_SECONDS * 1.5 ? $left : $ANNEAL_SECONDS * 1.5) / 60}")" \
      STOP_AFTER=anneal
  ) > "$RUNS/$name.log" 2>&1 &
  pids+=($!)
done
if awk "BEGIN {exit !($GATE_MINUTES > 0)}"; then
  link_cache "$RUNS/gate" && stage "$RUNS/gate" GATE_EPOCHS=1000 GATE_MINUTES="$GATE_MINUTES" \
    GATE_NEGATIVE_KINDS="$GATE_NEGATIVE_KINDS" STOP_AFTER=gate > "$RUNS/gate.log" 2>&1 &
  pids+=($!)
fi

while [ "$(elapsed)" -lt "$BUDGET" ]; do
  sleep 5
  running=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
  [ "$running" -eq 0 ] && break
done
if [ "$(elapsed)" -ge "$BUDGET" ]; then
  echo "budget of $BUDGET s reached: stopping what still runs (each stage checkpoints on SIGTERM)"
  pkill -TERM -f "recondefense.train" ; sleep 15
fi
wait "${pids[@]}" 2>/dev/null
echo "done: $(elapsed) s"
for log in "$RUNS"/*.log; do echo "== $log"; tail -n 25 "$log"; done
# what comes back, one archive per candidate (16 MiB a file at most, so one model each: the anneal's final folder,
# else the purifier stage's, else the gate's; a checkpoint, with its optimizer state, would not fit), every stage's
# metrics and the log; not the cache
for run in "$RUNS"/*/; do
  name=$(basename "$run")
  (cd "$RUNS" && {
    find "$name" -name triplets_parts -prune -o -type f -name metrics.jsonl -print
    for stage in anneal recon gate; do
      [ -d "$name/$stage/final" ] && { find "$name/$stage/final" -type f; break; }
    done
    ls "$name.log" 2>/dev/null
  } | tar czf "$OUT/$name.tgz" -T -)
done
ls -la "$OUT"
exit
}
