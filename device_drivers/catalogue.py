"""The device catalogue: which advertisement is handled by which driver, as data.

`catalogue.json` lists matchers (service UUID, service-data UUID and length, manufacturer
id, local-name prefix) in priority order; the first entry whose every condition holds
wins. A new vendor protocol is one module under `device_drivers.vendors` plus one entry.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from protocols.reading import DeviceKind


@dataclass(frozen=True, slots=True)
class Advertisement:
    """What a scan saw of one device: bleak's AdvertisementData, reduced to plain data."""

    name: str | None = None
    service_uuids: tuple[str, ...] = ()
    manufacturer_data: Mapping[int, bytes] | None = None
    service_data: Mapping[str, bytes] | None = None


@dataclass(frozen=True, slots=True)
class Matcher:
    service_uuid: str | None = None
    service_data_uuid: str | None = None
    service_data_length: int | None = None
    manufacturer_id: int | None = None
    name_prefix: str | None = None

    def matches(self, adv: Advertisement) -> bool:
        if self.service_uuid is not None and self.service_uuid not in {
            uuid.lower() for uuid in adv.service_uuids
        }:
            return False
        if self.service_data_uuid is not None:
            data = {k.lower(): v for k, v in (adv.service_data or {}).items()}
            payload = data.get(self.service_data_uuid)
            if payload is None:
                return False
            if self.service_data_length is not None and len(payload) != self.service_data_length:
                return False
        if self.manufacturer_id is not None and self.manufacturer_id not in (
            adv.manufacturer_data or {}
        ):
            return False
        return self.name_prefix is None or (adv.name or "").startswith(self.name_prefix)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    id: str
    title: str
    kind: DeviceKind
    driver: str
    """`module:Class` of the driver; imported only when a device of this entry is used."""
    connectable: bool
    matcher: Matcher

    def driver_class(self) -> type[Any]:
        module_name, _, class_name = self.driver.partition(":")
        found = getattr(importlib.import_module(module_name), class_name)
        if not isinstance(found, type):
            raise TypeError(f"catalogue {self.id}: {self.driver} is not a class")
        return found


_MATCH_KEYS = frozenset(Matcher.__dataclass_fields__)


def parse_catalogue(document: Mapping[str, Any]) -> tuple[CatalogueEntry, ...]:
    """Validate a catalogue document; a mistake names the entry and the key."""
    entries: list[CatalogueEntry] = []
    seen: set[str] = set()
    for position, raw in enumerate(document.get("entries", [])):
        label = raw.get("id", f"entry {position}")
        unknown = set(raw.get("match", {})) - _MATCH_KEYS
        if unknown:
            raise ValueError(f"catalogue {label}: unknown match keys {sorted(unknown)}")
        if not raw.get("match"):
            raise ValueError(f"catalogue {label}: an entry needs at least one match condition")
        if label in seen:
            raise ValueError(f"catalogue {label}: duplicate id")
        seen.add(label)
        match = dict(raw["match"])
        for key in ("service_uuid", "service_data_uuid"):
            if key in match:
                match[key] = str(match[key]).lower()
        try:
            entries.append(
                CatalogueEntry(
                    id=label,
                    title=raw["title"],
                    kind=DeviceKind(raw["kind"]),
                    driver=raw["driver"],
                    connectable=bool(raw["connectable"]),
                    matcher=Matcher(**match),
                )
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"catalogue {label}: {exc}") from None
    return tuple(entries)


@cache
def default_catalogue() -> tuple[CatalogueEntry, ...]:
    text = resources.files("device_drivers").joinpath("catalogue.json").read_text("utf-8")
    return parse_catalogue(json.loads(text))


def catalogue_entry(
    entry_id: str, catalogue: Sequence[CatalogueEntry] | None = None
) -> CatalogueEntry:
    """The entry with `entry_id`; a KeyError that names it when there is none."""
    for entry in catalogue if catalogue is not None else default_catalogue():
        if entry.id == entry_id:
            return entry
    raise KeyError(f"device catalogue has no entry {entry_id!r}")


def identify(
    adv: Advertisement, catalogue: Sequence[CatalogueEntry] | None = None
) -> CatalogueEntry | None:
    """The entry that handles `adv`, or None for a device we have no driver for."""
    for entry in catalogue if catalogue is not None else default_catalogue():
        if entry.matcher.matches(adv):
            return entry
    return None
