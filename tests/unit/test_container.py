"""The container module's pure parts: engine choice, podman's own configuration, the base
image recipe, image names and the smoke test's comparison."""

from __future__ import annotations

import resource
import tomllib
from pathlib import Path

import pytest

from flowship import container
from flowship.container import (
    PODMAN_NPROC,
    ContainerError,
    Engine,
    PodmanPaths,
    apt_sources,
    base_image_of,
    choose_engine,
    compare_probabilities,
    derive_ulimits,
    image_name,
    import_command,
    missing_packages,
    mmdebstrap_command,
    mmdebstrap_env,
    read_tag,
    render_containers_conf,
    render_storage_conf,
    run_id_of,
    write_podman_config,
)
from tests.helpers import REPO


@pytest.mark.parametrize(
    ("requested", "docker", "podman", "chosen"),
    [
        ("auto", True, True, "docker"),
        ("auto", True, False, "docker"),
        ("auto", False, True, "podman"),
        ("docker", True, True, "docker"),
        ("podman", True, True, "podman"),
    ],
)
def test_engine_choice(requested: str, docker: bool, podman: bool, chosen: str) -> None:
    """auto takes Docker where its daemon answers, podman otherwise; an explicit choice wins."""
    assert choose_engine(requested, docker, podman) == chosen


@pytest.mark.parametrize(
    ("requested", "docker", "podman", "message"),
    [
        ("docker", False, True, "no Docker daemon answers"),
        ("podman", True, False, "podman is not installed"),
        ("auto", False, False, "no Docker daemon answers and podman is not installed"),
        ("kubernetes", True, True, "must be one of auto, docker, podman"),
    ],
)
def test_engine_choice_refuses(requested: str, docker: bool, podman: bool, message: str) -> None:
    """An engine that is not usable here, or an unknown one, is refused with what to do."""
    with pytest.raises(ContainerError, match=message):
        choose_engine(requested, docker, podman)


def test_missing_packages() -> None:
    """podman's path needs podman, runc and mmdebstrap; Docker's needs nothing from apt."""
    assert missing_packages("docker", which=lambda name: None) == []
    assert missing_packages("podman", which=lambda name: None) == ["podman", "runc", "mmdebstrap"]
    found = {"podman": "/usr/bin/podman"}
    assert missing_packages("podman", which=found.get) == ["runc", "mmdebstrap"]


def test_ulimits_follow_the_hard_limits() -> None:
    """Open files: the hard limit itself; processes: the hard limit, at most podman's own."""
    assert derive_ulimits(20000, 4096) == ["nofile=20000:20000", "nproc=4096:4096"]
    assert derive_ulimits(1024, 96363) == [
        "nofile=1024:1024",
        f"nproc={PODMAN_NPROC}:{PODMAN_NPROC}",
    ]


def test_ulimits_when_unlimited() -> None:
    """An unlimited hard limit sets nothing for open files, and podman's cap for processes."""
    unlimited = resource.RLIM_INFINITY
    assert derive_ulimits(unlimited, unlimited) == [f"nproc={PODMAN_NPROC}:{PODMAN_NPROC}"]
    assert derive_ulimits(-1, 100) == ["nproc=100:100"]


def test_containers_conf(tmp_path: Path) -> None:
    """runc, cgroupfs, file events, the given ulimits, and every path under the project's folder."""
    paths = PodmanPaths(tmp_path / "podman")
    conf = tomllib.loads(render_containers_conf(paths, ["nofile=10:10", "nproc=5:5"]))
    assert conf["containers"]["default_ulimits"] == ["nofile=10:10", "nproc=5:5"]
    assert conf["engine"]["runtime"] == "runc"
    assert conf["engine"]["cgroup_manager"] == "cgroupfs"
    assert conf["engine"]["events_logger"] == "file"
    for value in (
        conf["engine"]["events_logfile_path"],
        conf["engine"]["tmp_dir"],
        conf["network"]["network_config_dir"],
    ):
        assert Path(value).is_relative_to(paths.root)


def test_storage_conf(tmp_path: Path) -> None:
    """The image store and its run state live under the project's folder."""
    paths = PodmanPaths(tmp_path / "podman")
    storage = tomllib.loads(render_storage_conf(paths))["storage"]
    assert Path(storage["graphroot"]) == paths.graphroot
    assert Path(storage["runroot"]) == paths.runroot
    assert all(Path(storage[k]).is_relative_to(paths.root) for k in ("graphroot", "runroot"))


def test_paths_with_quotes_stay_valid_toml(tmp_path: Path) -> None:
    """A folder name with quotes or backslashes cannot break the files."""
    paths = PodmanPaths(tmp_path / 'a "quoted" \\ folder')
    conf = tomllib.loads(render_storage_conf(paths))
    assert Path(conf["storage"]["graphroot"]) == paths.graphroot


def test_write_podman_config(tmp_path: Path) -> None:
    """Both files are written under the folder and podman is pointed at them, nowhere else."""
    paths = PodmanPaths(tmp_path / "podman")
    env = write_podman_config(paths, (2048, 512))
    assert env == {
        "CONTAINERS_CONF": str(paths.containers_conf),
        "CONTAINERS_STORAGE_CONF": str(paths.storage_conf),
    }
    conf = tomllib.loads(paths.containers_conf.read_text())
    assert conf["containers"]["default_ulimits"] == ["nofile=2048:2048", "nproc=512:512"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["podman"]


def test_run_options_listen_on_localhost_only() -> None:
    """On the host's network (podman) the server binds 127.0.0.1; otherwise (Docker) the
    port is published on 127.0.0.1; both tell the server its port."""
    podman = Engine("podman", host_network=True).run_options(4321)
    assert podman[:2] == ["--network", "host"]
    assert "BENTOML_HOST=127.0.0.1" in podman and "BENTOML_PORT=4321" in podman
    docker = Engine("docker").run_options(4321)
    assert "127.0.0.1:4321:4321" in docker and "--network" not in docker
    assert "BENTOML_PORT=4321" in docker


def test_mmdebstrap_command(tmp_path: Path) -> None:
    """A minimal bookworm with Python 3.11 from the given sources, pip allowed, the host's CAs."""
    sources = [tmp_path / "debian.sources"]
    bundle = tmp_path / "my certs" / "ca.pem"
    cmd = mmdebstrap_command(tmp_path / "rootfs.tar", sources, bundle)
    assert cmd[:3] == [
        "mmdebstrap",
        "--variant=minbase",
        "--include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates",
    ]
    assert cmd[-3:] == ["bookworm", str(tmp_path / "rootfs.tar"), str(sources[0])]
    hooks = [c.removeprefix("--customize-hook=") for c in cmd if c.startswith("--customize")]
    assert 'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' in hooks
    assert f"cp '{bundle}' \"$1\"/etc/ssl/certs/ca-certificates.crt" in hooks
    assert "--dpkgopt=path-include=/usr/share/doc/*/copyright" in cmd


def test_mmdebstrap_env_fixes_file_times() -> None:
    """File times are fixed (a reproducible root file system) unless the caller fixes them."""
    assert mmdebstrap_env({"PATH": "/bin"}) == {
        "PATH": "/bin",
        "SOURCE_DATE_EPOCH": str(container.BASE_EPOCH),
    }
    assert mmdebstrap_env({"SOURCE_DATE_EPOCH": "1"})["SOURCE_DATE_EPOCH"] == "1"


def test_import_command(tmp_path: Path) -> None:
    """The imported base never downloads a Python and trusts the bundle copied in."""
    cmd = import_command("podman", tmp_path / "rootfs.tar", "base:1")
    assert cmd[:2] == ["podman", "import"]
    assert cmd[-2:] == [str(tmp_path / "rootfs.tar"), "base:1"]
    changes = [cmd[i + 1] for i, c in enumerate(cmd) if c == "--change"]
    assert changes == [
        "ENV UV_PYTHON_DOWNLOADS=never",
        "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    ]


def test_apt_sources(tmp_path: Path) -> None:
    """Only non-empty .list and .sources files count; disabled or empty ones do not."""
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text("Types: deb\n")
    (tmp_path / "sources.list.d" / "extra.list").write_text("deb x y z\n")
    (tmp_path / "sources.list.d" / "node.sources.disabled").write_text("Types: deb\n")
    assert [p.name for p in apt_sources(tmp_path)] == ["debian.sources", "extra.list"]


def test_base_image_of_the_bentofile() -> None:
    """The image `make base-image` provides is the one the Bento's Dockerfile starts from."""
    assert base_image_of(REPO / "bentofile.yaml") == "python:3.11-slim"


def test_base_image_of_refuses_a_bentofile_without_one(tmp_path: Path) -> None:
    """A bentofile without docker.base_image is named in the error."""
    path = tmp_path / "bentofile.yaml"
    path.write_text("service: x:Y\ndocker:\n  distro: debian\n")
    with pytest.raises(ContainerError, match=r"sets no docker\.base_image"):
        base_image_of(path)


def test_image_name_as_ci_tags_it() -> None:
    """`<repo>:<run id>-<12 characters of the sha>`, lower case, as `verdict --github-outputs`."""
    sha = "0123456789abcdef0123"
    assert (
        image_name("ghcr.io/Owner/Flowship", "1796", sha)
        == "ghcr.io/owner/flowship:1796-0123456789ab"
    )


def test_run_id_of() -> None:
    """The run id of a pathspec; anything else is refused."""
    assert run_id_of("TrainFlow/1796181456628742") == "1796181456628742"
    for bad in ("1796", "TrainFlow/", "TrainFlow/1/start"):
        with pytest.raises(ContainerError, match="not a run pathspec"):
            run_id_of(bad)


def test_read_tag(tmp_path: Path) -> None:
    """A written tag is read back; a missing one names the make target that writes it."""
    (tmp_path / ".bento-tag").write_text("flowship:abc\n")
    assert read_tag(tmp_path / ".bento-tag", "Bento", "bento") == "flowship:abc"
    with pytest.raises(ContainerError, match="run `make containerize`"):
        read_tag(tmp_path / ".image-tag", "image", "containerize")


def test_compare_probabilities() -> None:
    """Equal probabilities pass and report the largest difference."""
    answered = [{"probabilities": {"0": 0.25, "1": 0.75}}]
    assert compare_probabilities(answered, [{"0": 0.25, "1": 0.75}]) == 0.0
    assert compare_probabilities(answered, [{"0": 0.25 + 1e-12, "1": 0.75}]) < 1e-11


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ([{"0": 0.3, "1": 0.7}], "class 0"),
        ([{"no": 0.25, "yes": 0.75}], "names classes"),
        ([{"0": 0.25, "1": 0.75}] * 2, "answered 1 rows for 2"),
    ],
)
def test_compare_probabilities_refuses(expected: list[dict[str, float]], message: str) -> None:
    """Other probabilities, other classes or another number of rows fail the smoke test."""
    with pytest.raises(ContainerError, match=message):
        compare_probabilities([{"probabilities": {"0": 0.25, "1": 0.75}}], expected)


def test_main_prints_one_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A user error is one line on stderr and exit status 2, before any engine is probed."""
    assert container.main(["--engine", "kubernetes", "base-image"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: CONTAINER_ENGINE must be one of") and err.count("\n") == 1


def test_open_engine_podman_uses_the_project_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a Docker daemon, podman gets the project's files, host networking for the
    build and the run, and nothing outside the build folder."""
    monkeypatch.setattr(container, "docker_answers", lambda: False)
    monkeypatch.setattr(container.shutil, "which", lambda name: f"/usr/bin/{name}")
    engine = container.open_engine("auto", tmp_path / "build")
    assert engine.name == "podman" and engine.host_network
    assert engine.build_options == ("network=host",)
    assert Path(engine.env["CONTAINERS_CONF"]).is_file()
    assert Path(engine.env["CONTAINERS_STORAGE_CONF"]).is_relative_to(tmp_path / "build")


def test_open_engine_docker_needs_no_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a Docker daemon answers, auto takes it as it is: no files, published ports."""
    monkeypatch.setattr(container, "docker_answers", lambda: True)
    engine = container.open_engine("auto", tmp_path / "build")
    assert engine == Engine("docker")
    assert not (tmp_path / "build").exists()
