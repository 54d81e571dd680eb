# A sparsity sweep with bsp: patterns x densities on one network, each cell
# through prune, finetune, eval, compact, bench and estimate, collected into
# one CSV and one SVG of accuracy against measured CPU speedup and estimated
# AIE2 speedup. Copy it and change the variables below.
#
# Usage (after .ci/build):   make -f data/experiments/sweep.mk -j2
#   make -f sweep.mk -j2 BSP=/path/to/bsp OUT=/tmp/sweep PATTERNS="block:8x8 nm" DENSITIES="0.5"
#   make -f sweep.mk models  everything but the benches (they need a quiet machine)
#   data/experiments/sweep-slurm.sh [VAR=value...]   the same sweep as Slurm jobs
#   make -f sweep.mk check   the same machinery on 1,000 images, two cells (a minute)
#   make -f sweep.mk clean
# Writes
#   $(OUT)/sweep.csv   one row per cell plus the dense model (see sweep_table.py)
#   $(OUT)/sweep.svg   accuracy against CPU speedup (fp32 and int8) and AIE2 speedup
#
# The pipeline of a cell (P pattern, D density):
#   base.h5       bsp init + finetune BASE_EPOCHS epochs (dense, every core)
#   P-D.h5        bsp prune base.h5 --pattern P --density D
#   P-D.ft.h5     bsp finetune P-D.h5 --epochs EPOCHS (masks held; JOB_THREADS)
#   P-D.eval.json bsp eval (fp32); P-D.fp32.h5 bsp compact (the sparse kernels
#                 run only on compacted files); P-D.int8.h5 bsp compact --dtype int8
#   P-D.int8.eval.json, P-D.est.json (bsp estimate --compare dense on TARGET)
#   P-D.bench.json     bsp bench P-D.fp32.h5 --baseline dense (fp32 sparse vs fp32 dense)
#   P-D.int8.bench.json bsp bench --against base.int8.h5 (int8 vs int8 dense)
# "nm" takes its N from the density: nm:N:8 with N = 8 x D (6:8, 4:8, 2:8).
#
# make -j runs the cells' training in parallel (JOB_THREADS threads each).
# The benches wait until every model is made and then run one at a time
# (flock on $(OUT)/bench.lock) with every core: timings taken beside other
# work mean little on a small machine. On 2 cores the whole sweep takes
# about half an hour, most of it finetuning.

BSP ?= ../../build/bsp
OUT ?= sweep-out
ARCH ?= fmnist-cnn
DATA ?= fashion-mnist
PATTERNS ?= block:8x8 nm tw:128 unstructured
DENSITIES ?= 0.75 0.5 0.25
BASE_EPOCHS ?= 8
EPOCHS ?= 3
TARGET ?= aie2:4x4
REPS ?= 20
JOB_THREADS ?= 1
# Extra options for every finetune and eval (check: --limit).
TRAIN_OPTS ?=
EVAL_OPTS ?=
PYTHON ?= python3

HERE := $(dir $(lastword $(MAKEFILE_LIST)))
# Cell names: the pattern with ':' as '_' (make targets cannot hold ':').
name = $(subst :,_,$(1))-$(2)
# The pattern bsp prune takes for a cell.
pattern = $(if $(filter nm,$(1)),nm:$(shell $(PYTHON) -c 'print(round(8 * $(2)))'):8,$(1))
CELLS := $(foreach p,$(PATTERNS),$(foreach d,$(DENSITIES),$(call name,$(p),$(d))))
MADE := $(foreach c,$(CELLS),$(OUT)/$(c).eval.json $(OUT)/$(c).int8.eval.json $(OUT)/$(c).est.json $(OUT)/$(c).fp32.h5)
BENCHED := $(foreach c,$(CELLS),$(OUT)/$(c).bench.json $(OUT)/$(c).int8.bench.json)

.PHONY: all models base cells cell check clean
.DELETE_ON_ERROR:
.SECONDARY:

all: $(OUT)/sweep.csv

$(OUT)/sweep.csv: $(MADE) $(BENCHED) $(OUT)/base.eval.json $(OUT)/base.int8.eval.json $(HERE)sweep_table.py
	$(PYTHON) $(HERE)sweep_table.py --dir $(OUT) --cells "$(CELLS)" --arch $(ARCH) --target $(TARGET) \
	  --csv $@ --svg $(OUT)/sweep.svg
	cat $@

# Everything but the benches (train now, bench on a quiet machine later).
models: $(MADE) $(OUT)/base.eval.json $(OUT)/base.int8.eval.json
# The pieces sweep-slurm.sh runs as jobs: the base model; the cells' names,
# one a line; one cell's models (CELL=name).
base: $(OUT)/base.eval.json $(OUT)/base.int8.eval.json
cells:
	@printf '%s\n' $(CELLS)
cell:
	$(if $(filter $(CELL),$(CELLS)),,$(error CELL=$(CELL) is not one of: $(CELLS)))
	$(MAKE) -f $(lastword $(MAKEFILE_LIST)) $(OUT)/$(CELL).eval.json $(OUT)/$(CELL).int8.eval.json $(OUT)/$(CELL).est.json \
	  $(OUT)/$(CELL).fp32.h5

$(OUT):
	mkdir -p $@

$(OUT)/base.h5: | $(OUT)
	$(BSP) init --arch $(ARCH) -o $(OUT)/base.init.h5 -q
	$(BSP) finetune $(OUT)/base.init.h5 --data $(DATA) --epochs $(BASE_EPOCHS) $(TRAIN_OPTS) --log $(OUT)/base.log.csv -o $@
$(OUT)/base.int8.h5: $(OUT)/base.h5
	$(BSP) compact $< --dtype int8 --calib $(DATA) -o $@ -q
$(OUT)/%.eval.json: $(OUT)/%.h5
	$(BSP) eval $< --data $(DATA) $(EVAL_OPTS) --threads $(JOB_THREADS) --json > $@

define cell
$(OUT)/$(1).h5: $(OUT)/base.h5
	$(BSP) prune $$< --pattern $(call pattern,$(2),$(3)) $(if $(filter nm,$(2)),,--density $(3)) -o $$@ -q
$(OUT)/$(1).ft.h5: $(OUT)/$(1).h5
	$(BSP) finetune $$< --data $(DATA) --epochs $(EPOCHS) $(TRAIN_OPTS) --threads $(JOB_THREADS) -q \
	  --log $(OUT)/$(1).log.csv -o $$@
$(OUT)/$(1).eval.json: $(OUT)/$(1).ft.h5
	$(BSP) eval $$< --data $(DATA) $(EVAL_OPTS) --threads $(JOB_THREADS) --json > $$@
$(OUT)/$(1).fp32.h5: $(OUT)/$(1).ft.h5
	$(BSP) compact $$< --threads $(JOB_THREADS) -o $$@ -q
$(OUT)/$(1).int8.h5: $(OUT)/$(1).ft.h5
	$(BSP) compact $$< --dtype int8 --calib $(DATA) --threads $(JOB_THREADS) -o $$@ -q
$(OUT)/$(1).est.json: $(OUT)/$(1).int8.h5
	$(BSP) estimate $$< --target $(TARGET) --compare dense --json > $$@
$(OUT)/$(1).bench.json: $(MADE) $(OUT)/base.int8.eval.json
	flock $(OUT)/bench.lock $(BSP) bench $(OUT)/$(1).fp32.h5 --baseline dense --reps $(REPS) --json > $$@
$(OUT)/$(1).int8.bench.json: $(MADE) $(OUT)/base.int8.eval.json
	flock $(OUT)/bench.lock $(BSP) bench $(OUT)/$(1).int8.h5 --against $(OUT)/base.int8.h5 --reps $(REPS) --json > $$@
endef
$(foreach p,$(PATTERNS),$(foreach d,$(DENSITIES),$(eval $(call cell,$(call name,$(p),$(d)),$(p),$(d)))))

check:
	$(MAKE) -f $(lastword $(MAKEFILE_LIST)) OUT=$(OUT)/check PATTERNS="block:8x8 nm" DENSITIES=0.5 \
	  BASE_EPOCHS=1 EPOCHS=1 REPS=3 TRAIN_OPTS="--limit 1000" EVAL_OPTS="--limit 500" all

clean:
	rm -rf $(OUT)
