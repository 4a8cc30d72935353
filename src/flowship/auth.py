"""API keys: who may call the service.

The service stores no keys, only their SHA-256 hashes, each with a key id, one per line:

    # <key id> sha256:<hex digest of the key>
    local sha256:5f0c…
    ci-bot sha256:9a41…

from `FLOWSHIP_API_KEYS` (the lines themselves; `;` also separates them), else the file named
by `FLOWSHIP_API_KEYS_FILE`, else `[serving] api_keys_file`. A file is read again when it
changes (keys rotate by editing it; no rebuild, no restart). Callers send
`Authorization: Bearer <key>`; the hash of what they send is compared with every stored hash in
constant time. Only the key id is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from flowship.errors import ServingError

KEYS_ENV = "FLOWSHIP_API_KEYS"
KEYS_FILE_ENV = "FLOWSHIP_API_KEYS_FILE"
CLIENT_KEY_ENV = "FLOWSHIP_API_KEY"  # what clients (simulate, smoke, the demo) send
CLIENT_KEY_FILE = Path(".flowship/api-key")  # written by `make serve` when there is no key
_LINE = re.compile(r"^(?P<id>[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63})\s+sha256:(?P<digest>[0-9a-f]{64})$")
_log = logging.getLogger("flowship.auth")


def hash_key(key: str) -> str:
    """The stored form of a key: `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A new random key (256 bits)."""
    return "fsk_" + secrets.token_urlsafe(32)


def key_line(key_id: str, key: str) -> str:
    """The keys-file line of a key.

    Raises:
        ServingError: the key id is not 1-64 letters, digits, `_ . @ -`.
    """
    line = f"{key_id} {hash_key(key)}"
    if not _LINE.match(line):
        raise ServingError(
            f"key id {key_id!r} is not valid: use 1-64 letters, digits, '_', '.', '@' or '-'"
        )
    return line


@dataclass(frozen=True)
class KeyRing:
    """Key ids by the digest of their key."""

    digests: tuple[tuple[str, bytes], ...]  # (key id, sha256 digest)

    @classmethod
    def parse(cls, text: str, source: str) -> KeyRing:
        """Keys from the text of a keys file (blank lines and `#` comments ignored).

        Raises:
            ServingError: a line is not `<key id> sha256:<64 hex digits>`, or an id repeats;
                the message names `source` and the line (never a digest).
        """
        digests: list[tuple[str, bytes]] = []
        for number, raw in enumerate(re.split(r"[\n;]", text), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            match = _LINE.match(line)
            if match is None:
                raise ServingError(
                    f"{source}: entry {number} is not '<key id> sha256:<64 hex digits>'; "
                    "create keys with `python -m flowship api-key --id <name>`"
                )
            if any(match["id"] == known for known, _ in digests):
                raise ServingError(f"{source}: key id {match['id']!r} appears twice")
            digests.append((match["id"], bytes.fromhex(match["digest"])))
        return cls(tuple(digests))

    def verify(self, presented: str) -> str | None:
        """The id of the key `presented` (None if it is none of them), in constant time: every
        stored digest is compared, whatever matched before."""
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for key_id, stored in self.digests:
            if hmac.compare_digest(digest, stored):
                found = key_id
        return found


class KeySource:
    """The service's keys: from `FLOWSHIP_API_KEYS`, or a file read again when it changes.

    A file that becomes unreadable or malformed after start keeps the keys last read (and
    logs an error once a minute): a broken edit must not lock every caller out, nor let
    anyone in.
    """

    def __init__(self, text: str | None, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._warned = 0.0
        if text is not None:
            self.ring = KeyRing.parse(text, f"${KEYS_ENV}")
        else:
            assert path is not None
            self.ring = self._read(path)
        if not self.ring.digests:
            where = f"${KEYS_ENV}" if text is not None else str(path)
            raise ServingError(f"{where} holds no API key; {_HOW_TO_ADD}")

    @classmethod
    def from_environment(cls, configured_file: str | Path) -> KeySource:
        """`FLOWSHIP_API_KEYS`, else `FLOWSHIP_API_KEYS_FILE`, else `configured_file`.

        Raises:
            ServingError: none of them holds a key, or the keys are malformed (naming where).
        """
        if os.environ.get(KEYS_ENV, "").strip():
            return cls(os.environ[KEYS_ENV], None)
        return cls(None, Path(os.environ.get(KEYS_FILE_ENV) or configured_file))

    def _read(self, path: Path) -> KeyRing:
        try:
            stat = path.stat()
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ServingError(
                f"no API keys file at {path.resolve()}: the service refuses to start without "
                f"keys; {_HOW_TO_ADD}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ServingError(f"cannot read the API keys file {path}: {exc}") from None
        ring = KeyRing.parse(text, str(path))
        self._stamp = (stat.st_mtime, stat.st_size)
        return ring

    def verify(self, presented: str) -> str | None:
        """The key id of `presented`, or None; the file is checked for changes once a second."""
        if self.path is not None and time.monotonic() - self._checked >= 1.0:
            self._checked = time.monotonic()
            self._reload()
        return self.ring.verify(presented)

    def _reload(self) -> None:
        assert self.path is not None
        try:
            stat = self.path.stat()
            if (stat.st_mtime, stat.st_size) == self._stamp:
                return
            self.ring = self._read(self.path)
            _log.warning("API keys reloaded from %s: %d key(s)", self.path, len(self.ring.digests))
        except (OSError, ServingError) as exc:
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                _log.error(
                    "API keys file %s cannot be used (%s): keeping the keys read before",
                    self.path,
                    exc,
                )


_HOW_TO_ADD = (
    "create one with `python -m flowship api-key --id <name>` (it appends the key's hash to "
    "[serving] api_keys_file and prints the key once), set FLOWSHIP_API_KEYS / "
    'FLOWSHIP_API_KEYS_FILE, or turn access control off with [serving] auth = "none"'
)


def client_key(env: dict[str, str] | None = None) -> str | None:
    """The key a local client sends: `FLOWSHIP_API_KEY`, else `.flowship/api-key`, else None."""
    environ = os.environ if env is None else env
    if environ.get(CLIENT_KEY_ENV):
        return environ[CLIENT_KEY_ENV].strip()
    if CLIENT_KEY_FILE.is_file():
        return CLIENT_KEY_FILE.read_text(encoding="utf-8").strip() or None
    return None


def client_headers() -> dict[str, str]:
    """`Authorization: Bearer <key>` when a local key is known (else no header)."""
    key = client_key()
    return {"authorization": f"Bearer {key}"} if key else {}


def ensure_local_key(keys_file: Path, key_file: Path = CLIENT_KEY_FILE) -> str | None:
    """For `make serve` on a laptop: when `keys_file` holds no keys yet, create a key, write it
    to `key_file` (owner-only) and its hash to `keys_file`. Returns the new key, or None when
    keys already exist (nothing is changed)."""
    if keys_file.is_file() and KeyRing.parse(keys_file.read_text(), str(keys_file)).digests:
        return None
    key = key_file.read_text().strip() if key_file.is_file() else ""
    if not key:
        key = new_key()
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(key + "\n")
    append_key(keys_file, "local", key)
    return key


def append_key(keys_file: Path, key_id: str, key: str) -> None:
    """Add a key's hash to a keys file (created owner-only when missing).

    Raises:
        ServingError: the id is invalid or already in the file.
    """
    line = key_line(key_id, key)
    existing = keys_file.read_text() if keys_file.is_file() else ""
    ring = KeyRing.parse(existing, str(keys_file))
    if any(key_id == known for known, _ in ring.digests):
        raise ServingError(f"{keys_file} already has a key {key_id!r}; remove its line first")
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    if not keys_file.exists():
        keys_file.touch(mode=0o600)
        existing = "# flowship API keys: '<key id> sha256:<hash>' (python -m flowship api-key)\n"
    elif existing and not existing.endswith("\n"):
        existing += "\n"
    keys_file.write_text(existing + line + "\n")
