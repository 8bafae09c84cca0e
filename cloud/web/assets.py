"""Front-end files: ours (committed, under static/) and the chart library that set-up
installs from the npm registry into node_modules (never committed, never from a CDN)."""

from __future__ import annotations

from pathlib import Path

WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"
TEMPLATES = WEB / "templates"
NODE_MODULES = WEB / "node_modules"

# Served at /assets/<name>: the only third-party files the pages load.
VENDOR = {"echarts.min.js": Path("echarts/dist/echarts.min.js")}


def vendor_path(name: str, node_modules: Path = NODE_MODULES) -> Path | None:
    relative = VENDOR.get(name)
    return None if relative is None else node_modules / relative


def missing_assets(node_modules: Path = NODE_MODULES) -> list[str]:
    """Vendor files that are not installed (empty when the UI can be served)."""
    return [
        str(node_modules / rel) for rel in VENDOR.values() if not (node_modules / rel).is_file()
    ]
