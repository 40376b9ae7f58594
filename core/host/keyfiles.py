"""The private key behind the profile's EC2 key pair: made once, never overwritten, and
checked against the fingerprint EC2 reports before Toast relies on it."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization


class KeyFileError(Exception):
    pass


def create_private_key(path: Path, comment: str) -> bytes:
    """Write a new ed25519 private key to `path` (mode 0600) and return its public key in
    OpenSSH form. Fails if a file is already there: a key file is never replaced."""
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.export_private_key())
    return bytes(key.export_public_key())


def public_key_of(path: Path) -> bytes:
    import asyncssh

    try:
        return bytes(asyncssh.read_private_key(str(path)).export_public_key())
    except (OSError, ValueError, asyncssh.KeyImportError) as exc:
        raise KeyFileError(f"cannot read the private key {path}: {exc}") from exc


def fingerprints(public_openssh: bytes) -> set[str]:
    """Every form in which EC2 may report this key's fingerprint: SHA-256 of the OpenSSH
    blob in base64 (AWS, ed25519), and hex digests of the DER public key (MD5 for imported
    RSA keys; SHA-256 as some implementations do), all compared without case or padding."""
    blob = base64.b64decode(public_openssh.split()[1])
    der = serialization.load_ssh_public_key(public_openssh).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forms = {
        base64.b64encode(hashlib.sha256(blob).digest()).decode(),
        hashlib.sha256(der).hexdigest(),
        hashlib.md5(der, usedforsecurity=False).hexdigest(),
        hashlib.sha1(der, usedforsecurity=False).hexdigest(),
    }
    return {normalise(f) for f in forms}


def normalise(fingerprint: str) -> str:
    return fingerprint.replace(":", "").rstrip("=").removeprefix("SHA256:").lower()


def matches(public_openssh: bytes, reported: str) -> bool:
    return normalise(reported) in fingerprints(public_openssh)
