#!/usr/bin/env bash
# The CPU recipe of the object-photo ImageNet default (gate and purifier retrained on the object photographs), as
# resumable stages that may span several sessions: start it again with the same OUT and it picks up where it
# stopped (every stage skips when its result exists, resumes from its checkpoint when one exists, and the triplet
# cache resumes batch by batch). Keep OUT outside the work tree: a fresh checkout does not wipe it.
#
#   nohup scripts/train_objects_cpu.sh [OUT=~/.cache/recondefense/runs/objects] > objects.log 2>&1 &
#
# 0. triplets: IMAGES object images (train split; Lite0 and Lite2 in turn label and attack them with the paper's PGD),
#    attacked once and cached as 8-bit (about 1.3 s per image on 2 CPU cores);
# 1. gate: the gate of the current default, trained again with the detection loss on these triplets, half of each
#    batch's clean images also shown as natural look-alikes (JPEG, sensor noise, sharpening) that must stay closed;
# 2. purifier: the default's AE widened to 16,32,64 filters (more capacity at low resolution; function-preserving,
#    scripts/widen_autoencoder.py), fine-tuned on the same triplets with the KL guidance of Lite0 and Lite2;
# 3. compose: the gate of 1 in front of the purifier of 2, validated on the val split's object images.
# Lite1 is never used: it is the unseen classifier of the evaluation.
set -uo pipefail
OUT=${1:-$HOME/.cache/recondefense/runs/objects}
IMAGES=${IMAGES:-3072}
PURIFIER_EPOCHS=${PURIFIER_EPOCHS:-12}
GATE_EPOCHS=${GATE_EPOCHS:-6}
BATCH=${BATCH:-32}
VAL=${VAL:-128}
WIDTHS=${WIDTHS:-16,32,64}
RESULT=${RESULT:-$OUT/composed}
PY=${PYTHON:-python3}
CLASSIFIERS=imagenet-efficientnet_lite0,imagenet-efficientnet_lite2
DEFAULT_GATE=imagenet-efficientnet_lite0_lite2-gated2-pgd
DEFAULT_INNER=imagenet-efficientnet_lite0_lite2-pgd
mkdir -p "$OUT"

train() {  # train OUT_FOLDER ARGS...: resumes when the folder holds a checkpoint
  local out=$1; shift
  local resume=(); [ -f "$out/checkpoint.pt" ] && resume=(--resume)
  "$PY" -m recondefense.train --data "objects:$IMAGES" --classifier "$CLASSIFIERS" --attack pgd --triplets cached \
    --warmup-epochs 0 --batch-size "$BATCH" --val-limit "$VAL" --no-progress --out "$out" "${resume[@]}" "$@"
}
share_cache() {  # hard-link the cached triplets into a stage's folder (no copy of the ~1 GB)
  mkdir -p "$1"
  for f in triplets_x.npy triplets_y.npy triplets_x_adv.npy; do
    [ -e "$1/$f" ] || ln "$OUT/triplets/$f" "$1/$f" 2>/dev/null || cp "$OUT/triplets/$f" "$1/$f"
  done
}

# 0. the triplets (a one-step run whose only job is the cache)
if [ ! -f "$OUT/triplets/triplets_x_adv.npy" ]; then
  rm -f "$OUT/triplets/checkpoint.pt"
  train "$OUT/triplets" --epochs 1 --stop-after-steps 1 --val-limit 1 || exit 1
fi
echo "triplets ready: $(date -u +%FT%TZ)"

# 1. the gate (detection loss only: no classifier in the loop, minutes)
if [ ! -f "$OUT/gate/final/model.safetensors" ]; then
  share_cache "$OUT/gate"
  train "$OUT/gate" --arch gated --detail-depth 3 --freeze bottleneck --init-from "$DEFAULT_GATE" \
    --epochs "$GATE_EPOCHS" --visual-weight 0.0 --ce-weight 0.0 --gate-weight 1.0 --gate-negatives 0.5 || exit 1
fi
echo "gate ready: $(date -u +%FT%TZ)"

# 2. the purifier behind it
if [ ! -f "$OUT/recon/final/model.safetensors" ]; then
  if [ ! -f "$OUT/widened/model.safetensors" ]; then
    "$PY" scripts/widen_autoencoder.py --from "$DEFAULT_INNER" --widths "$WIDTHS" --out "$OUT/widened" || exit 1
  fi
  share_cache "$OUT/recon"
  train "$OUT/recon" --init-from "$OUT/widened" --widths "$WIDTHS" --epochs "$PURIFIER_EPOCHS" --guidance kl \
    --checkpoint-every 20 || exit 1
fi
echo "purifier ready: $(date -u +%FT%TZ)"

# 3. the composition
"$PY" scripts/compose_gated.py --gate "$OUT/gate/final" --inner "$OUT/recon/final" --out "$RESULT" \
  --data "objects:$IMAGES" --classifier imagenet-efficientnet_lite0 --val-limit "$VAL" || exit 1
echo "composed into $RESULT: $(date -u +%FT%TZ)"
