"""The champion's container image: built and proven with Docker or podman.

Docker where a Docker daemon answers (GitHub Actions), podman otherwise. With podman every
setting lives in the project's own files under `build/podman/` (containers.conf, storage.conf,
the image store); the user's global configuration is never changed. runc and cgroupfs,
ulimits no higher than the machine's hard limits, host networking. Without a registry, `base-image`
builds the Bento's `FROM` image from Debian packages with mmdebstrap.

Usage:
    python -m flowship.container tools                  # Debian packages podman would need
    python -m flowship.container base-image [--local]
    python -m flowship.container containerize --run TrainFlow/<id>
    python -m flowship.container smoke --run TrainFlow/<id>
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flowship.auth import KEYS_ENV, key_line, new_key
from flowship.errors import FlowshipError, ServingError
from flowship.processes import free_port

EngineName = Literal["docker", "podman"]
ENGINE_CHOICES = ("auto", "docker", "podman")
BUILD_DIR = Path("build")
# Where the bentofile points the service's prediction log (FLOWSHIP_PREDICTION_LOG_DIR).
CONTAINER_LOG_DIR = "/home/bentoml/predictions"
# The local base is imported under this name, then tagged as the bentofile's base image.
LOCAL_BASE = "localhost/flowship/python-base:3.11-bookworm"
DEBIAN_SUITE = "bookworm"  # its python3 is 3.11, the version constraints.txt was resolved for
DEBIAN_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
# dpkg path filters for the base: no manuals, docs or translations, but every copyright file
DPKG_PATHS = (
    "exclude=/usr/share/man/*",
    "exclude=/usr/share/info/*",
    "exclude=/usr/share/locale/*",
    "exclude=/usr/share/doc/*",
    "include=/usr/share/doc/*/copyright",
)
# File times of the base's root file system (Debian 12.0's release day): with them fixed,
# mmdebstrap writes a bit-identical rootfs.tar for the same packages (checked: two builds).
BASE_EPOCH = 1686355200
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# podman 4.3 sets its own RLIMIT_NPROC (soft and hard) to this before it starts a container.
PODMAN_NPROC = 32768
STOP_TIMEOUT_S = 10.0
PROBABILITY_TOLERANCE = 1e-9


class ContainerError(ServingError):
    """The image cannot be built, started or proven; the message says what to do."""


@dataclass(frozen=True)
class Engine:
    """A container engine and how the project drives it.

    Attributes:
        name: the engine's command.
        env: variables added to the environment of every engine command (podman: the
            project's own configuration files).
        build_options: `--opt` values for `bentoml containerize`.
        host_network: containers share the host's network (podman: its bridge networking
            would edit the host's firewall tables); otherwise the port is published.
    """

    name: EngineName
    env: Mapping[str, str] = field(default_factory=dict)
    build_options: tuple[str, ...] = ()
    host_network: bool = False

    def run_options(self, port: int) -> list[str]:
        """Networking options for `run`: the service answers on 127.0.0.1:`port` only.

        On the host's network the server itself binds 127.0.0.1; otherwise the engine
        publishes the port on 127.0.0.1.
        """
        listen = ["-e", f"BENTOML_PORT={port}"]
        if self.host_network:
            return ["--network", "host", "-e", "BENTOML_HOST=127.0.0.1", *listen]
        return ["-p", f"127.0.0.1:{port}:{port}", *listen]

    def run(
        self, *args: str, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one engine command and capture its output.

        Raises:
            ContainerError: the command failed and `check` is set (its output is in the message).
        """
        done = subprocess.run(
            [self.name, *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            output = " ".join((done.stderr or done.stdout).split())  # one line
            raise ContainerError(
                f"`{self.name} {shlex.join(args)}` failed ({done.returncode}): {output[-1500:]}"
            )
        return done

    def image_exists(self, image: str) -> bool:
        """Whether `image` is in the engine's local store."""
        return self.run("image", "inspect", image, check=False).returncode == 0

    def image_id(self, image: str) -> str | None:
        """The id of the image tagged `image`, or None when there is none."""
        done = self.run("image", "inspect", "--format", "{{.Id}}", image, check=False)
        if done.returncode != 0:
            return None
        return done.stdout.strip() or None

    def image_size(self, image: str) -> int:
        """The image's size in bytes, as the engine reports it."""
        return int(self.run("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


# ---- choosing the engine --------------------------------------------------------------------


def choose_engine(requested: str, docker_answers: bool, podman_installed: bool) -> EngineName:
    """The engine to use for `CONTAINER_ENGINE=requested`.

    `auto` takes Docker when a Docker daemon answers, podman otherwise.

    Raises:
        ContainerError: the value is unknown, or the engine asked for is not usable here.
    """
    if requested not in ENGINE_CHOICES:
        raise ContainerError(
            f"CONTAINER_ENGINE must be one of {', '.join(ENGINE_CHOICES)}, got {requested!r}"
        )
    if requested == "docker" or (requested == "auto" and docker_answers):
        if not docker_answers:
            raise ContainerError(
                "CONTAINER_ENGINE=docker, but no Docker daemon answers (`docker info` failed): "
                "start Docker, or use CONTAINER_ENGINE=podman"
            )
        return "docker"
    if not podman_installed:
        reason = "CONTAINER_ENGINE=podman" if requested == "podman" else "no Docker daemon answers"
        raise ContainerError(
            f"{reason} and podman is not installed (with runc): "
            "`make container-tools` or `apt-get install podman runc`"
        )
    return "podman"


def docker_answers() -> bool:
    """Whether a Docker daemon answers `docker info` here."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def missing_packages(
    engine: EngineName, which: Callable[[str], str | None] = shutil.which
) -> list[str]:
    """The Debian packages the engine's path needs and this machine lacks.

    Docker brings its own tools; podman needs runc (crun 1.8 fails on hybrid cgroups) and
    mmdebstrap to build the base image when no registry answers.
    """
    if engine == "docker":
        return []
    return [name for name in ("podman", "runc", "mmdebstrap") if which(name) is None]


# ---- podman's configuration, the project's own --------------------------------------------


@dataclass(frozen=True)
class PodmanPaths:
    """Where podman keeps its configuration and state for this project (under `build/`)."""

    root: Path

    @property
    def containers_conf(self) -> Path:
        return self.root / "containers.conf"

    @property
    def storage_conf(self) -> Path:
        return self.root / "storage.conf"

    @property
    def graphroot(self) -> Path:
        return self.root / "storage"

    @property
    def runroot(self) -> Path:
        return self.root / "run"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def network_dir(self) -> Path:
        return self.root / "networks"

    @property
    def events_log(self) -> Path:
        return self.root / "events.log"


def derive_ulimits(nofile_hard: int, nproc_hard: int) -> list[str]:
    """podman `default_ulimits` no higher than the given hard limits (`ulimit -Hn`, `-Hu`).

    podman's own defaults (`nofile=1048576`, `nproc=1048576`) exceed the hard limits on some
    machines, where every container then fails with `setrlimit RLIMIT_NOFILE: Operation not
    permitted`. podman 4.3 also lowers its own process limit to `PODMAN_NPROC` at start (seen
    with strace), so a container cannot get more processes than that either. An unlimited
    hard limit counts as no limit.
    """
    ulimits = []
    for name, hard, cap in (("nofile", nofile_hard, None), ("nproc", nproc_hard, PODMAN_NPROC)):
        value = _bounded(hard, cap)
        if value is not None:
            ulimits.append(f"{name}={value}:{value}")
    return ulimits


def _bounded(hard: int, cap: int | None) -> int | None:
    """The lower of a hard limit and a cap; None when both are unlimited."""
    if hard < 0 or hard == resource.RLIM_INFINITY:
        return cap
    return hard if cap is None else min(hard, cap)


def current_hard_limits() -> tuple[int, int]:
    """This process's hard limits on open files and processes (`ulimit -Hn`, `ulimit -Hu`)."""
    return (
        resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        resource.getrlimit(resource.RLIMIT_NPROC)[1],
    )


def _toml_string(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string of a path is a valid TOML basic string


def render_containers_conf(paths: PodmanPaths, ulimits: Sequence[str]) -> str:
    """The project's containers.conf: runc, cgroupfs, file events, state under `paths.root`."""
    limits = ", ".join(_toml_string(u) for u in ulimits)
    return "\n".join(
        [
            "# Written by `python -m flowship.container`; the project's own podman settings.",
            "[containers]",
            f"default_ulimits = [{limits}]",
            "",
            "[engine]",
            '# crun 1.8 fails on hybrid cgroup layouts ("cgroups in hybrid mode not supported")',
            'runtime = "runc"',
            'cgroup_manager = "cgroupfs"',
            'events_logger = "file"',
            f"events_logfile_path = {_toml_string(paths.events_log)}",
            f"tmp_dir = {_toml_string(paths.tmp_dir)}",
            "",
            "[network]",
            f"network_config_dir = {_toml_string(paths.network_dir)}",
            "",
        ]
    )


def render_storage_conf(paths: PodmanPaths) -> str:
    """The project's storage.conf: the image store and run state under `paths.root`."""
    return "\n".join(
        [
            "# Written by `python -m flowship.container`; the project's own image store.",
            "[storage]",
            'driver = "overlay"',
            f"graphroot = {_toml_string(paths.graphroot)}",
            f"runroot = {_toml_string(paths.runroot)}",
            "",
        ]
    )


def podman_env(paths: PodmanPaths) -> dict[str, str]:
    """The variables that point podman at the project's configuration files."""
    return {
        "CONTAINERS_CONF": str(paths.containers_conf),
        "CONTAINERS_STORAGE_CONF": str(paths.storage_conf),
    }


def write_podman_config(paths: PodmanPaths, hard_limits: tuple[int, int]) -> dict[str, str]:
    """Write containers.conf and storage.conf under `paths.root`; returns `podman_env`."""
    paths.root.mkdir(parents=True, exist_ok=True)
    for folder in (paths.tmp_dir, paths.network_dir):
        folder.mkdir(exist_ok=True)
    paths.containers_conf.write_text(render_containers_conf(paths, derive_ulimits(*hard_limits)))
    paths.storage_conf.write_text(render_storage_conf(paths))
    return podman_env(paths)


def open_engine(requested: str, build_dir: Path = BUILD_DIR) -> Engine:
    """The engine for `requested` (auto, docker, podman), configured for this project.

    Raises:
        ContainerError: see `choose_engine`.
    """
    answers = requested in {"auto", "docker"} and docker_answers()
    installed = all(shutil.which(tool) for tool in ("podman", "runc"))
    name = choose_engine(requested, answers, installed)
    if name == "docker":
        return Engine("docker")
    paths = PodmanPaths((build_dir / "podman").resolve())
    env = write_podman_config(paths, current_hard_limits())
    return Engine("podman", env=env, build_options=("network=host",), host_network=True)


# ---- the base image -----------------------------------------------------------------------


def base_image_of(bentofile: Path) -> str:
    """The image the Bento's Dockerfile starts `FROM` (the bentofile's `docker.base_image`).

    Raises:
        ContainerError: the bentofile names none.
    """
    import yaml

    image = (yaml.safe_load(bentofile.read_text()).get("docker") or {}).get("base_image")
    if not image:
        raise ContainerError(f"{bentofile} sets no docker.base_image; the image needs one")
    return str(image)


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[Path]:
    """This machine's apt source files (one-line `.list` and deb822 `.sources`), non-empty."""
    candidates = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*"))]
    return [
        p
        for p in candidates
        if p.suffix in {".list", ".sources"} and p.is_file() and p.read_text().strip()
    ]


def mmdebstrap_command(
    out: Path, sources: Sequence[Path], ca_bundle: Path, suite: str = DEBIAN_SUITE
) -> list[str]:
    """The mmdebstrap call that writes a minimal Debian with Python 3.11 to `out` (a tar).

    Documentation, manual pages and translations are left out (47 MB; the copyright files
    stay), as in Docker's slim images. pip may install into the system Python (no
    EXTERNALLY-MANAGED: the Dockerfile installs uv with pip), and the host's CA bundle
    replaces Debian's: HTTPS may go through an intercepting proxy whose CA only the host
    trusts.
    """
    return [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={','.join(DEBIAN_PACKAGES)}",
        *(f"--dpkgopt=path-{rule}" for rule in DPKG_PATHS),
        '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
        f'--customize-hook=cp {shlex.quote(str(ca_bundle))} "$1"{IMAGE_CA_BUNDLE}',
        suite,
        str(out),
        *map(str, sources),
    ]


def import_command(engine: EngineName, rootfs: Path, name: str) -> list[str]:
    """The engine call that turns the root file system into an image named `name`.

    `UV_PYTHON_DOWNLOADS=never`: uv must use the system Python 3.11, not download one.
    """
    return [
        engine,
        "import",
        "--change",
        "ENV UV_PYTHON_DOWNLOADS=never",
        "--change",
        f"ENV SSL_CERT_FILE={IMAGE_CA_BUNDLE}",
        str(rootfs),
        name,
    ]


def mmdebstrap_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for mmdebstrap: `SOURCE_DATE_EPOCH` as given, else `BASE_EPOCH`."""
    return {**environ, "SOURCE_DATE_EPOCH": environ.get("SOURCE_DATE_EPOCH") or str(BASE_EPOCH)}


def host_ca_bundle() -> Path:
    """The CA bundle this machine trusts (`SSL_CERT_FILE`, else Debian's bundle).

    Raises:
        ContainerError: there is none.
    """
    path = Path(os.environ.get("SSL_CERT_FILE") or IMAGE_CA_BUNDLE)
    if not path.is_file():
        raise ContainerError(f"no CA bundle at {path}: set SSL_CERT_FILE to the bundle to trust")
    return path


def build_base_image(engine: Engine, name: str, workdir: Path) -> None:
    """Build the Python 3.11 base from Debian packages and tag it `name` (no registry needed).

    The same packages give the same root file system, byte for byte (`mmdebstrap_env`).

    Raises:
        ContainerError: mmdebstrap is missing or failed, or the import failed.
    """
    if shutil.which("mmdebstrap") is None:
        raise ContainerError("mmdebstrap is not installed: `apt-get install mmdebstrap`")
    sources = apt_sources()
    if not sources:
        raise ContainerError("no apt sources in /etc/apt: mmdebstrap needs a Debian mirror")
    workdir.mkdir(parents=True, exist_ok=True)
    rootfs = workdir / "rootfs.tar"
    cmd = mmdebstrap_command(rootfs, sources, host_ca_bundle())
    print(f"building {name} from Debian {DEBIAN_SUITE} packages: {shlex.join(cmd)}", flush=True)
    started = time.monotonic()
    log = workdir / "mmdebstrap.log"
    with log.open("w") as out:
        env = mmdebstrap_env(os.environ)
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise ContainerError(f"mmdebstrap failed ({done.returncode}); its output is in {log}")
    previous = engine.image_id(name)
    engine.run(*import_command(engine.name, rootfs, LOCAL_BASE)[1:])
    engine.run("tag", LOCAL_BASE, name)
    rootfs.unlink()
    if previous is not None and previous != engine.image_id(name):
        engine.run("image", "rm", previous, check=False)  # the replaced base, unless still used
    size = engine.image_size(name)
    print(f"built {name} ({_mb(size)}) in {time.monotonic() - started:.0f} s")


def ensure_base_image(engine: Engine, name: str, local: bool, workdir: Path) -> None:
    """Make `name` available to the engine: present, else pulled, else built locally.

    With `local`, always build it from Debian packages (never pull).
    """
    if not local:
        if engine.image_exists(name):
            print(f"base image {name} is present ({_mb(engine.image_size(name))})")
            return
        try:
            pulled = engine.run("pull", name, check=False, timeout=120)
            if pulled.returncode == 0:
                print(f"pulled base image {name} ({_mb(engine.image_size(name))})")
                return
            reason = (pulled.stderr or pulled.stdout).strip().splitlines()[-1:]
        except subprocess.TimeoutExpired:
            reason = ["no answer within 120 s"]
        print(f"cannot pull {name} ({' '.join(reason)}): building it locally", flush=True)
    build_base_image(engine, name, workdir)


# ---- the image ----------------------------------------------------------------------------


def image_name(repo: str, run_id: str, sha: str) -> str:
    """The image tag CI uses: `<repo>:<champion run id>-<git sha, 12 characters>`."""
    return f"{repo.lower()}:{run_id}-{sha[:12]}"


def current_sha() -> str:
    """The commit being built: `GITHUB_SHA` in Actions, else the checkout's HEAD, else `local`."""
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "local"


def run_id_of(pathspec: str) -> str:
    """The run id of a run pathspec (`TrainFlow/123` -> `123`).

    Raises:
        ContainerError: it is not a run pathspec.
    """
    flow, _, run_id = pathspec.partition("/")
    if not flow or not run_id or "/" in run_id:
        raise ContainerError(f"{pathspec!r} is not a run pathspec like TrainFlow/<run id>")
    return run_id


def read_tag(path: Path, what: str, make_target: str) -> str:
    """The tag written to `path` by an earlier step.

    Raises:
        ContainerError: the file is missing or empty.
    """
    tag = path.read_text().strip() if path.is_file() else ""
    if not tag:
        raise ContainerError(f"no {what} built yet ({path} is missing): run `make {make_target}`")
    return tag


def containerize(engine: Engine, bento: str, image: str, log: Path) -> float:
    """Build `image` from the Bento with `bentoml containerize`; returns the seconds it took.

    Raises:
        ContainerError: the build failed (the end of its output is in the message).
    """
    bentoml = Path(sys.executable).with_name("bentoml")
    cmd = [str(bentoml), "containerize", bento, "--backend", engine.name, "--image-tag", image]
    for option in engine.build_options:
        cmd += ["--opt", option]
    print(f"{shlex.join(cmd)}  (output: {log})", flush=True)
    # BentoML re-renders the Dockerfile from the Bento's template in a temporary build context
    # and reads the template only from below the working directory: make both the same folder.
    context = (log.parent / "context").resolve()
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    env = {**os.environ, **engine.env, "TMPDIR": str(context)}
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(cmd, env=env, cwd=context, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        print("\n".join(log.read_text().splitlines()[-30:]), file=sys.stderr)
        raise ContainerError(
            f"bentoml containerize failed ({done.returncode}); its output is in {log}"
        )
    return time.monotonic() - started


# ---- the smoke test -----------------------------------------------------------------------


@dataclass(frozen=True)
class SmokeResult:
    """What the smoke test measured."""

    image_bytes: int
    ready_s: float
    stop_s: float
    exit_code: int
    max_difference: float
    log_file: Path


def compare_probabilities(
    answered: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, float]]
) -> float:
    """The largest difference between the service's outputs and the pipeline's: every class's
    probability, or (regression) the predicted value as `{"prediction": value}`.

    Raises:
        ContainerError: a row or a class is missing, or a probability differs by more than
            `PROBABILITY_TOLERANCE`.
    """
    if len(answered) != len(expected):
        raise ContainerError(f"/predict answered {len(answered)} rows for {len(expected)} sent")
    worst = 0.0
    for i, (got, want) in enumerate(zip(answered, expected, strict=True)):
        probabilities = got.get("probabilities", {"prediction": got.get("prediction")})
        if set(probabilities) != set(want):
            raise ContainerError(
                f"row {i}: /predict names classes {sorted(probabilities)}, "
                f"the pipeline {sorted(want)}"
            )
        for label, p in want.items():
            difference = abs(float(probabilities[label]) - p)
            if not math.isfinite(difference) or difference > PROBABILITY_TOLERANCE:
                raise ContainerError(
                    f"row {i}, class {label}: /predict says {probabilities[label]}, "
                    f"the champion's pipeline {p}"
                )
            worst = max(worst, difference)
    return worst


def _sample(champion: Any, rows: int) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
    """Rows of the champion's training data as JSON records, and its pipeline's outputs (each
    class's probability, or `{"prediction": value}`)."""
    schema = champion.schema
    frame = champion.train_data[list(schema.features)].head(rows)
    records = json.loads(frame.to_json(orient="records"))
    outputs = schema.kind.outputs(champion.model, frame)
    if not schema.kind.classifies:
        return records, [{"prediction": float(v)} for v in outputs]
    classes = [str(c) for c in schema.classes]
    return records, [dict(zip(classes, map(float, row), strict=True)) for row in outputs]


def _wait_ready(engine: Engine, name: str, url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # /readyz answers 200 with a body of one newline: the status is the answer
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        state = engine.run("inspect", "--format", "{{.State.Status}}", name, check=False)
        if state.stdout.strip() not in {"created", "running"}:
            raise ContainerError(
                f"the container stopped before it was ready ({state.stdout.strip()})"
            )
        time.sleep(0.25)
    raise ContainerError(f"{url}/readyz did not answer 200 within {timeout:.0f} s")


def _wait_for_log(directory: Path, request_id: str, timeout: float = 10.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(directory.glob("predictions-*.jsonl")):
            if request_id in path.read_text(errors="replace"):
                return path
        time.sleep(0.2)
    raise ContainerError(
        f"request {request_id} is not in the prediction log mounted at {directory} "
        f"(files: {sorted(p.name for p in directory.iterdir())})"
    )


@contextmanager
def _container(engine: Engine, image: str, name: str, options: Sequence[str]) -> Iterator[str]:
    """Start `image` detached as `name`; on leaving, show its log on failure and remove it."""
    try:
        engine.run("run", "-d", "--name", name, *options, image)
        yield name
    except BaseException:  # on purpose: Ctrl-C or a failed check alike shows why, then re-raises
        logs = engine.run("logs", name, check=False)
        print(f"--- {engine.name} logs {name} (last 40 lines)", file=sys.stderr)
        print("\n".join((logs.stdout + logs.stderr).splitlines()[-40:]), file=sys.stderr)
        raise
    finally:
        engine.run("rm", "-f", name, check=False)


BAD_REQUESTS: dict[str, Any] = {
    "no rows": {"rows": []},
    "a row without its features": {"rows": [{"no_such_feature": 1}]},
    "not a list of rows": {"rows": "none"},
}


def _check_answers(
    url: str,
    records: list[dict[str, Any]],
    expected: list[dict[str, float]],
    run: str,
    key: str,
) -> tuple[str, float]:
    """Access control, /predict, /explain, /metadata and bad requests; returns the request id
    and the largest difference."""
    import httpx

    refused = httpx.post(f"{url}/predict", json={"rows": records}, timeout=30)
    if refused.status_code == 401:
        print("POST /predict without an API key: 401")
    else:
        print(f"POST /predict without an API key: {refused.status_code} (access control is off)")
    with httpx.Client(
        base_url=url, timeout=30, headers={"authorization": f"Bearer {key}"}
    ) as client:
        answer = client.post("/predict", json={"rows": records})
        if answer.status_code != 200:
            raise ContainerError(f"/predict answered {answer.status_code}: {answer.text[:500]}")
        body = answer.json()
        worst = compare_probabilities(body["predictions"], expected)
        print(
            f"POST /predict: {len(records)} rows, outputs equal the champion pipeline's "
            f"(largest difference {worst:.1e})"
        )
        explained = client.post("/explain", json={"rows": records[:2]})
        if explained.status_code == 200:
            worst_sum = max(
                abs(e["base_value"] + sum(e["contributions"].values()) - e["output"])
                for e in explained.json()["explanations"]
            )
            if worst_sum > 1e-6:
                raise ContainerError(
                    f"/explain: base + contributions misses the output by {worst_sum}"
                )
            print(f"POST /explain: base + contributions = output (within {worst_sum:.1e})")
        elif explained.status_code == 404:
            print("POST /explain: not served ([serving] explain = false)")
        else:
            raise ContainerError(
                f"/explain answered {explained.status_code}: {explained.text[:500]}"
            )
        named = client.get("/metadata").json().get("run")
        if named != run:
            raise ContainerError(f"/metadata names run {named}, expected {run}")
        print(f"GET /metadata names {named}")
        for what, payload in BAD_REQUESTS.items():
            status = client.post("/predict", json=payload).status_code
            if not 400 <= status < 500:
                raise ContainerError(f"/predict answered {status} to {what}, expected a 4xx")
        print(f"bad requests ({', '.join(BAD_REQUESTS)}) answered 4xx")
    return str(body["request_id"]), worst


def _stop(engine: Engine, name: str) -> tuple[float, int]:
    """Send SIGTERM; returns the seconds until the container ended and its exit status."""
    started = time.monotonic()
    engine.run("kill", "--signal", "TERM", name)
    try:
        waited = engine.run("wait", name, timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ContainerError(
            f"{name} did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM"
        ) from None
    stop_s = time.monotonic() - started
    exit_code = int(waited.stdout.strip().splitlines()[-1])
    if exit_code not in {0, 143}:  # 143: ended by the SIGTERM itself
        raise ContainerError(f"{name} exited with status {exit_code} on SIGTERM")
    print(f"SIGTERM: stopped in {stop_s:.1f} s, exit status {exit_code}")
    return stop_s, exit_code


def smoke(
    engine: Engine, image: str, champion: Any, log_dir: Path, ready_timeout: float = 120.0
) -> SmokeResult:
    """Prove the image: it serves the champion, refuses bad input, logs, stops on SIGTERM.

    Starts the image on a free port of 127.0.0.1 with `log_dir` mounted as the prediction log
    folder, waits for `/readyz`, checks that `/predict` answers the champion pipeline's own
    probabilities for rows of its training data, that `/metadata` names the champion run,
    that bad requests get a 4xx, that the request reached the log, and that SIGTERM stops it
    within 10 s. The container is removed whatever happens.

    Raises:
        ContainerError: any of these checks failed (the container's log is printed).
    """
    if not engine.image_exists(image):
        raise ContainerError(
            f"no image {image} in the {engine.name} store: run `make containerize`"
        )
    records, expected = _sample(champion, rows=5)
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_dir.chmod(0o777)  # the service runs as the image's own user (bentoml, uid 1034)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = f"flowship-smoke-{uuid.uuid4().hex[:10]}"
    key = new_key()  # the image refuses to start without API keys: give it one of its own
    options = [
        *engine.run_options(port),
        "-v",
        f"{log_dir.resolve()}:{CONTAINER_LOG_DIR}",
        "-e",
        f"{KEYS_ENV}={key_line('smoke', key)}",
    ]
    started = time.monotonic()
    with _container(engine, image, name, options):
        _wait_ready(engine, name, url, ready_timeout)
        ready_s = time.monotonic() - started
        print(f"{name} ({image}) ready on {url} after {ready_s:.1f} s")
        request_id, worst = _check_answers(url, records, expected, champion.pathspec, key)
        log_file = _wait_for_log(log_dir, request_id)
        print(f"request {request_id} logged in {log_file}")
        stop_s, exit_code = _stop(engine, name)
    return SmokeResult(
        image_bytes=engine.image_size(image),
        ready_s=ready_s,
        stop_s=stop_s,
        exit_code=exit_code,
        max_difference=worst,
        log_file=log_file,
    )


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


# ---- the command line ---------------------------------------------------------------------


def _cmd_tools(args: argparse.Namespace) -> int:
    answers = args.engine in {"auto", "docker"} and docker_answers()
    # podman_installed=True: what is missing is the answer here, not an error
    print(" ".join(missing_packages(choose_engine(args.engine, answers, podman_installed=True))))
    return 0


def _cmd_base_image(args: argparse.Namespace) -> int:
    engine = open_engine(args.engine)
    name = base_image_of(Path(args.bentofile))
    ensure_base_image(engine, name, args.local, BUILD_DIR / "base-image")
    return 0


def _cmd_containerize(args: argparse.Namespace) -> int:
    run_id = run_id_of(args.run)
    engine = open_engine(args.engine)
    bento = args.bento or read_tag(Path(args.tag_file), "Bento", "bento")
    image = args.image or image_name(args.repo, run_id, current_sha())
    base = base_image_of(Path(args.bentofile))
    if not engine.image_exists(base):
        raise ContainerError(
            f"the base image {base} is not in the {engine.name} store: run `make base-image`"
        )
    seconds = containerize(engine, bento, image, BUILD_DIR / "container" / "containerize.log")
    Path(args.image_file).write_text(image + "\n")
    size = _mb(engine.image_size(image))
    print(f"built {image} from {bento} with {engine.name} in {seconds:.0f} s: {size}")
    return 0


def _cmd_smoke(args: argparse.Namespace) -> int:
    from flowship.registry import load_champion

    run_id_of(args.run)  # a clear message for a malformed pathspec, before Metaflow's
    engine = open_engine(args.engine)
    image = args.image or read_tag(Path(args.image_file), "image", "containerize")
    champion = load_champion(args.run)
    result = smoke(engine, image, champion, Path(args.log_dir), args.ready_timeout)
    print(
        f"smoke test passed: {image} is {_mb(result.image_bytes)}, ready in "
        f"{result.ready_s:.1f} s, stopped in {result.stop_s:.1f} s on SIGTERM; "
        f"its container is removed"
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flowship.container", description=__doc__)
    parser.add_argument(
        "--engine",
        default=os.environ.get("CONTAINER_ENGINE", "auto"),
        help="auto (Docker if its daemon answers, else podman), docker or podman "
        "(default: $CONTAINER_ENGINE, else auto)",
    )
    parser.add_argument("--bentofile", default="bentofile.yaml", help="names the base image")
    sub = parser.add_subparsers(dest="command", required=True)

    tools = sub.add_parser("tools", help="print the Debian packages the engine needs and lacks")
    tools.set_defaults(func=_cmd_tools)

    base = sub.add_parser("base-image", help="make the Bento's base image available locally")
    base.add_argument(
        "--local", action="store_true", help="always build it from Debian packages (never pull)"
    )
    base.set_defaults(func=_cmd_base_image)

    build = sub.add_parser("containerize", help="build the image of the last Bento")
    build.add_argument("--run", required=True, help="the champion run the Bento packages")
    build.add_argument("--bento", help="Bento tag (default: the one in --tag-file)")
    build.add_argument("--tag-file", default=".bento-tag", help="file with the last Bento tag")
    build.add_argument("--image", help="image tag (default: <repo>:<run id>-<git sha>)")
    build.add_argument(
        "--repo",
        default=os.environ.get("IMAGE_REPO") or "flowship",
        help="image repository for the default tag (default: $IMAGE_REPO, else flowship)",
    )
    build.add_argument("--image-file", default=".image-tag", help="write the image tag here")
    build.set_defaults(func=_cmd_containerize)

    check = sub.add_parser("smoke", help="run the image and prove it serves the champion")
    check.add_argument("--run", required=True, help="the champion run the image must serve")
    check.add_argument("--image", help="image tag (default: the one in --image-file)")
    check.add_argument("--image-file", default=".image-tag", help="file with the image tag")
    check.add_argument(
        "--log-dir",
        default=str(BUILD_DIR / "container" / "predictions"),
        help="host folder mounted as the prediction log (emptied first)",
    )
    check.add_argument(
        "--ready-timeout", type=float, default=120.0, help="seconds to wait for /readyz"
    )
    check.set_defaults(func=_cmd_smoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; expected failures print one clear line and exit with status 2."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FlowshipError as exc:  # user errors are one line; a bug keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
