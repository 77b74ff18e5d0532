"""Kalshi request signatures: keys, the FIX Logon signature and the REST header signature.

Both signatures are RSASSA-PSS with SHA-256, MGF1(SHA-256) and a 32-byte salt, in standard base64.
Only the signed text differs:

- FIX Logon: ``SendingTime<SOH>MsgType<SOH>MsgSeqNum<SOH>SenderCompID<SOH>TargetCompID``, taken from
  the header fields the Logon actually carries (see ``fixengine.session``), placed in RawData (96).
- REST: ``timestamp_ms + METHOD + path``, the path including ``/trade-api/v2`` and without a query.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fixengine.secrets import read_private_file
from fixengine.errors import KeyLoadError

SOH = "\x01"
SALT_LENGTH = 32
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=SALT_LENGTH)


def logon_prehash(
    sending_time: str, msg_type: str, msg_seq_num: str, sender_comp_id: str, target_comp_id: str
) -> bytes:
    """The text Kalshi's FIX Logon signature covers, byte for byte."""
    return SOH.join((sending_time, msg_type, msg_seq_num, sender_comp_id, target_comp_id)).encode()


def rest_prehash(timestamp_ms: int, method: str, path: str) -> bytes:
    """The text Kalshi's REST signature covers. ``path`` may carry a query string; it is not signed."""
    path = path.split("?", 1)[0]
    if not path.startswith("/trade-api/"):
        raise ValueError(f"REST path must start with /trade-api/ (got {path!r})")
    return f"{timestamp_ms}{method.upper()}{path}".encode()


def sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """RSA-PSS(SHA-256, MGF1-SHA-256, salt 32) signature of ``message``, standard base64."""
    return base64.b64encode(private_key.sign(message, _PSS, hashes.SHA256())).decode("ascii")


def verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid strict-salt RSA-PSS signature of ``message``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message, _PSS, hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Signer:
    """An API key: its id and private key. Its repr never shows the key."""

    key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    def sign_logon(
        self, sending_time: str, msg_type: str, msg_seq_num: str, target_comp_id: str
    ) -> str:
        return sign(
            self.private_key,
            logon_prehash(sending_time, msg_type, msg_seq_num, self.key_id, target_comp_id),
        )

    def rest_headers(self, method: str, path: str, timestamp_ms: int | None = None) -> dict[str, str]:
        """The three ``KALSHI-ACCESS-*`` headers for one REST request."""
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        return {
            "KALSHI-ACCESS-KEY": self.key_id,
            "KALSHI-ACCESS-TIMESTAMP": str(ts),
            "KALSHI-ACCESS-SIGNATURE": sign(self.private_key, rest_prehash(ts, method, path)),
        }


# --- loading keys ---------------------------------------------------------------------------


def load_private_key(
    *, file: str | Path | None = None, env: str | None = None, environ: Mapping[str, str] = os.environ
) -> rsa.RSAPrivateKey:
    """Load an RSA private key (PKCS#8 or PKCS#1 PEM) from a file or an environment variable.

    A key file that group or others may read is refused: the key is the trading account.
    """
    if (file is None) == (env is None):
        raise KeyLoadError("give exactly one of a private key file or an environment variable")
    if file is not None:
        path = Path(file).expanduser()
        data = read_private_file(path, "private key file")
        return _parse_private_key(data, f"private key file {path}")
    assert env is not None
    text = environ.get(env)
    if not text:
        raise KeyLoadError(f"environment variable {env} is not set or empty (expected a PEM private key)")
    # Keys pasted into .env files often carry literal "\n" instead of newlines.
    return _parse_private_key(text.replace("\\n", "\n").encode(), f"environment variable {env}")


def _parse_private_key(data: bytes, source: str) -> rsa.RSAPrivateKey:
    if b"ENCRYPTED" in data:
        raise KeyLoadError(f"{source} holds a passphrase-protected key; fixengine needs an unencrypted key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyLoadError(f"{source} holds a passphrase-protected key; fixengine needs an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyLoadError(f"{source} is not a PEM private key (PKCS#8 or PKCS#1)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyLoadError(f"{source} is not an RSA key (Kalshi FIX logon needs RSA)")
    if key.key_size < 2048:
        raise KeyLoadError(f"{source} is a {key.key_size}-bit RSA key; Kalshi needs at least 2048 bits")
    return key


def load_public_key(pem: bytes, source: str = "public key") -> rsa.RSAPublicKey:
    """Load an RSA public key from PEM (SubjectPublicKeyInfo or PKCS#1)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyLoadError(f"{source} is not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyLoadError(f"{source} is not an RSA public key")
    return key


def public_key_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def write_keypair(private_path: Path, public_path: Path, *, bits: int = 2048, overwrite: bool = False) -> None:
    """Write a new RSA key pair: private key PKCS#8 PEM with mode 0600, public key PEM beside it."""
    for path in (private_path, public_path):
        if path.exists() and not overwrite:
            raise KeyLoadError(f"{path} already exists; refusing to overwrite a key (use --force)")
    key = generate_private_key(bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite:
        private_path.unlink(missing_ok=True)
    # Created 0600 from the first byte: never briefly world-readable.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public_path.write_bytes(public_key_pem(key))
