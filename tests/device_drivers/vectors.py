"""The shared BLE test vectors (`shared/vectors/`), loaded once for every codec test."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS = REPO_ROOT.parent / "shared" / "vectors"


@cache
def ble_vectors() -> list[dict[str, Any]]:
    return list(json.loads((VECTORS / "ble_vectors.json").read_text(encoding="utf-8")))


@cache
def racp_vectors() -> dict[str, Any]:
    return dict(json.loads((VECTORS / "racp_vectors.json").read_text(encoding="utf-8")))


def vectors_for(*characteristics: str) -> list[dict[str, Any]]:
    found = [v for v in ble_vectors() if v["characteristic"] in characteristics]
    assert found, f"no vectors for {characteristics}"
    return found


def vector_id(vector: dict[str, Any]) -> str:
    return f"{vector['characteristic']}:{vector['hex']}"
