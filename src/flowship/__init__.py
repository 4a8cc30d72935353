"""flowship: Metaflow flows, Evidently gates and a BentoML service for one tabular model."""

# Metaflow packages modules whose name it finds here with the flow's code, so steps that run
# remotely (Kubernetes, Argo, Batch) import the same library as a laptop run.
METAFLOW_PACKAGE_POLICY = "include"

__version__ = "0.1.0"
