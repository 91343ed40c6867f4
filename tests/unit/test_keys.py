"""The key file and the keys derived from it; the sealed-field format (no database)."""

import os
import stat
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stepout.adapters.db import fieldcrypt
from stepout.crypto import keyfile
from stepout.crypto.keys import KEK_LABEL, KeyMaterial, Keys, UnknownKeyVersion, derive
from stepout.domain.events import KINDS


def test_generate_writes_a_key_file_only_its_owner_can_read(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "stepout.key"
    material = keyfile.generate(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyfile.read(path) == material
    assert material.active == 1
    assert set(material.encryption) == {1}
    assert len(material.root) == 32
    assert len(material.encryption[1]) == 32
    assert not [p for p in path.parent.iterdir() if p.name != "stepout.key"]  # no leftovers


def test_generate_never_overwrites_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "stepout.key"
    keyfile.generate(path)
    before = path.read_bytes()
    with pytest.raises(keyfile.KeyFileError, match="already there"):
        keyfile.generate(path)
    assert path.read_bytes() == before


def test_two_generated_key_files_differ(tmp_path: Path) -> None:
    a = keyfile.generate(tmp_path / "a.key")
    b = keyfile.generate(tmp_path / "b.key")
    assert a.root != b.root
    assert a.encryption[1] != b.encryption[1]


def test_a_missing_key_file_names_the_file_and_the_command(tmp_path: Path) -> None:
    path = tmp_path / "none.key"
    with pytest.raises(keyfile.KeyFileError, match=f"{path}.*stepout keys generate"):
        keyfile.read(path)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"not json", "JSONDecodeError"),
        (b'{"stepout_keys": 2}', "format"),
        (b'{"stepout_keys": 1, "active": 1, "encryption": {}}', "root"),
        (b'{"stepout_keys": 1, "root": "AA==", "active": 1}', "encryption"),
        (
            b'{"stepout_keys": 1, "root": "%ROOT%", "active": 1, "encryption": {"1": "@@"}}',
            "encryption.1",
        ),
        (b'{"stepout_keys": 1, "root": "%ROOT%", "active": 2, "encryption": {"1": "%KEY%"}}', "2"),
        (b'{"stepout_keys": 1, "root": "AA==", "active": 1, "encryption": {"1": "%KEY%"}}', "root"),
    ],
)
def test_a_malformed_key_file_names_the_file_and_the_field(
    tmp_path: Path, content: bytes, field: str
) -> None:
    good = orjson.loads(keyfile.encode(keyfile.generate(tmp_path / "good.key")))
    content = content.replace(b"%ROOT%", good["root"].encode())
    content = content.replace(b"%KEY%", good["encryption"]["1"].encode())
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(keyfile.KeyFileError) as caught:
        keyfile.read(path)
    message = str(caught.value)
    assert str(path) in message
    assert field in message
    assert good["root"] not in message
    assert good["encryption"]["1"] not in message


def test_derived_keys_are_stable_and_distinct_per_purpose(tmp_path: Path) -> None:
    path = tmp_path / "stepout.key"
    keyfile.generate(path)
    first, again = keyfile.load_keys(path), keyfile.load_keys(path)
    assert first.chain_key == again.chain_key
    assert first.link_key == again.link_key
    assert first.kek(1) == again.kek(1) == derive(first.material.encryption[1], KEK_LABEL)
    assert first.sign(b"x") == again.sign(b"x")  # Ed25519 is deterministic
    derived = {first.chain_key, first.link_key, first.kek(1)}
    assert len(derived) == 3
    assert first.material.root not in derived


def test_rotation_adds_an_active_version_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "stepout.key"
    original = keyfile.generate(path)
    rotated = keyfile.add_version(path)
    assert rotated.active == 2
    assert rotated.root == original.root
    assert rotated.encryption[1] == original.encryption[1]
    assert rotated.encryption[2] != original.encryption[1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = keyfile.load_keys(path)
    assert keys.chain_key == Keys(original).chain_key  # the root, and what it signs, stay
    assert keys.kek(1) == Keys(original).kek(1)


def test_a_running_process_finds_a_version_added_after_it_started(tmp_path: Path) -> None:
    path = tmp_path / "stepout.key"
    keyfile.generate(path)
    running = keyfile.load_keys(path)
    keyfile.add_version(path)
    assert running.active_version == 1
    assert running.kek(2) == keyfile.load_keys(path).kek(2)  # re-read the file once
    assert running.active_version == 2
    with pytest.raises(UnknownKeyVersion, match="version 7"):
        running.kek(7)


def test_retiring_keeps_the_active_version_and_the_named_ones(tmp_path: Path) -> None:
    path = tmp_path / "stepout.key"
    keyfile.generate(path)
    keyfile.add_version(path)
    keyfile.add_version(path)
    assert set(keyfile.drop_versions(path, keep={2}).encryption) == {2, 3}
    assert set(keyfile.drop_versions(path, keep=set()).encryption) == {3}
    assert keyfile.read(path).active == 3


def test_key_material_refuses_short_secrets() -> None:
    with pytest.raises(ValueError, match="root"):
        KeyMaterial(root=b"x" * 8, encryption={1: os.urandom(32)}, active=1)
    with pytest.raises(ValueError, match="encryption key 1"):
        KeyMaterial(root=os.urandom(32), encryption={1: b"short"}, active=1)


# -- The sealed-field format.


def test_every_event_kind_is_either_sealed_or_known_to_hold_no_free_text() -> None:
    assert set(fieldcrypt.SEALED) | fieldcrypt.PLAIN == set(KINDS)
    assert not set(fieldcrypt.SEALED) & fieldcrypt.PLAIN


def test_a_sealed_value_names_its_format_and_generation_and_hides_the_text() -> None:
    aead = AESGCM(os.urandom(32))
    ad = fieldcrypt.associated_data("p1", "exit", "e1", "explanation")
    one = fieldcrypt.seal_text(aead, 3, ad, "Fake canary text")
    two = fieldcrypt.seal_text(aead, 3, ad, "Fake canary text")
    assert one.startswith("so1.3.")
    assert fieldcrypt.is_sealed(one)
    assert one != two  # a fresh nonce each time
    assert "canary" not in one


def test_the_associated_data_keeps_its_parts_apart() -> None:
    ad = fieldcrypt.associated_data
    assert ad("p1", "exit", "e1", "x") != ad("p1", "exit", "e1x", "")
    assert ad("p1", "exit", "e.1", "x") != ad("p1", "exit.e", "1", "x")
    assert ad("p1", "exit", "e1", "note") != ad("p2", "exit", "e1", "note")
