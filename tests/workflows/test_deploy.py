"""The Kubernetes manifests in deploy/ are valid and run the Bento the way it expects to run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helpers import REPO

DEPLOY = REPO / "deploy"
# The oldest Kubernetes the manifests promise to apply to; kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.33"
KUSTOMIZATION = "kustomization.yaml"  # kustomize's own file, not a Kubernetes resource
BENTO_UID = 1034  # the `bentoml` user of every image `bentoml containerize` builds
MANIFESTS = sorted(path for path in DEPLOY.glob("*.yaml") if path.name != KUSTOMIZATION)


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _resource(kind: str) -> dict[str, Any]:
    """The one resource of `kind` across deploy/; fails when there is none or several."""
    found = [doc for path in MANIFESTS for doc in _load(path) if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in {DEPLOY}, found {len(found)}"
    return found[0]


def _container() -> dict[str, Any]:
    containers = _resource("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "the Deployment runs the Bento alone, without sidecars"
    return containers[0]


def _container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    assert port in named, f"port name {port!r} is not one of the container's ports {named}"
    return named[port]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {var["name"]: var["value"] for var in container.get("env", []) if "value" in var}


def test_manifests_found() -> None:
    """deploy/ holds the four manifests the Bento needs."""
    assert {path.name for path in MANIFESTS} == {
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
        "pvc.yaml",
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_manifest_validates_strictly(path: Path) -> None:
    """Each resource matches the Kubernetes schema, with no unknown or misspelled field."""
    documents = _load(path)
    assert documents, f"{path.name} holds no resource"
    for document in documents:
        used = kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        assert used == KUBERNETES_VERSION, f"validated against {used}, not {KUBERNETES_VERSION}"


def test_strict_validation_rejects_a_misspelled_field() -> None:
    """The validation above would catch a typo: an unknown container field is an error."""
    deployment = copy.deepcopy(_resource("Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readynessProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    """`kubectl apply -k deploy/` applies every manifest in the folder, and nothing else."""
    kustomization = yaml.safe_load((DEPLOY / KUSTOMIZATION).read_text())
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), f"a resource is listed twice: {resources}"
    assert set(resources) == {path.name for path in MANIFESTS}


def test_kustomization_image_is_the_deployments() -> None:
    """`kustomize edit set image flowship=...` rewrites the image the container runs."""
    kustomization = yaml.safe_load((DEPLOY / KUSTOMIZATION).read_text())
    names = [image["name"] for image in kustomization["images"]]
    assert names == ["flowship"]
    assert _container()["image"].split(":")[0] == "flowship"


def test_deployment_runs_as_the_bentoml_user() -> None:
    """Non-root as uid 1034, no privilege escalation, no capabilities, the default seccomp."""
    pod = _resource("Deployment")["spec"]["template"]["spec"]
    container = _container()
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == BENTO_UID
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert security.get("privileged", False) is False


def test_deployment_probes_bentoml_health_endpoints() -> None:
    """Readiness asks /readyz and liveness /livez, both on the port BentoML serves."""
    container = _container()
    served = _container_port(container, "http")
    assert served == 3000
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, f"{probe} asks {get['path']}, BentoML answers on {path}"
        assert _container_port(container, get["port"]) == served


def test_deployment_requests_and_limits_resources() -> None:
    """The scheduler and the autoscaler both need the requests; the limits cap a bad model."""
    resources = _container()["resources"]
    assert resources["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert resources["limits"] == {"cpu": "2", "memory": "2Gi"}


def test_deployment_sets_the_bento_environment() -> None:
    """One thread per worker, no telemetry, and the prediction log dir the Bento was built with."""
    env = _env(_container())
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["BENTOML_DO_NOT_TRACK"] == "True"
    bento_envs = yaml.safe_load((REPO / "bentofile.yaml").read_text())["envs"]
    bento_env = {var["name"]: var["value"] for var in bento_envs}
    assert env["FLOWSHIP_PREDICTION_LOG_DIR"] == bento_env["FLOWSHIP_PREDICTION_LOG_DIR"]


def test_prediction_logs_go_to_the_shared_volume() -> None:
    """FLOWSHIP_PREDICTION_LOG_DIR is the mount of the claim every replica writes to."""
    pod = _resource("Deployment")["spec"]["template"]["spec"]
    container = _container()
    log_dir = _env(container)["FLOWSHIP_PREDICTION_LOG_DIR"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert log_dir in mounts, f"nothing is mounted at {log_dir}; mounts: {sorted(mounts)}"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    claim = volumes[mounts[log_dir]]["persistentVolumeClaim"]["claimName"]
    pvc = _resource("PersistentVolumeClaim")
    assert claim == pvc["metadata"]["name"] == "flowship-predictions"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "two replicas or more mount it"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"


def test_deployment_is_scraped_by_prometheus() -> None:
    """The pods announce BentoML's /metrics on the port it serves."""
    annotations = _resource("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == _container_port(_container(), "http")


def test_deployment_selects_its_own_pods() -> None:
    """The selector matches the pod template, or the Deployment is rejected by the API."""
    spec = _resource("Deployment")["spec"]
    assert spec["replicas"] == 2
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()


def test_service_targets_the_container_port() -> None:
    """Port 80 of the ClusterIP Service reaches port 3000 of the Deployment's pods."""
    service = _resource("Service")
    pod_labels = _resource("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["port"] == 80
    assert _container_port(_container(), port["targetPort"]) == 3000


def test_hpa_scales_the_deployment_on_cpu() -> None:
    """2 to 10 replicas of this Deployment, at 70% of the CPU it requests."""
    hpa = _resource("HorizontalPodAutoscaler")
    deployment = _resource("Deployment")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        deployment["kind"],
        deployment["metadata"]["name"],
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_container_port_refuses_an_unknown_name() -> None:
    """A probe naming a port the container does not declare is caught, not read as 0."""
    with pytest.raises(AssertionError, match="metrics"):
        _container_port({"ports": [{"name": "http", "containerPort": 3000}]}, "metrics")
