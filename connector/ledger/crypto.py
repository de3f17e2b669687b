"""Buyer PII encryption at rest (Amazon DPP section 2.4; docs/amazon-sp-api.md#data-protection).

Buyer addresses are sealed with Fernet (AES-128-CBC + HMAC-SHA256) before they reach the
database. The key lives OUTSIDE the database: in an environment variable or in a key file
readable only by its owner.

Key rotation: a key source may hold several keys, newest first (the environment variable as a
comma-separated list, the key file one key per line). The first key encrypts; every key decrypts
(:class:`cryptography.fernet.MultiFernet`). To rotate: put the new key first, keep the old one
second, re-encrypt the stored data (``mfn-connector pii rotate``), then drop the old key.

Nothing raised here contains key material or plaintext.
"""
from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..model import Address

DEFAULT_KEY_ENV = "MFN_CONNECTOR_PII_KEY"


class PiiKeyError(ValueError):
    """The PII key is missing, malformed or stored unsafely."""


class PiiDecryptError(Exception):
    """Stored buyer data cannot be decrypted with the configured key(s)."""


def generate_key() -> bytes:
    """A fresh Fernet key (urlsafe base64 of 32 random bytes)."""
    return Fernet.generate_key()


class PiiCipher:
    """Encrypts and decrypts JSON-serialisable dicts. ``keys[0]`` encrypts, all keys decrypt."""

    def __init__(self, keys: list[bytes] | tuple[bytes, ...] | bytes | str) -> None:
        if isinstance(keys, (bytes, str)):
            keys = [keys if isinstance(keys, bytes) else keys.encode("ascii")]
        if not keys:
            raise PiiKeyError("PiiCipher needs at least one key")
        fernets = []
        for n, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise PiiKeyError(f"PII key #{n} is not a Fernet key (32 url-safe base64-encoded "
                                  "bytes)") from None
        self._fernet = MultiFernet(fernets)
        self._count = len(fernets)

    def __repr__(self) -> str:
        return f"PiiCipher(<{self._count} key{'s' if self._count != 1 else ''}>)"

    def encrypt(self, data: dict[str, Any]) -> bytes:
        if not isinstance(data, dict):
            raise TypeError("PiiCipher.encrypt takes a dict")
        plain = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return self._fernet.encrypt(plain.encode("utf-8"))

    def decrypt(self, blob: bytes) -> dict[str, Any]:
        try:
            plain = self._fernet.decrypt(bytes(blob))
        except InvalidToken:
            raise PiiDecryptError("buyer data cannot be decrypted: no configured PII key matches "
                                  "it, or it was altered") from None
        try:
            data = json.loads(plain.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise PiiDecryptError("decrypted buyer data is not valid JSON") from None
        if not isinstance(data, dict):
            raise PiiDecryptError("decrypted buyer data is not a JSON object")
        return data

    def rotate(self, blob: bytes) -> bytes:
        """Re-encrypt ``blob`` with the primary (first) key."""
        try:
            return self._fernet.rotate(bytes(blob))
        except InvalidToken:
            raise PiiDecryptError("buyer data cannot be re-encrypted: no configured PII key "
                                  "matches it") from None


# -- the ledger's sealed address: bound to its order id ----------------------------------------

def seal_address(cipher: PiiCipher, order_id: str, address: Address | None) -> bytes | None:
    """Encrypt a ship-to address for ``order_id``; None when there is nothing to store.

    The order id is sealed inside the token so a blob copied onto another order's row is
    detected on read instead of shipping one buyer's parcel to another buyer.
    """
    fields = address.to_dict() if address is not None else {}
    if not fields:
        return None
    return cipher.encrypt({"v": 1, "order_id": order_id, "address": fields})


def open_address(cipher: PiiCipher, order_id: str, blob: bytes) -> Address:
    try:
        data = cipher.decrypt(blob)
    except PiiDecryptError as exc:
        raise PiiDecryptError(f"order {order_id}: {exc}") from None
    if data.get("order_id") != order_id or not isinstance(data.get("address"), dict):
        raise PiiDecryptError(f"order {order_id}: the stored buyer data belongs to another order")
    return Address.from_dict(data["address"])


# -- key loading --------------------------------------------------------------------------------

def _parse_keys(text: str, source: str) -> list[bytes]:
    keys: list[bytes] = []
    entries = (e.strip() for line in text.splitlines() if not line.lstrip().startswith("#")
               for e in line.split(","))
    for item in entries:
        if not item:
            continue
        try:
            Fernet(item.encode("ascii"))
        except (ValueError, TypeError, UnicodeEncodeError):
            raise PiiKeyError(f"{source}: entry #{len(keys) + 1} is not a Fernet key (expected 32 "
                              "url-safe base64-encoded bytes, e.g. from "
                              "`python -c 'from cryptography.fernet import Fernet; "
                              "print(Fernet.generate_key().decode())'`)") from None
        keys.append(item.encode("ascii"))
    if not keys:
        raise PiiKeyError(f"{source} holds no key")
    return keys


def _posix_modes() -> bool:
    return os.name == "posix"


def _check_key_file_mode(path: Path) -> None:
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise PiiKeyError(f"PII key file {path} is not a regular file")
    if _posix_modes() and st.st_mode & 0o077:
        raise PiiKeyError(
            f"PII key file {path} is accessible by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); restrict it with `chmod 600 {path}`")


def _create_key_file(path: Path) -> None:
    """A new key at ``path``, unless another process makes one first (then its key is used). Written
    to a file of its own and linked in whole: the key file is never seen empty (a start beside
    this one reading it, a crash before the key was written)."""
    if not path.parent.exists():
        os.makedirs(path.parent, mode=0o700, exist_ok=True)
    key = generate_key() + b"\n"
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        _write_new_file(draft, key)
        os.link(draft, path)
    except FileExistsError:
        return  # someone else created it meanwhile: use theirs
    except OSError:  # a file system without hard links: written in place
        try:
            _write_new_file(path, key)
        except FileExistsError:
            return
    finally:
        draft.unlink(missing_ok=True)
    if _posix_modes():
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _write_new_file(path: Path, data: bytes) -> None:
    """``data`` in a new owner-only file at ``path``, on disk; FileExistsError if there is one."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        if _posix_modes():
            os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)  # losing the key after a crash would lose every stored address
    finally:
        os.close(fd)


def load_keys(*, key_file: str | os.PathLike[str] | None, env_var: str = DEFAULT_KEY_ENV,
              create: bool = False) -> list[bytes]:
    """All configured PII keys, newest (the encrypting one) first.

    The environment variable wins when it is set and non-empty (comma-separated keys).
    Otherwise ``key_file`` is read (one key per line or comma-separated, ``#`` comment lines
    allowed); it must not be
    accessible by group or others. With ``create`` a missing key file is created with a fresh
    key and mode 0600 (meant for the sandbox; production keys are provisioned by the operator).
    """
    value = os.environ.get(env_var, "").strip()
    if value:
        return _parse_keys(value, f"environment variable {env_var}")
    if key_file is None:
        raise PiiKeyError(f"no PII key: set {env_var} or configure a key file")
    path = Path(key_file).expanduser()
    if not path.exists():
        if not create:
            raise PiiKeyError(f"PII key file {path} does not exist; provision one (mode 0600) or "
                              f"set {env_var}")
        _create_key_file(path)
    _check_key_file_mode(path)
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise PiiKeyError(f"PII key file {path} is not an ASCII key file") from None
    except OSError as exc:
        raise PiiKeyError(f"PII key file {path} cannot be read: {exc.strerror}") from None
    return _parse_keys(text, f"PII key file {path}")


def load_key(*, key_file: str | os.PathLike[str] | None, env_var: str = DEFAULT_KEY_ENV,
             create: bool = False) -> bytes:
    """The primary (encrypting) PII key; see :func:`load_keys`."""
    return load_keys(key_file=key_file, env_var=env_var, create=create)[0]
