#!/usr/bin/env bash
# Fine-tune (or train) a defense on your own ImageFolder data (data/train/<class>/*.jpg, data/val/<class>/*.jpg)
# against your own classifier: a torchvision architecture plus a safetensors state dict, normalized inputs.
set -euo pipefail
recondefense train \
  --data data/ --image-size 224 \
  --classifier torchvision:resnet50 --classifier-weights my_resnet50.safetensors \
  --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 \
  --attack pgd --eps 0.01 --step-size 0.004 --steps 10 \
  --epochs 200 --warmup-epochs 50 --batch-size 125 --out runs/my-defense
# Multi-GPU: torchrun --nproc_per_node 8 -m recondefense.train <same flags>
# Interrupted? Add --resume. Then: ReconstructiveDefense.from_pretrained("runs/my-defense/final")
