"""Signatures are checked with openssl, independently of the signing code."""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fixengine.errors import KeyLoadError
from fixengine.kalshi.signing import (
    Signer,
    generate_private_key,
    load_private_key,
    logon_prehash,
    public_key_pem,
    rest_prehash,
    sign,
    verify,
    write_keypair,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def openssl_verifies(public_pem: Path, message: bytes, signature_b64: str, tmp_path: Path) -> bool:
    """RSA-PSS, SHA-256, MGF1-SHA-256, salt 32, verified by the openssl command line."""
    msg, sig = tmp_path / "msg.bin", tmp_path / "sig.bin"
    msg.write_bytes(message)
    sig.write_bytes(base64.b64decode(signature_b64))
    result = subprocess.run(
        [
            "openssl", "dgst", "-sha256",
            "-sigopt", "rsa_padding_mode:pss",
            "-sigopt", "rsa_pss_saltlen:32",
            "-sigopt", "rsa_mgf1_md:sha256",
            "-verify", str(public_pem), "-signature", str(sig), str(msg),
        ],
        capture_output=True,
    )
    return result.returncode == 0 and b"Verified OK" in result.stdout


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    write_keypair(private, public)
    return private, public


def test_logon_prehash_is_the_five_header_fields_joined_by_soh() -> None:
    assert logon_prehash("20230809-05:28:18.035", "A", "1", "key-uuid", "KalshiNR") == (
        b"20230809-05:28:18.035\x01A\x011\x01key-uuid\x01KalshiNR"
    )


def test_logon_signature_verifies_with_openssl_and_tampering_fails(keypair, tmp_path) -> None:
    private, public = keypair
    signer = Signer("0b6f3c1e-1111-4000-8000-000000000001", load_private_key(file=private))
    sending_time = "20261121-17:28:18.035"
    signature = signer.sign_logon(sending_time, "A", "1", "KalshiNR")
    prehash = logon_prehash(sending_time, "A", "1", signer.key_id, "KalshiNR")
    assert len(base64.b64decode(signature, validate=True)) == 256  # 2048-bit RSA, standard base64
    assert openssl_verifies(public, prehash, signature, tmp_path)
    tampered = logon_prehash("20261121-17:28:18.036", "A", "1", signer.key_id, "KalshiNR")
    assert not openssl_verifies(public, tampered, signature, tmp_path)
    assert not openssl_verifies(public, prehash.replace(b"KalshiNR", b"KalshiRT"), signature, tmp_path)


def test_pss_signatures_are_randomised_but_both_verify(keypair) -> None:
    private, public = keypair
    key = load_private_key(file=private)
    a, b = sign(key, b"x"), sign(key, b"x")
    assert a != b
    pub = serialization.load_pem_public_key(public.read_bytes())
    assert verify(pub, b"x", a) and verify(pub, b"x", b)  # type: ignore[arg-type]
    assert not verify(pub, b"y", a)  # type: ignore[arg-type]
    assert not verify(pub, b"x", "not base64!")  # type: ignore[arg-type]


def test_rest_headers_sign_timestamp_method_and_path_without_query(keypair, tmp_path) -> None:
    private, public = keypair
    signer = Signer("key-1", load_private_key(file=private))
    headers = signer.rest_headers("get", "/trade-api/v2/portfolio/orders?limit=1000&cursor=abc", 1703123456789)
    assert headers["KALSHI-ACCESS-KEY"] == "key-1"
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == "1703123456789"
    expected = b"1703123456789GET/trade-api/v2/portfolio/orders"
    assert rest_prehash(1703123456789, "get", "/trade-api/v2/portfolio/orders?x=1") == expected
    assert openssl_verifies(public, expected, headers["KALSHI-ACCESS-SIGNATURE"], tmp_path)
    assert not openssl_verifies(public, expected + b"?limit=1000", headers["KALSHI-ACCESS-SIGNATURE"], tmp_path)


def test_rest_path_must_include_the_api_prefix() -> None:
    with pytest.raises(ValueError, match="/trade-api/"):
        rest_prehash(1, "GET", "/portfolio/balance")


def test_keygen_writes_a_2048_bit_private_key_readable_only_by_its_owner(keypair) -> None:
    private, public = keypair
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in private.read_bytes()  # PKCS#8
    assert load_private_key(file=private).key_size == 2048
    with pytest.raises(KeyLoadError, match="already exists"):
        write_keypair(private, public)


def test_pkcs1_key_files_load(tmp_path) -> None:
    key = generate_private_key()
    path = tmp_path / "pkcs1.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    path.chmod(0o600)
    assert b"BEGIN RSA PRIVATE KEY" in path.read_bytes()
    assert public_key_pem(load_private_key(file=path)) == public_key_pem(key)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_key_file_readable_by_group_or_others_is_refused(keypair, mode) -> None:
    private, _ = keypair
    private.chmod(mode)
    with pytest.raises(KeyLoadError, match=rf"readable by group or others \(mode {mode:04o}\); run: chmod 600"):
        load_private_key(file=private)


def test_key_from_environment_variable_with_escaped_newlines(keypair) -> None:
    private, _ = keypair
    pem = private.read_text()
    for text in (pem, pem.replace("\n", "\\n")):
        key = load_private_key(env="MY_KEY", environ={"MY_KEY": text})
        assert key.key_size == 2048
    with pytest.raises(KeyLoadError, match="MY_KEY is not set"):
        load_private_key(env="MY_KEY", environ={})


def test_bad_key_material_is_named_and_explained(tmp_path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(KeyLoadError, match="does not exist"):
        load_private_key(file=missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    garbage.chmod(0o600)
    with pytest.raises(KeyLoadError, match="is not a PEM private key"):
        load_private_key(file=garbage)
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ec_key.chmod(0o600)
    with pytest.raises(KeyLoadError, match="not an RSA key"):
        load_private_key(file=ec_key)
    encrypted = tmp_path / "enc.pem"
    encrypted.write_bytes(
        generate_private_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    encrypted.chmod(0o600)
    with pytest.raises(KeyLoadError, match="passphrase-protected"):
        load_private_key(file=encrypted)


def test_signer_repr_never_shows_the_key(keypair) -> None:
    private, _ = keypair
    signer = Signer("k", load_private_key(file=private))
    assert "PRIVATE" not in repr(signer) and "private_key" not in repr(signer)

