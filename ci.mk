# flowship: CI-only glue, included from the Makefile (`include ci.mk`); the workflows in
# .github/workflows call these targets, and they run locally too.

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

.PHONY: state-check state-manifest
