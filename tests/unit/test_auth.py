"""API keys: parsing, constant-time verification, reloading, local keys for `make serve`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from flowship.auth import (
    KeyRing,
    KeySource,
    append_key,
    client_key,
    ensure_local_key,
    hash_key,
    key_line,
    new_key,
)
from flowship.errors import ServingError


def test_a_key_is_stored_as_its_hash_only() -> None:
    """The keys file holds the id and the SHA-256 of the key, never the key."""
    key = new_key()
    line = key_line("ci-bot", key)
    assert line == f"ci-bot {hash_key(key)}" and key not in line
    assert len(key) > 40 and new_key() != key


def test_verify_finds_the_id_of_a_known_key() -> None:
    ring = KeyRing.parse(f"# comment\n{key_line('a', 'ka')}\n\n{key_line('b', 'kb')}  # b", "f")
    assert ring.verify("ka") == "a" and ring.verify("kb") == "b"
    assert ring.verify("kc") is None and ring.verify("") is None


def test_keys_from_the_environment_may_use_semicolons() -> None:
    ring = KeyRing.parse(f"{key_line('a', 'ka')};{key_line('b', 'kb')}", "$FLOWSHIP_API_KEYS")
    assert [i for i, _ in ring.digests] == ["a", "b"]


@pytest.mark.parametrize(
    "text",
    ["a ka", "a sha256:1234", "a sha256:" + "g" * 64, "bad id sha256:" + "0" * 64],
)
def test_a_malformed_entry_is_refused_naming_the_source_not_the_digest(text: str) -> None:
    with pytest.raises(ServingError, match=r"keys\.txt: entry 1 is not") as error:
        KeyRing.parse(text, "keys.txt")
    assert "0" * 64 not in str(error.value)


def test_a_repeated_id_is_refused() -> None:
    with pytest.raises(ServingError, match="'a' appears twice"):
        KeyRing.parse(f"{key_line('a', 'x')}\n{key_line('a', 'y')}", "f")


def test_the_service_refuses_to_start_without_keys(tmp_path: Path, monkeypatch) -> None:
    """No file, an empty file, an empty variable: refused, naming where it looked."""
    monkeypatch.delenv("FLOWSHIP_API_KEYS", raising=False)
    monkeypatch.delenv("FLOWSHIP_API_KEYS_FILE", raising=False)
    missing = tmp_path / "nope"
    with pytest.raises(ServingError, match=f"no API keys file at {missing}"):
        KeySource.from_environment(missing)
    empty = tmp_path / "keys"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ServingError, match="holds no API key"):
        KeySource.from_environment(empty)
    monkeypatch.setenv("FLOWSHIP_API_KEYS_FILE", str(missing))
    with pytest.raises(ServingError, match=str(missing)):
        KeySource.from_environment(empty)  # the variable wins over the configured file


def test_a_keys_file_is_read_again_when_it_changes(tmp_path: Path, monkeypatch) -> None:
    """Rotation: a key added works, a key removed stops working, without a restart; a broken
    edit keeps the keys read before."""
    monkeypatch.delenv("FLOWSHIP_API_KEYS", raising=False)
    monkeypatch.delenv("FLOWSHIP_API_KEYS_FILE", raising=False)
    path = tmp_path / "api-keys"
    path.write_text(key_line("old", "k-old") + "\n")
    source = KeySource.from_environment(path)
    assert source.verify("k-old") == "old" and source.verify("k-new") is None
    path.write_text(key_line("new", "k-new") + "\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    source._checked = 0.0  # as if a second had passed
    assert source.verify("k-new") == "new" and source.verify("k-old") is None
    path.write_text("garbage\n")
    os.utime(path, (time.time() + 10, time.time() + 10))
    source._checked = 0.0
    assert source.verify("k-new") == "new"


def test_ensure_local_key_creates_one_key_once(tmp_path: Path) -> None:
    """`make serve` on a laptop: a key is created (owner-only) with its hash in the keys file;
    the second call changes nothing."""
    keys, key_file = tmp_path / ".flowship" / "api-keys", tmp_path / ".flowship" / "api-key"
    key = ensure_local_key(keys, key_file)
    assert key and key_file.read_text().strip() == key
    assert key_file.stat().st_mode & 0o077 == 0 and keys.stat().st_mode & 0o077 == 0
    assert KeyRing.parse(keys.read_text(), "k").verify(key) == "local"
    assert ensure_local_key(keys, key_file) is None
    assert len(KeyRing.parse(keys.read_text(), "k").digests) == 1


def test_append_key_refuses_a_taken_id(tmp_path: Path) -> None:
    keys = tmp_path / "api-keys"
    append_key(keys, "a", "ka")
    append_key(keys, "b", "kb")
    with pytest.raises(ServingError, match="already has a key 'a'"):
        append_key(keys, "a", "kc")
    assert KeyRing.parse(keys.read_text(), "k").verify("kb") == "b"


def test_clients_send_the_variable_else_the_local_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert client_key({}) is None
    (tmp_path / ".flowship").mkdir()
    (tmp_path / ".flowship" / "api-key").write_text("from-file\n")
    assert client_key({}) == "from-file"
    assert client_key({"FLOWSHIP_API_KEY": "from-env"}) == "from-env"
