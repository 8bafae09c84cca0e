"""Enrolment codes and the edges they create. Codes are kept only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from cloud.db.edge_errors import EdgeUnknown
from protocols.errors import CareBridgeError

# No 0/O, 1/I/L or U: read aloud over the phone and typed on a phone keyboard.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"

Mode = Literal["centre", "home"]


def new_code() -> str:
    """`XXXX-XXXX`: 30^8 ≈ 6.6e11 codes, each valid once and for minutes."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def normalise_code(code: str) -> str:
    """What a person typed (any case, spaces, with or without the dash) → `XXXX-XXXX`."""
    chars = "".join(ch for ch in code.upper() if ch.isalnum())
    return f"{chars[:4]}-{chars[4:]}" if len(chars) == 8 else chars


def code_hash(code: str) -> bytes:
    return hashlib.sha256(normalise_code(code).encode()).digest()


def issue_code(
    conn: psycopg.Connection,
    *,
    mode: Mode,
    patient_id: str | None,
    label: str | None,
    issued_by: str,
    ttl: timedelta,
) -> dict[str, Any]:
    code = new_code()
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """INSERT INTO enrolment_codes
                   (code_hash, mode, patient_id, label, issued_by, expires_at)
               VALUES (%s, %s, %s, %s, %s, now() + %s)
               RETURNING mode, patient_id, expires_at""",
            (code_hash(code), mode, patient_id, label, issued_by, ttl),
        ).fetchone()
    assert row is not None
    return {"code": code, **row}


@dataclass(frozen=True)
class Provisioned:
    edge_id: str
    mode: Mode
    patient_id: str | None
    username: str
    password: str


class CodeUnknown(CareBridgeError):
    """No enrolment code with that value."""

    code = "enrolment_code_unknown"


class CodeSpent(CareBridgeError):
    """Used already, or expired."""

    code = "enrolment_code_spent"


def redeem(
    conn: psycopg.Connection,
    code: str,
    *,
    agent_version: str | None,
    create_account: Callable[[str, str], None],
    now: datetime | None = None,
) -> Provisioned:
    """Spend a code: create the edge and its broker account in one step.

    The account is created before the transaction commits, so if the broker side fails
    the code stays unused and the person can simply try again.
    """
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            """SELECT mode, patient_id, label, used_at, expires_at <= coalesce(%s, now()) AS expired
               FROM enrolment_codes WHERE code_hash = %s FOR UPDATE""",
            (now, code_hash(code)),
        ).fetchone()
        if found is None:
            raise CodeUnknown("unknown enrolment code")
        if found["used_at"] is not None or found["expired"]:
            raise CodeSpent("enrolment code already used or expired")
        edge_id = f"{found['mode']}-{secrets.token_hex(5)}"
        password = secrets.token_urlsafe(24)
        cur.execute(
            """INSERT INTO edges (edge_id, mode, label, patient_id, mqtt_username, agent_version,
                                  provisioned_at)
               VALUES (%s, %s, %s, %s, %s, %s, now())""",
            (edge_id, found["mode"], found["label"], found["patient_id"], edge_id, agent_version),
        )
        cur.execute(
            "UPDATE enrolment_codes SET used_at = now(), edge_id = %s WHERE code_hash = %s",
            (edge_id, code_hash(code)),
        )
        create_account(edge_id, password)
    return Provisioned(edge_id, found["mode"], found["patient_id"], edge_id, password)


@dataclass(frozen=True)
class Revoked:
    edge_id: str
    disabled_at: datetime
    removed_username: str | None
    """The broker account removed now; None when there was none left to remove."""


def revoke(
    conn: psycopg.Connection, edge_id: str, *, remove_account: Callable[[str], None]
) -> Revoked:
    """Disable an edge and remove its broker account, in one step.

    The account is removed before the transaction commits, so if the broker side fails the
    edge stays as it was and revoking again is safe. Revoking twice is harmless: the
    username is forgotten with the account, so the second time there is nothing to remove.
    """
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            "SELECT mqtt_username FROM edges WHERE edge_id = %s FOR UPDATE", (edge_id,)
        ).fetchone()
        if found is None:
            raise EdgeUnknown(edge_id)
        row = cur.execute(
            """UPDATE edges SET disabled_at = coalesce(disabled_at, now()), mqtt_username = NULL
               WHERE edge_id = %s RETURNING disabled_at""",
            (edge_id,),
        ).fetchone()
        assert row is not None  # locked above
        if found["mqtt_username"] is not None:
            remove_account(found["mqtt_username"])
    return Revoked(edge_id, row["disabled_at"], found["mqtt_username"])
