# flowship: the only entry points people type; CI calls the same targets.
# Every target installs what it needs first (.venv, stamped: the second call is instant).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# Settings live in $(CONFIG); the variables below only override them for one call (empty: the
# config's value), e.g. `make serve PORT=3001` or `make train MAX_WORKERS=2`.
CONFIG ?= config/project.toml
CONSTRAINTS ?= constraints.txt
IMAGE ?=
CONTAINER_ENGINE ?= auto
BASE_IMAGE ?=
BRANCH ?=
PRODUCTION ?=
MAX_WORKERS ?=
TRAIN_ARGS ?=
DATA ?=
TARGET ?=
TASK ?=
OUT ?=
FORCE ?=
TEST_WORKERS ?=
MONITOR_ARGS ?=
FAIL_ON_DRIFT ?=
HOST ?=
PORT ?=
URL ?=
CHALLENGER ?=
ID ?=
SINCE ?=
PREDICTION_LOG_DIR ?=
INPUT ?=
OUTPUT ?=
MODEL ?=
SCORE_ARGS ?=
SCENARIO ?= baseline
ROWS ?=
SEED ?=
DASHBOARD_PORT ?= 8000
ARGO_OUT ?= build/argo
SCOPE := $(if $(BRANCH),--branch $(BRANCH)) $(if $(PRODUCTION),--production)
FLOWSHIP := $(BIN)/python -m flowship
# flows wait on process start-up and the datastore much of the time: one more test process
# than cores keeps them busy
TEST_PROCESSES := $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
CONTAINER := $(BIN)/python -m flowship.container --engine $(CONTAINER_ENGINE)
# `run=<the run the image packages>`: RUN=, else the branch's champion (fails with its message)
CHAMPION_RUN = run=$(or $(RUN),$$($(FLOWSHIP) champion --config $(CONFIG) $(SCOPE) --pathspec-only))

export PATH := $(BIN):$(PATH)
export USERNAME ?= $(or $(USER),flowship)
export METAFLOW_DATASTORE_SYSROOT_LOCAL ?= $(CURDIR)
export BENTOML_DO_NOT_TRACK := True
export DO_NOT_TRACK := 1
export PYTHONDONTWRITEBYTECODE := 1

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "flowship needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[dev]"
	@touch $@

## Create .venv with the pinned dependencies (constraints.txt)
install: $(STAMP)

# `make demo` times its phases (install, train, cards, bento, serve ready, first answer, the
# monitoring loop) in $(DEMO_PHASES); the loop prints them at the end. Its clock starts when
# make reads this file, before the venv is installed.
DEMO_PHASES := build/demo-phases.txt
ifneq ($(filter demo,$(MAKECMDGOALS)),)
DEMO_STARTED := $(shell date +%s.%N)
endif

## The whole loop: train -> gate -> Bento -> serve -> traffic -> monitor -> drift -> retrain -> new Bento
demo: $(STAMP)
	@mkdir -p $(dir $(DEMO_PHASES)) && printf 'start %s\ninstall %s\n' $(DEMO_STARTED) "$$(date +%s.%N)" > $(DEMO_PHASES)
	$(MAKE) --no-print-directory train
	@echo "train $$(date +%s.%N)" >> $(DEMO_PHASES)
	@echo; $(MAKE) --no-print-directory champion
	@$(FLOWSHIP) card --config $(CONFIG) --step evaluate
	@$(FLOWSHIP) card --config $(CONFIG) --step gate
	@echo "cards $$(date +%s.%N)" >> $(DEMO_PHASES)
	$(MAKE) --no-print-directory bento
	@echo "bento $$(date +%s.%N)" >> $(DEMO_PHASES)
	$(FLOWSHIP) loop --config $(CONFIG) --phases $(DEMO_PHASES) $(if $(URL),--url $(URL))

## Run the whole test suite (unit, flows) in cores+1 processes (TEST_WORKERS=1: one process)
test: $(STAMP)
	$(BIN)/pytest $(if $(filter 1,$(TEST_WORKERS)),,-n $(or $(TEST_WORKERS),$(TEST_PROCESSES)) --dist loadfile)

## Check style, types and config files (pre-commit on all files)
lint: $(STAMP)
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

## Fix formatting and autofixable lint
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Type-check the library
typecheck: $(STAMP)
	$(BIN)/mypy

## Write a commented config for your own table: make init DATA=data/x.csv TARGET=col [TASK=, OUT=, FORCE=1]
init: $(STAMP)
	@test -n "$(DATA)" -a -n "$(TARGET)" || { echo "usage: make init DATA=path/to/table.csv TARGET=<column> [TASK=auto|binary|multiclass|regression] [OUT=config/x.toml] [FORCE=1]"; exit 2; }
	$(FLOWSHIP) init $(DATA) --target $(TARGET) $(if $(TASK),--task $(TASK)) $(if $(OUT),--out $(OUT)) $(if $(FORCE),--force)

## Run TrainFlow and its gate (CONFIG=, MAX_WORKERS=, BRANCH=, PRODUCTION=1, TRAIN_ARGS="--dry-run True")
train: $(STAMP)
	$(FLOWSHIP) train --config $(CONFIG) $(SCOPE) $(if $(MAX_WORKERS),--max-workers $(MAX_WORKERS)) -- $(TRAIN_ARGS)

## Show the champion of your branch: run, metrics, lineage, when it was promoted (BRANCH=, PRODUCTION=1)
champion: $(STAMP)
	$(FLOWSHIP) champion --config $(CONFIG) $(SCOPE)

## Show every promotion and demotion of the champion, oldest first
history: $(STAMP)
	$(FLOWSHIP) history --config $(CONFIG) $(SCOPE)

## Make an earlier run whose gate passed the champion again: make rollback RUN=TrainFlow/<id>
rollback: $(STAMP)
	@test -n "$(RUN)" || { echo "usage: make rollback RUN=TrainFlow/<run id>   (see make history)"; exit 2; }
	$(FLOWSHIP) rollback --config $(CONFIG) $(SCOPE) --run $(RUN)

## Print the gate verdict of a run (RUN=latest); exits 1 when blocked; writes reports/gate/
verdict: $(STAMP)
	$(FLOWSHIP) verdict --config $(CONFIG) $(SCOPE) --run $(or $(RUN),latest) --fail-on-block --json reports/gate --html reports/gate

## Export the champion (or RUN=TrainFlow/<id>) and build the Bento; CHALLENGER=TrainFlow/<id>|latest adds a challenger
bento: $(STAMP)
	$(FLOWSHIP) bento --config $(CONFIG) $(SCOPE) $(if $(RUN),--run $(RUN)) $(if $(CHALLENGER),--challenger $(CHALLENGER)) --tag-file .bento-tag
	@echo "serve it: make serve"

## Create an API key for a caller: make api-key ID=<name> (prints the key once; its hash goes to [serving] api_keys_file)
api-key: $(STAMP)
	@test -n "$(ID)" || { echo "usage: make api-key ID=<name of the caller>"; exit 2; }
	@$(FLOWSHIP) api-key --config $(CONFIG) --id $(ID)

## Champion vs challenger on the labelled rows of the prediction log (SINCE=, PREDICTION_LOG_DIR=); writes reports/compare/
compare: $(STAMP)
	$(FLOWSHIP) compare --config $(CONFIG) $(SCOPE) $(if $(SINCE),--since $(SINCE)) $(if $(PREDICTION_LOG_DIR),--log-dir $(PREDICTION_LOG_DIR))

## Promote the served challenger when the live comparison favours it ([gate] live_min_labels, live_max_regression)
promote-challenger: $(STAMP)
	$(FLOWSHIP) promote-challenger --config $(CONFIG) $(SCOPE) $(if $(SINCE),--since $(SINCE)) $(if $(PREDICTION_LOG_DIR),--log-dir $(PREDICTION_LOG_DIR))

## Serve the last built Bento ([serving] host and port; HOST=0.0.0.0 PORT=, PREDICTION_LOG_DIR=); creates a local API key on first use
serve: $(STAMP)
	$(FLOWSHIP) serve --config $(CONFIG) $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(if $(PREDICTION_LOG_DIR),--log-dir $(PREDICTION_LOG_DIR))

## Send generated traffic to the running service and write its delayed labels (SCENARIO=, ROWS=, SEED=, URL=)
simulate: $(STAMP)
	$(FLOWSHIP) simulate --config $(CONFIG) --scenario $(SCENARIO) $(if $(ROWS),--rows $(ROWS)) $(if $(SEED),--seed $(SEED)) $(if $(URL),--url $(URL))

## Run MonitorFlow (PREDICTION_LOG_DIR=, MONITOR_ARGS=); on RETRAIN retrain with the labelled traffic, rebuild if promoted
monitor: $(STAMP)
	$(FLOWSHIP) monitor --config $(CONFIG) $(SCOPE) $(if $(FAIL_ON_DRIFT),--fail-on-drift) -- $(if $(PREDICTION_LOG_DIR),--log-dir $(PREDICTION_LOG_DIR)) $(MONITOR_ARGS)

## Score a table with the champion: make score INPUT=data/x.parquet OUTPUT=scores/x [MODEL=TrainFlow/<id>] [SCORE_ARGS="--overwrite True --log-predictions True"]
score: $(STAMP)
	$(FLOWSHIP) score --config $(CONFIG) $(SCOPE) $(if $(INPUT),--input '$(INPUT)') $(if $(OUTPUT),--output '$(OUTPUT)') $(if $(MODEL),--model $(MODEL)) $(if $(MAX_WORKERS),--max-workers $(MAX_WORKERS)) -- $(SCORE_ARGS)

## Compile TrainFlow, MonitorFlow and ScoreFlow into Argo WorkflowTemplates in $(ARGO_OUT)/ (local S3 stand-in unless S3 is configured)
argo: $(STAMP)
	$(FLOWSHIP) argo --config $(CONFIG) $(SCOPE) --out $(ARGO_OUT)

## Open the Evidently UI on the monitoring workspace at 127.0.0.1:$(DASHBOARD_PORT)
dashboard: $(STAMP)
	$(BIN)/evidently ui --workspace monitoring/workspace --host 127.0.0.1 --port $(DASHBOARD_PORT)

## Install podman, runc and mmdebstrap (apt-get) when no Docker daemon answers and they are missing
container-tools: $(STAMP)
	@missing=$$($(CONTAINER) tools); \
	 if [ -n "$$missing" ]; then echo "installing $$missing"; \
	   apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

## Make the Bento's base image available: present, pulled, else built from Debian packages (BASE_IMAGE=local)
base-image: container-tools
	$(CONTAINER) base-image $(if $(filter local,$(BASE_IMAGE)),--local)

## Build the image of the last Bento (CONTAINER_ENGINE=auto|docker|podman; IMAGE=, default <run id>-<git sha>)
containerize: base-image
	$(CHAMPION_RUN) && $(CONTAINER) containerize --run "$$run" $(if $(IMAGE),--image $(IMAGE))

## Run the image and prove it: /readyz, /predict = the champion's pipeline, /metadata, 4xx, log, SIGTERM
smoke-container: container-tools
	$(CHAMPION_RUN) && $(CONTAINER) smoke --run "$$run" $(if $(IMAGE),--image $(IMAGE))

## Write the latest TrainFlow cards to reports/evaluate_card.html and reports/gate_card.html
card: $(STAMP)
	$(FLOWSHIP) card --config $(CONFIG) $(SCOPE) --step evaluate
	$(FLOWSHIP) card --config $(CONFIG) $(SCOPE) --step gate

# The serving benchmark installs its peers (benchmarks/peers.txt) into build/peers/ (~1.9 GB, once).
## Run the speed and memory benchmarks (ratios against the named baselines; needs wrk on PATH)
bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "make bench needs the wrk load generator: apt-get install wrk (Debian/Ubuntu) or brew install wrk"; exit 2; }
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/train.py --rows 5000000 --flow-only --runs 1
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/serving.py --config config/delivery.toml
	$(BIN)/python benchmarks/monitor.py
	$(BIN)/python benchmarks/score.py

## Regenerate constraints.txt from the current .venv (after changing a range in pyproject.toml)
constraints: $(STAMP)
	@{ sed -n '1,3p' constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/^pre_commit/pre-commit/'; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt
	@echo "constraints.txt regenerated; review 'git diff constraints.txt'"

## Remove the venv, the local Metaflow datastore, reports and caches
clean:
	rm -rf $(VENV) .metaflow .ci-state reports logs monitoring .bento-tag .image-tag .flowship .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# CI-only glue (.github/workflows call these): changed-model, summaries, drift-issue, state, ...
include ci.mk

## Show this help
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-z][a-z-]*:/{if(doc){split($$0,t,":"); printf "  make %-12s %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)

.PHONY: install demo init test lint format typecheck train champion history rollback verdict bento api-key compare promote-challenger serve simulate monitor score argo dashboard container-tools base-image containerize smoke-container card bench constraints clean help
