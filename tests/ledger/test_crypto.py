"""Buyer PII encryption at rest: the cipher, key rotation and key loading."""
from __future__ import annotations

import os
import stat

import pytest
from cryptography.fernet import Fernet

from connector.ledger import crypto
from connector.ledger.crypto import (
    PiiCipher,
    PiiDecryptError,
    PiiKeyError,
    load_key,
    load_keys,
    open_address,
    seal_address,
)
from connector.model import Address

ENV = "MFN_CONNECTOR_PII_KEY"
BUYER = {"name": "Zelda Quux-Ångström", "line1": "742 Evergreen Terrace", "city": "東京都",
         "country_code": "JP", "phone": "+81 3 1234 5678"}

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def _mode(path: os.PathLike[str] | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _write_key_file(path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    os.chmod(path, mode)


# -- the cipher ------------------------------------------------------------------------------------

def test_round_trip_keeps_non_latin_text_and_hides_it_in_the_token() -> None:
    cipher = PiiCipher([Fernet.generate_key()])
    blob = cipher.encrypt(BUYER)
    assert cipher.decrypt(blob) == BUYER
    for field in ("name", "line1", "city", "phone"):  # long enough not to occur in base64 by chance
        assert BUYER[field].encode("utf-8") not in blob
    assert cipher.encrypt(BUYER) != blob  # fresh IV each time


def test_wrong_key_and_tampering_raise_without_leaking_plaintext() -> None:
    key = Fernet.generate_key()
    blob = PiiCipher([key]).encrypt(BUYER)
    with pytest.raises(PiiDecryptError) as wrong:
        PiiCipher([Fernet.generate_key()]).decrypt(blob)
    tampered = bytearray(blob)
    tampered[len(tampered) // 2] ^= 1
    with pytest.raises(PiiDecryptError) as altered:
        PiiCipher([key]).decrypt(bytes(tampered))
    for err in (wrong.value, altered.value):
        text = str(err) + repr(err)
        assert BUYER["name"] not in text and key.decode() not in text
        assert err.__cause__ is None and err.__suppress_context__


def test_key_rotation_first_key_encrypts_all_keys_decrypt() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    old_blob = PiiCipher([old]).encrypt(BUYER)
    rotating = PiiCipher([new, old])
    assert rotating.decrypt(old_blob) == BUYER
    new_blob = rotating.encrypt(BUYER)
    assert PiiCipher([new]).decrypt(new_blob) == BUYER
    with pytest.raises(PiiDecryptError):
        PiiCipher([old]).decrypt(new_blob)
    rotated = rotating.rotate(old_blob)
    assert PiiCipher([new]).decrypt(rotated) == BUYER
    with pytest.raises(PiiDecryptError):
        PiiCipher([new]).rotate(old_blob)


def test_cipher_rejects_bad_keys_without_echoing_them_and_repr_hides_keys() -> None:
    secret = "this-is-not-a-fernet-key-but-a-secret"
    with pytest.raises(PiiKeyError) as err:
        PiiCipher([Fernet.generate_key(), secret.encode()])
    assert secret not in str(err.value) and "#2" in str(err.value)
    with pytest.raises(PiiKeyError):
        PiiCipher([])
    key = Fernet.generate_key()
    assert key.decode() not in repr(PiiCipher([key, Fernet.generate_key()]))
    assert repr(PiiCipher(key)) == "PiiCipher(<1 key>)"


def test_sealed_address_is_bound_to_its_order() -> None:
    cipher = PiiCipher([Fernet.generate_key()])
    address = Address.from_dict(BUYER)
    blob = seal_address(cipher, "111-0000001-0000001", address)
    assert blob is not None
    assert open_address(cipher, "111-0000001-0000001", blob) == address
    with pytest.raises(PiiDecryptError, match="another order"):
        open_address(cipher, "111-0000002-0000002", blob)
    assert seal_address(cipher, "x", None) is None
    assert seal_address(cipher, "x", Address()) is None


# -- key loading -----------------------------------------------------------------------------------

def test_env_var_wins_and_may_hold_several_keys(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    file_key = Fernet.generate_key()
    key_file = tmp_path / "pii.key"
    _write_key_file(key_file, file_key.decode() + "\n")
    new, old = Fernet.generate_key(), Fernet.generate_key()
    monkeypatch.setenv(ENV, f"{new.decode()}, {old.decode()}")
    assert load_keys(key_file=key_file) == [new, old]
    assert load_key(key_file=key_file) == new
    monkeypatch.setenv(ENV, "")  # empty counts as unset
    assert load_key(key_file=key_file) == file_key
    monkeypatch.setenv("OTHER_KEY_VAR", old.decode())
    assert load_key(key_file=None, env_var="OTHER_KEY_VAR") == old


def test_malformed_env_key_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-value-that-is-no-key"
    monkeypatch.setenv(ENV, secret)
    with pytest.raises(PiiKeyError) as err:
        load_key(key_file=None)
    assert ENV in str(err.value) and secret not in str(err.value)


def test_no_key_source_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(PiiKeyError, match=ENV):
        load_key(key_file=None)
    missing = tmp_path / "missing.key"
    with pytest.raises(PiiKeyError, match="does not exist"):
        load_key(key_file=missing)
    assert not missing.exists()


@posix_only
def test_create_makes_an_owner_only_key_file_once(tmp_path) -> None:
    key_file = tmp_path / "state" / "pii.key"
    key = load_key(key_file=key_file, create=True)
    Fernet(key)  # a usable key
    assert _mode(key_file) == 0o600
    assert _mode(key_file.parent) == 0o700
    assert load_key(key_file=key_file, create=True) == key  # never regenerated
    assert load_key(key_file=key_file) == key


@posix_only
def test_a_key_file_being_created_is_never_read_empty(tmp_path, monkeypatch) -> None:
    """Two starts at once (a daemon and a command): the second read the first one's file between
    its creation and its key, found no key and refused to start (and a crash there left it so)."""
    import threading

    key_file = tmp_path / "pii.key"
    paused, go_on = threading.Event(), threading.Event()
    made = crypto.generate_key

    def slow_key() -> bytes:
        if threading.current_thread().name == "first":
            paused.set()
            go_on.wait(5)
        return made()

    monkeypatch.setattr(crypto, "generate_key", slow_key)
    keys: dict[str, bytes] = {}
    first = threading.Thread(name="first", target=lambda: keys.update(first=load_key(key_file=key_file,
                                                                                      create=True)))
    first.start()
    assert paused.wait(5)
    try:
        keys["second"] = load_key(key_file=key_file, create=True)
    finally:
        go_on.set()
        first.join()
    assert keys["first"] == keys["second"] == load_key(key_file=key_file)  # one key for both
    assert _mode(key_file) == 0o600 and [p.name for p in tmp_path.iterdir()] == ["pii.key"]


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644])
def test_key_file_accessible_by_group_or_others_is_refused(tmp_path, mode: int) -> None:
    key = Fernet.generate_key()
    key_file = tmp_path / "pii.key"
    _write_key_file(key_file, key.decode(), mode)
    with pytest.raises(PiiKeyError) as err:
        load_key(key_file=key_file)
    text = str(err.value)
    assert "chmod 600" in text and str(key_file) in text and f"{mode:04o}" in text
    assert key.decode() not in text
    os.chmod(key_file, 0o400)
    assert load_key(key_file=key_file) == key


def test_platform_without_posix_modes_skips_the_mode_check(tmp_path, monkeypatch) -> None:
    key = Fernet.generate_key()
    key_file = tmp_path / "pii.key"
    _write_key_file(key_file, key.decode(), 0o644)
    monkeypatch.setattr(crypto, "_posix_modes", lambda: False)
    assert load_key(key_file=key_file) == key


def test_key_file_lists_keys_newest_first_with_comments(tmp_path) -> None:
    new, old = Fernet.generate_key(), Fernet.generate_key()
    key_file = tmp_path / "pii.key"
    _write_key_file(key_file, f"# current\n{new.decode()}\n\n# previous, until rotate_pii ran\n"
                              f"{old.decode()}\n")
    assert load_keys(key_file=key_file) == [new, old]
    _write_key_file(key_file, "# nothing here\n")
    with pytest.raises(PiiKeyError, match="holds no key"):
        load_keys(key_file=key_file)
    _write_key_file(key_file, f"{new.decode()}\nnot-a-key\n")
    with pytest.raises(PiiKeyError, match="entry #2") as err:
        load_keys(key_file=key_file)
    assert new.decode() not in str(err.value)
