#!/usr/bin/env bash
# The commands behind a routed ImageNet-tier defense that handles both threats (issue 25): clean images pass
# untouched, attacked ones go to the adversarial purifier, corrupted ones to a corruption purifier. Resumable stages,
# like scripts/train_imagenet_default.sh: started again with the same OUT it picks up where it stopped (a stage whose
# result exists is skipped, one with a checkpoint resumes, the triplet cache resumes batch by batch). Keep OUT outside
# the work tree.
#
#   CPU: nohup scripts/train_imagenet_realworld.sh > realworld.log 2>&1 &   (GATE=route-loss GATE_EPOCHS=2: stage 2)
#        (OUT=~/.cache/recondefense/runs/realworld; the noise denoiser: about 3 s a step in its pixel phase, 5 s
#        guided, 45 minutes in all on 2 cores; with EXPERT=all the corruption expert: about 3 s a step in its pixel
#        warm-up, 5 minutes an epoch of 3,072 images, then 13-20 s a step with the classifiers' guidance)
#   A run spans sessions on a fresh machine only through what is committed: copy OUT/corruption/checkpoint.safetensors
#   (1 MB) and OUT/gate/checkpoint.safetensors to checkpoints/realworld/corruption/ and .../gate/ and commit them; a
#   stage starts from its committed checkpoint when OUT has none (the gate's triplet cache is made again).
#   GPU: IMAGES=12000 BATCH=128 WORKERS=14 NOISE_PIXEL_STEPS=81 NOISE_EPOCHS=2 NOISE_GENTLE_EPOCHS=2 \
#        scripts/train_imagenet_realworld.sh runs/realworld   (81 steps of 128: the pixel phase sees the images 323 of 32 do)
#   DEBLUR=1: also stage 1d (a deblurring purifier, not composed; design notes)
#   try it out at tiny scale: IMAGES=16 BATCH=8 VAL=4 NOISE_PIXEL_STEPS=2 NOISE_EPOCHS=1 NOISE_GENTLE_EPOCHS=1 scripts/train_imagenet_realworld.sh /tmp/realworld
#     (add EXPERT=all CORRUPTION_EPOCHS=2 CORRUPTION_WARMUP=1 GATE=route-loss GATE_EPOCHS=1 for the other stages)
#
# 1. corruption expert: a residual purifier (x + a zero-initialised U-Net correction: the identity at init, so it
#    cannot cost clean accuracy before it learns) on IMAGES object images (recondefense.data.objects), each batch
#    corrupted online by the 11 trained ImageNet-C corruptions (the 15 but HELD_OUT, as on Fashion-MNIST) at
#    severities 1-5, one corruption and severity per image (a quarter left clean), lr 1e-3 cosine-decayed over
#    CORRUPTION_EPOCHS; the first CORRUPTION_WARMUP epochs learn to restore pixels (the mean squared error: Eq. 1
#    would pin a residual purifier shown clean images to the identity, see recondefense.losses.visual_loss), the
#    rest are guided by
#    the KL between the frozen classifiers' outputs on the purified corrupted image and on the clean one, Lite0 and
#    Lite2 in turn, plus the same KL on the purified clean image (--clean-weight 1: it must leave clean images alone);
# 1b. the noise denoiser (EXPERT=noise, the default): route 2 only ever gets the images the gate opens by hundreds,
#    i.e. Gaussian-like noise, so its purifier learns noise alone: a residual U-Net one level deeper (NOISE_WIDTH 16,
#    NOISE_DEPTH 3: a wider receptive field at 1/8 resolution, where it is cheap), on Gaussian and shot noise at
#    severities 1-5, no clean inputs. Its pixel phase (the mean squared error, an 8-epoch cosine schedule) restores
#    pixels (val PSNR 19.4, 23.3, 24.0 dB after epochs 1-3) but smooths away what the classifier needs (val accuracy
#    on the noisy crops 0.352, 0.313, 0.297; no defense 0.297), so it stops at NOISE_PIXEL_STEPS (323, in epoch 4) and
#    NOISE_EPOCHS (2) guided by the KL of Lite0 and Lite2 start from its checkpoint (lr 1e-3 cosine-decayed). About
#    3 s a step (pixel) and 5 s (guided) on 2 cores: 45 minutes in all. scripts/expert_by_corruption.py on 48
#    validation crops at severity 3: Gaussian 0.542 -> 0.604, shot 0.521 -> 0.688 (impulse, held out: 0.542 -> 0.604).
#    (what -routed2-objects2-pgd ships behind route 2).
# 1c. the gentle denoiser (EXPERT=noise): 1b's denoiser trained on for NOISE_GENTLE_EPOCHS (2) more epochs at lr 5e-4
#    cosine, a quarter of its inputs clean with the same KL on them (--clean-weight 1), so that it leaves lightly
#    noisy images more alone (about 11 s a step, 17 minutes an epoch on 2 cores). What -routed3-objects2-pgd, -routed3-objects3-mix
#    -routed6-objects3-mix, -routed7-objects3-mix, -routed8-objects3-mix, -routed11-objects3-mix, -routed14-objects3-mix, -routed18-objects3-mix and -routed20-objects3-mix ship behind route 2 (the default of Defended(model), -routed23-objects3-mix, ships it trained on longer: checkpoints/realworld/noise-long); checkpoints/realworld/noise-gentle holds its last checkpoint, so
#    on a fresh machine with 1b done the stage only writes final/.
#    EXPERT=all puts stage 1's expert behind route 2 instead (what -routed-objects2-pgd ships; 1b and 1c are skipped).
# 2. the routes. By default (GATE=threshold) none is trained: the default's gate (DEFAULT) already opens by a few
#    units on PGD and by hundreds on noise (scripts/gate_logits.py --pgd), so route 2 takes the images whose gate
#    logit exceeds NOISE_ROUTE_ABOVE (100, between PGD's largest, 16, and noise's smallest, 258, on validation
#    crops; RouteMixture.route_above). With GATE=route-loss, the gate START_GATE (its logit becomes route 1's and
#    route 2's, each less log 2) is trained instead with the route loss on cached pgd+corruption triplets (each
#    batch one source: the paper's PGD against Lite0 or Lite2, or the trained corruptions), clean images and half
#    of them as natural look-alikes (JPEG, sensor noise, sharpening) to route 0, the experts frozen (the loss never
#    looks at them); 2 CPU epochs of it sent half the PGD crops of validation to route 2 (clean 0.922, PGD 0.000);
# 3. compose: the gate (DEFAULT's, or that of 2), the adversarial purifier ADVERSARIAL (default: the one behind the
#    ImageNet default of Defended(model)), the route-2 purifier of 1c (or 1 with EXPERT=all), with the bypass
#    (an expert skips images whose route probability is below its threshold in BYPASS: the adversarial purifier
#    runs on every image, as in the dense default, the corruption purifier only on the images routed to it),
#    validated on the val split under PGD and the trained corruptions (scripts/compose_routed.py); washed-out
#    images (contrast below CONTRAST_FLOOR) are stretched back first. The default before the current one,
#    imagenet-efficientnet_lite0_lite2-routed3-objects2-pgd, is this stage with CONTRAST_FLOOR=0 (its card's
#    command; the current default puts the AE of -objects3-mix behind its gate: scripts/compose_routed.py, its card), -routed5- the same network with the stretch (floor 0.10, target 1: chosen on validation by
#    scripts/contrast_floor.py; -routed4- had 0.08 / 0.2); -routed2- puts 1b's denoiser there, -routed- stage 1's
#    expert (EXPERT=all).
# Lite1 is never used: it is the unseen classifier of the evaluation. The held-out corruptions are never trained on.
set -uo pipefail
{  # bash reads the whole block before running it: editing this file while a run is under way changes nothing in it
DEFAULT_OUT=$HOME/.cache/recondefense/runs/realworld
OUT=${1:-$DEFAULT_OUT}
IMAGES=${IMAGES:-3072}
BATCH=${BATCH:-32}
WORKERS=${WORKERS:-0}
VAL=${VAL:-128}
CORRUPTION_EPOCHS=${CORRUPTION_EPOCHS:-6}
CORRUPTION_WARMUP=${CORRUPTION_WARMUP:-4}  # of CORRUPTION_EPOCHS: pixel loss only (no classifier: 5x cheaper a step)
CORRUPTION_MINUTES=${CORRUPTION_MINUTES:-}
CORRUPTION_WIDTH=${CORRUPTION_WIDTH:-16}
CORRUPTION_DEPTH=${CORRUPTION_DEPTH:-2}
GATE_EPOCHS=${GATE_EPOCHS:-6}
BYPASS=${BYPASS:-0,0.05}  # adversarial,corruption: the adversarial purifier dense, as in the default
PASS_SMOOTHING=${PASS_SMOOTHING:-0}  # what the pass route gives (PurifierConfig.pass_smoothing): as the default
CONTRAST_FLOOR=${CONTRAST_FLOOR:-0.10}  # images of a lower contrast are stretched first (-routed5-; 0: never)
CONTRAST_TARGET=${CONTRAST_TARGET:-1.0}  # ... towards this contrast, no further than their range (1: the range)
RESULT=${RESULT:-$OUT/composed}
EXPERT=${EXPERT:-noise}  # route 2's purifier: noise (stage 1b's denoiser) or all (stage 1's corruption expert)
NOISE_WIDTH=${NOISE_WIDTH:-16}
# the denoiser's stage folders: noise-pixel, noise, noise-gentle (width 16); noise32-pixel, ... for another width, so a
# committed checkpoint of one width is never resumed by a run of another
NOISE_TAG=$([ "$NOISE_WIDTH" = 16 ] && echo noise || echo "noise$NOISE_WIDTH")
ROUTE2=$OUT/$([ "$EXPERT" = noise ] && echo "$NOISE_TAG-gentle" || echo corruption)/final  # what the composition puts there
NOISE_DEPTH=${NOISE_DEPTH:-3}
NOISE_PIXEL_STEPS=${NOISE_PIXEL_STEPS:-323}
NOISE_EPOCHS=${NOISE_EPOCHS:-2}
NOISE_GENTLE_EPOCHS=${NOISE_GENTLE_EPOCHS:-2}
NOISE="corruption:gaussian_noise,shot_noise@1-5"
PY=${PYTHON:-python3}
CLASSIFIERS=imagenet-efficientnet_lite0,imagenet-efficientnet_lite2
HELD_OUT=${HELD_OUT:-impulse_noise,motion_blur,frost,pixelate}  # the Makefile's HELD_OUT_CORRUPTIONS
PGD_CACHE=${PGD_CACHE:-$HOME/.cache/recondefense/runs/objects/triplets}  # train_imagenet_default.sh's cache
DEFAULT=imagenet-efficientnet_lite0_lite2-gated-objects2-pgd  # the gated default before the routes: gate and purifier
ADVERSARIAL=${ADVERSARIAL:-$DEFAULT}  # its adversarial purifier (and mix), as in the default
GATE=${GATE:-threshold}  # threshold: DEFAULT's gate, route 2 above NOISE_ROUTE_ABOVE; route-loss: train stage 2
NOISE_ROUTE_ABOVE=${NOISE_ROUTE_ABOVE:-100}
START_GATE=${START_GATE:-imagenet-efficientnet_lite0_lite2-gated2-pgd}      # the default's gate (and its first AE)
TRAINED=$("$PY" -c "import sys; from recondefense.corruptions import CORRUPTIONS as c; held = sys.argv[1].split(',');
assert set(held) <= set(c), held; print(','.join(n for n in c if n not in held))" "$HELD_OUT") || exit 1
CORRUPTIONS="corruption:$TRAINED@1-5"
mkdir -p "$OUT"
source "$(dirname "$0")/tuned_malloc.sh"  # freed memory kept: faster CPU steps
echo "adversarial purifier: $ADVERSARIAL; start gate: $START_GATE; trained corruptions: $TRAINED"

COMMITTED=$(dirname "$0")/../checkpoints/realworld
has_checkpoint() { [ -f "$1/checkpoint.safetensors" ] || [ -f "$1/checkpoint.pt" ]; }  # .pt: an older run's
train() {  # train FOLDER ARGS...: resumes when FOLDER holds a checkpoint (or one is committed for its stage;
  # NO_COMMITTED=1: not that one, e.g. a stage whose --init-from path is only the committed run's under DEFAULT_OUT)
  local out=$1; shift
  local committed="$COMMITTED/$(basename "$out")/checkpoint.safetensors"
  if ! has_checkpoint "$out" && [ -f "$committed" ] && [ -z "${NO_COMMITTED:-}" ]; then
    mkdir -p "$out" && cp "$committed" "$out/" && echo "resuming from $committed"
  fi
  local resume=(); has_checkpoint "$out" && resume=(--resume)
  "$PY" -m recondefense.train --data "objects:$IMAGES" --classifier "$CLASSIFIERS" --batch-size "$BATCH" --val-limit "$VAL" \
    --num-workers "$WORKERS" --no-progress --out "$out" "${resume[@]}" "$@"
}

# 1. the corruption expert (guidance through Lite0 and Lite2; corruptions cost no attack, so they are made online)
if [ "$EXPERT" = all ] && [ ! -f "$OUT/corruption/final/model.safetensors" ]; then
  budget=(); [ -n "$CORRUPTION_MINUTES" ] && budget=(--max-minutes "$CORRUPTION_MINUTES")
  train "$OUT/corruption" --arch residual --width "$CORRUPTION_WIDTH" --depth "$CORRUPTION_DEPTH" \
    --attack "$CORRUPTIONS" --triplets online --guidance kl --clean-weight 1 --clean-fraction 0.25 --visual-loss mse \
    --epochs "$CORRUPTION_EPOCHS" --warmup-epochs "$CORRUPTION_WARMUP" \
    --lr-schedule cosine --checkpoint-every 20 "${budget[@]}" || exit 1
fi
echo "corruption expert ready: $(date -u +%FT%TZ)"

# 1b. the noise denoiser: its pixel phase (a rerun once it is at NOISE_PIXEL_STEPS trains nothing), then the guided one
if [ "$EXPERT" = noise ] && [ ! -f "$OUT/$NOISE_TAG/final/model.safetensors" ]; then
  noise=(--arch residual --width "$NOISE_WIDTH" --depth "$NOISE_DEPTH" --attack "$NOISE" --triplets online
    --guidance kl --clean-weight 0 --clean-fraction 0 --visual-loss mse --lr 1e-3 --lr-schedule cosine --checkpoint-every 10)
  start=(--init-from "$OUT/$NOISE_TAG-pixel/checkpoint.safetensors")
  if has_checkpoint "$OUT/$NOISE_TAG" || [ -f "$COMMITTED/$NOISE_TAG/checkpoint.safetensors" ]; then
    start=()  # resumed (here or from the committed checkpoint): it keeps the start it had, the pixel phase not needed
  else
    train "$OUT/$NOISE_TAG-pixel" "${noise[@]}" --epochs 8 --warmup-epochs 7 --stop-after-steps "$NOISE_PIXEL_STEPS" || exit 1
  fi
  train "$OUT/$NOISE_TAG" "${noise[@]}" "${start[@]}" --epochs "$NOISE_EPOCHS" --warmup-epochs 0 || exit 1
fi
# 1c. the gentle denoiser (EXPERT=noise): 1b's trained on with a quarter of its inputs clean and the same KL on them
if [ "$EXPERT" = noise ] && [ ! -f "$OUT/$NOISE_TAG-gentle/final/model.safetensors" ]; then
  NO_COMMITTED=$([ "$OUT" = "$DEFAULT_OUT" ] || echo 1) train "$OUT/$NOISE_TAG-gentle" --arch residual --width "$NOISE_WIDTH" --depth "$NOISE_DEPTH" --attack "$NOISE" \
    --triplets online --guidance kl --clean-weight 1 --clean-fraction 0.25 --visual-loss mse --lr 5e-4 \
    --lr-schedule cosine --init-from "$OUT/$NOISE_TAG/final" --epochs "$NOISE_GENTLE_EPOCHS" --warmup-epochs 0 \
    --checkpoint-every 10 || exit 1
fi
echo "route-2 purifier ready ($EXPERT): $(date -u +%FT%TZ)"
# 1d. (DEBLUR=1; weighed and left off, design notes) a deblurring purifier for a routed defense's sharpness route
#    (PurifierConfig.deblur_sharpness_range, compose_routed.py --deblur): a residual U-Net (16, depth 3) on the trained
#    blur corruptions, one pixel epoch then three guided by the KL of Lite0 and Lite2, a quarter of the inputs clean
#    (about 80 minutes on one core). checkpoints/realworld/deblur/final holds what it made on 2026-12-05.
if [ -n "${DEBLUR:-}" ] && [ ! -f "$OUT/deblur/final/model.safetensors" ]; then
  train "$OUT/deblur" --arch residual --width 16 --depth 3 --attack "corruption:defocus_blur,glass_blur,zoom_blur@1-5" \
    --triplets online --guidance kl --clean-weight 1 --clean-fraction 0.25 --visual-loss mse --lr 1e-3 \
    --lr-schedule cosine --epochs 4 --warmup-epochs 1 --checkpoint-every 10 --max-minutes 110 || exit 1
fi

# 2. the routed gate (route loss only: no classifier in the loop), experts frozen. Its PGD triplets are those of the
#    object-photo purifier's cache when it holds the same IMAGES (scripts/mix_triplet_cache.py replays the draws the
#    training loop would make: the PGD of about half the images, at about 1.3 s each on 2 cores, saved), else they are attacked here.
if [ "$GATE" = route-loss ] && [ ! -f "$OUT/gate/final/model.safetensors" ]; then
  if [ ! -f "$OUT/gate/triplets_x_adv.npy" ] && [ -f "$PGD_CACHE/triplets_x_adv.npy" ]; then
    "$PY" scripts/mix_triplet_cache.py --pgd "$PGD_CACHE" --out "$OUT/gate" --corruptions "$CORRUPTIONS" \
      --batch-size "$BATCH" --classifier-count 2 --images "$IMAGES" || echo "(attacking the gate's PGD triplets here)"
  fi
  train "$OUT/gate" --arch routed --detail-depth 3 --corruption-width "$CORRUPTION_WIDTH" \
    --corruption-depth "$CORRUPTION_DEPTH" --init-from "$START_GATE" --freeze bottleneck,corruption \
    --attack "pgd+$CORRUPTIONS" --triplets cached --lr 3e-4 --epochs "$GATE_EPOCHS" --warmup-epochs 0 \
    --visual-weight 0.0 --ce-weight 0.0 --gate-weight 1.0 --gate-negatives 0.5 || exit 1
fi
echo "routes ready ($GATE): $(date -u +%FT%TZ)"
route=(--gate "$DEFAULT" --noise-route-above "$NOISE_ROUTE_ABOVE")
[ "$GATE" = route-loss ] && route=(--gate "$OUT/gate/final")

# 3. the composition, validated
"$PY" scripts/compose_routed.py "${route[@]}" --adversarial "$ADVERSARIAL" \
  --corruption "$ROUTE2" --out "$RESULT" --bypass-below "$BYPASS" --pass-smoothing "$PASS_SMOOTHING" \
  --contrast-floor "$CONTRAST_FLOOR" --contrast-target "$CONTRAST_TARGET" --data "objects:$IMAGES" \
  --classifier imagenet-efficientnet_lite0 --val-limit "$VAL" --corruptions "$CORRUPTIONS" \
  --held-out-corruptions "$HELD_OUT" || exit 1
echo "composed into $RESULT: $(date -u +%FT%TZ)"
exit
}
