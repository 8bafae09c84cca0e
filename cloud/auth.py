"""Passwords (scrypt, salted) and bearer tokens (random, stored only as their SHA-256)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

_N, _R, _P = 2**14, 8, 1


class Role(StrEnum):
    CASE_MANAGER = "case_manager"
    DOCTOR = "doctor"
    NURSE = "nurse"
    HEALTH_MANAGER = "health_manager"
    QC_SUPERVISOR = "qc_supervisor"
    ADMIN = "admin"
    PATIENT = "patient"


# Roles that see clinical data, limited to their care teams' patients.
TEAM_SCOPED = frozenset({Role.CASE_MANAGER, Role.DOCTOR, Role.NURSE, Role.HEALTH_MANAGER})


@dataclass(frozen=True)
class User:
    user_id: str
    display_name: str
    role: Role
    team_ids: frozenset[str]


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate, bytes.fromhex(digest))


def new_token() -> tuple[str, bytes]:
    """A token for the client and the hash to store."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
