"""Test-wide environment: a user for Metaflow, telemetry off, no inherited datastore root, and
one API key that every served Bento accepts and every client sends (as a deployment's secret
would be)."""

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
# Every Bento a test serves accepts this key (FLOWSHIP_API_KEYS holds its hash); the CLI's
# clients send it (FLOWSHIP_API_KEY); tests calling HTTP send tests.helpers.AUTH.
os.environ["FLOWSHIP_API_KEY"] = "fsk_tests_0123456789abcdef0123456789abcdef"
os.environ["FLOWSHIP_API_KEYS"] = (
    "tests sha256:"
    + __import__("hashlib").sha256(os.environ["FLOWSHIP_API_KEY"].encode()).hexdigest()
)
os.environ.pop("FLOWSHIP_API_KEYS_FILE", None)
