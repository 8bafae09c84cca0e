"""UUID conversion between bleak's strings and bumble's `core.UUID`."""

from __future__ import annotations

import uuid as _uuid

from bleak.uuids import normalize_uuid_str
from bumble import core

# Every SIG-assigned 16/32-bit UUID lives inside this 128-bit base.
_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def to_bleak_uuid(value: core.UUID) -> str:
    """bleak's form: 128-bit, lowercase, dashed (`0000180a-0000-1000-8000-00805f9b34fb`)."""
    return str(_uuid.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


def to_bumble_uuid(value: str | int | core.UUID) -> core.UUID:
    """bumble's form, kept short when the UUID is on the SIG base.

    Short forms matter: a server stores a 16-bit declaration as 2 bytes, and a discovery
    request by value (Find By Type Value) only matches when it carries the same 2 bytes.
    """
    if isinstance(value, core.UUID):
        return value
    if isinstance(value, int):
        return core.UUID.from_16_bits(value) if value <= 0xFFFF else core.UUID.from_32_bits(value)
    normalized = normalize_uuid_str(value)
    if normalized.endswith(_BASE_SUFFIX):
        short = int(normalized[:8], 16)
        return core.UUID.from_16_bits(short) if short <= 0xFFFF else core.UUID.from_32_bits(short)
    return core.UUID(normalized)


def normalize(value: str | int | core.UUID) -> str:
    """Any accepted spelling (0x2A2B, "2a2b", 128-bit string, bumble UUID) → bleak's form."""
    return to_bleak_uuid(to_bumble_uuid(value))
