"""Test-wide environment: a user for Metaflow, telemetry off, no inherited datastore root."""

import os
import tempfile

# Metaflow reads these at import time, so set them before any test imports it.
os.environ.setdefault("USERNAME", "flowship-tests")
os.environ["BENTOML_DO_NOT_TRACK"] = "True"
os.environ["DO_NOT_TRACK"] = "1"
# Each flow test picks its own datastore root; never write into the developer's .metaflow.
os.environ.pop("METAFLOW_DATASTORE_SYSROOT_LOCAL", None)
# BentoML's model and Bento store: a throwaway one per test session, never ~/bentoml.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="flowship-bentoml-")
