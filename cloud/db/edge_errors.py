"""Errors the stores raise about edges, shared so an API route maps each one way."""

from __future__ import annotations

from protocols.errors import CareBridgeError


class EdgeUnknown(CareBridgeError):
    """No edge with that id in the registry."""

    code = "edge_unknown"

    def __init__(self, edge_id: str) -> None:
        super().__init__(f"no edge {edge_id!r} in the registry")
        self.edge_id = edge_id
