#!/usr/bin/env bash
# Train the ImageNet-tier gated purifiers on one GPU within a time budget: the commands behind the weights
# imagenet-efficientnet_lite0_lite2-gated-* (their cards record each command and the epochs it ran).
#
#   scripts/train_imagenet_default.sh [OUT=runs/imagenet-default] [BUDGET_SECONDS=420] [WORKERS=14]
#
# 0. attack 12,000 photo crops once (PGD, EfficientNet-Lite0 and Lite2 in turn): triplets shared by every run;
# 1. two purifiers in parallel, each until its share of the budget is spent (--max-minutes): the paper AE
#    (fine-tuned from imagenet-efficientnet_lite0-pgd) and a residual purifier (identity at init, HGD-style);
# 2. a gate (perturbation detector) in front of each, the purifier frozen.
# Pick between the two gated results on validation (their cards), never on the held-out tables.
set -uo pipefail
OUT=${1:-runs/imagenet-default}
BUDGET=${2:-420}
WORKERS=${3:-14}
PY=${PYTHON:-python3}
START=$(date +%s)
minutes_until() { # minutes left until second $1 of the budget, at least 0.5
    "$PY" -c "import sys, time; print(max(0.5, (${START} + $1 - time.time()) / 60))"
}
CROPS=${CROPS:-12000}  # smaller CROPS and BATCH only to try the script out (e.g. on a CPU)
BATCH=${BATCH:-128}
COMMON=(--data "photos:$CROPS" --classifier imagenet-efficientnet_lite0,imagenet-efficientnet_lite2 --attack pgd
    --triplets cached --batch-size "$BATCH" --val-limit 500 --warmup-epochs 0 --no-progress)
train() { "$PY" -m recondefense.train "${COMMON[@]}" "$@"; }

half=$((WORKERS / 2))
train --epochs 1 --stop-after-steps 1 --num-workers "$WORKERS" --out "$OUT/triplets" || exit 1
for run in recon residual; do
    mkdir -p "$OUT/$run" && cp "$OUT/triplets/triplets_x_adv.npy" "$OUT/$run/"
done
echo "triplets ready after $(($(date +%s) - START)) s"

stage1=$(minutes_until $((BUDGET * 3 / 4 - 40)))
train --init-from imagenet-efficientnet_lite0-pgd --epochs 100 --max-minutes "$stage1" \
    --num-workers "$half" --out "$OUT/recon" >"$OUT/recon.log" 2>&1 &
train --arch residual --width 12 --depth 3 --lr 3e-4 --guidance kl --epochs 100 --max-minutes "$stage1" \
    --num-workers "$half" --out "$OUT/residual" >"$OUT/residual.log" 2>&1 &
wait
echo "purifiers done after $(($(date +%s) - START)) s"

stage2=$(minutes_until $((BUDGET - 30)))
gate=(--arch gated --freeze bottleneck --detail-depth 3 --gate-weight 1 --ce-weight 0 --visual-weight 0
    --epochs 4 --max-minutes "$stage2" --num-workers "$half")
for run in recon residual; do
    if [ -d "$OUT/$run/final" ]; then
        mkdir -p "$OUT/gated-$run" && cp "$OUT/triplets/triplets_x_adv.npy" "$OUT/gated-$run/"
        extra=()
        [ "$run" = residual ] && extra=(--inner residual --width 12 --depth 3)
        train "${gate[@]}" "${extra[@]}" --init-from "$OUT/$run/final" --out "$OUT/gated-$run" \
            >"$OUT/gated-$run.log" 2>&1 &
    fi
done
wait
echo "gates done after $(($(date +%s) - START)) s"
