# flowship: CI-only glue, included from the Makefile (`include ci.mk`); the workflows in
# .github/workflows call these targets, and they run locally too.

# ---- CI state between GitHub Actions runs: the manifest saved with the cached .metaflow/ and
# ---- the check at restore (python -m flowship.ci_state; README, "State between runs")
STATE_MANIFEST ?= .metaflow/state.json

## Fail (exit 2) when the restored state lost a promotion its newest manifest records; print the state as Markdown
state-check: $(STAMP)
	@$(BIN)/python -m flowship.ci_state check --config $(CONFIG) $(SCOPE) --manifest $(STATE_MANIFEST) --restored-key "$${STATE_RESTORED_KEY:-}"

## Write the state manifest (champion, verdict, time, the workflow run writing it) and print it as Markdown
state-manifest: $(STAMP)
	@$(BIN)/python -m flowship.ci_state write --config $(CONFIG) $(SCOPE) --manifest $(STATE_MANIFEST)
	@$(BIN)/python -m flowship.ci_state summary --manifest $(STATE_MANIFEST)

.PHONY: state-check state-manifest
