"""Vendor plugins: devices outside the SIG profiles that broadcast readings in advertisements.

A plugin is one module in this package exposing `PLUGIN`, an `AdvertisementPlugin`: a
declarative list of the advertisement formats it decodes (`AdvertisedModel`: catalogue id,
manufacturer, model, device kind, and a `device_drivers.catalogue.Matcher` on service-data
UUID and payload length, manufacturer id and/or name prefix) plus one pure function,
`decode_advertisement(source, data) -> Measurement | None`. Adding a vendor is that module
plus its entry in `catalogue.json`; `device_drivers.scale.AdvertisementScaleDriver` does the
scanning for all of them.

`source` names where `data` came from: the service-data UUID (bleak's 128-bit lowercase
form) for service data, or `manufacturer_source(company_id)` for manufacturer data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from device_drivers.catalogue import Advertisement, Matcher, catalogue_entry
from device_drivers.measurement import Measurement
from protocols.reading import DeviceKind

AdvertisementDecoder = Callable[[str, bytes], Measurement | None]
"""`decode_advertisement(source, data)`: raises `PayloadError` for malformed data, returns
None for an advertisement that carries no reading to keep (still settling, say)."""


def manufacturer_source(company_id: int) -> str:
    return f"manufacturer:{company_id:#06x}"


@dataclass(frozen=True, slots=True)
class AdvertisedModel:
    """One advertisement format: which devices send it and how to recognise it."""

    catalogue_id: str
    manufacturer: str
    model: str
    kind: DeviceKind
    matcher: Matcher

    def __post_init__(self) -> None:
        if self.matcher.service_data_uuid is None and self.matcher.manufacturer_id is None:
            raise ValueError(
                f"{self.catalogue_id}: a broadcast format needs service data or manufacturer "
                "data to decode; a name prefix alone carries no reading"
            )

    @classmethod
    def from_catalogue(cls, catalogue_id: str, *, manufacturer: str, model: str) -> AdvertisedModel:
        """A format whose matcher and device kind are the catalogue entry's own."""
        entry = catalogue_entry(catalogue_id)
        return cls(catalogue_id, manufacturer, model, entry.kind, entry.matcher)

    def payload(self, adv: Advertisement) -> tuple[str, bytes] | None:
        """`(source, data)` for the decoder when `adv` is in this format, else None."""
        if not self.matcher.matches(adv):
            return None
        uuid = self.matcher.service_data_uuid
        if uuid is not None:
            found = _lower_keys(adv.service_data or {})[uuid.lower()]
            return uuid.lower(), found
        company = self.matcher.manufacturer_id
        assert company is not None  # __post_init__ guarantees one of the two
        return manufacturer_source(company), (adv.manufacturer_data or {})[company]


@dataclass(frozen=True, slots=True)
class AdvertisementPlugin:
    name: str
    models: tuple[AdvertisedModel, ...]
    decode_advertisement: AdvertisementDecoder

    def identify(self, adv: Advertisement) -> tuple[AdvertisedModel, str, bytes] | None:
        """The first model `adv` matches, with the source and bytes to decode."""
        for model in self.models:
            found = model.payload(adv)
            if found is not None:
                return model, found[0], found[1]
        return None


def _lower_keys(data: Mapping[str, bytes]) -> dict[str, bytes]:
    return {key.lower(): value for key, value in data.items()}


__all__ = [
    "AdvertisedModel",
    "AdvertisementDecoder",
    "AdvertisementPlugin",
    "manufacturer_source",
]
