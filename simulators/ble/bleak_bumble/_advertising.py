"""Advertising data (AD structures as a bumble host reports them) → bleak's AdvertisementData."""

from __future__ import annotations

import struct
import uuid as _uuid
from collections.abc import Iterable

from bleak.backends.scanner import AdvertisementData
from bleak.uuids import normalize_uuid_16, normalize_uuid_32
from bumble.core import AdvertisingData
from bumble.device import Advertisement

_T = AdvertisingData.Type

_UUID16_LISTS = (
    _T.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    _T.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
)
_UUID32_LISTS = (
    _T.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    _T.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
)
_UUID128_LISTS = (
    _T.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    _T.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


def _uuid128(data: bytes) -> str:
    # AD structures carry UUIDs little-endian; bleak prints them big-endian.
    return str(_uuid.UUID(bytes=bytes(reversed(data))))


def _whole(data: bytes, size: int) -> bytes:
    # A truncated structure must not make the whole advertisement unparseable.
    return data[: len(data) // size * size]


def _service_uuids(structures: Iterable[tuple[int, bytes]]) -> list[str]:
    found: list[str] = []
    for ad_type, data in structures:
        if ad_type in _UUID16_LISTS:
            found += [normalize_uuid_16(v) for (v,) in struct.iter_unpack("<H", _whole(data, 2))]
        elif ad_type in _UUID32_LISTS:
            found += [normalize_uuid_32(v) for (v,) in struct.iter_unpack("<I", _whole(data, 4))]
        elif ad_type in _UUID128_LISTS:
            found += [_uuid128(data[i : i + 16]) for i in range(0, len(data) - 15, 16)]
    # An active scan merges the advertisement with its scan response, which may repeat
    # structures; bleak reports each UUID once.
    return list(dict.fromkeys(found))


def _service_data(structures: Iterable[tuple[int, bytes]]) -> dict[str, bytes]:
    result: dict[str, bytes] = {}
    for ad_type, data in structures:
        if ad_type == _T.SERVICE_DATA_16_BIT_UUID and len(data) >= 2:
            result[normalize_uuid_16(struct.unpack_from("<H", data)[0])] = bytes(data[2:])
        elif ad_type == _T.SERVICE_DATA_32_BIT_UUID and len(data) >= 4:
            result[normalize_uuid_32(struct.unpack_from("<I", data)[0])] = bytes(data[4:])
        elif ad_type == _T.SERVICE_DATA_128_BIT_UUID and len(data) >= 16:
            result[_uuid128(data[:16])] = bytes(data[16:])
    return result


def _local_name(structures: Iterable[tuple[int, bytes]]) -> str | None:
    complete = shortened = None
    for ad_type, data in structures:
        if ad_type == _T.COMPLETE_LOCAL_NAME and complete is None:
            complete = data.decode("utf-8", errors="replace")
        elif ad_type == _T.SHORTENED_LOCAL_NAME and shortened is None:
            shortened = data.decode("utf-8", errors="replace")
    return complete if complete is not None else shortened


def to_advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """Map one bumble advertisement (advertising PDU, merged with any scan response)."""
    structures: list[tuple[int, bytes]] = list(advertisement.data.ad_structures)
    manufacturer_data: dict[int, bytes] = {}
    tx_power: int | None = None
    for ad_type, data in structures:
        if ad_type == _T.MANUFACTURER_SPECIFIC_DATA and len(data) >= 2:
            manufacturer_data[struct.unpack_from("<H", data)[0]] = bytes(data[2:])
        elif ad_type == _T.TX_POWER_LEVEL and len(data) == 1 and tx_power is None:
            # The AD field is a signed dBm value; bumble's parser reads it unsigned.
            tx_power = struct.unpack("<b", data)[0]
    return AdvertisementData(
        local_name=_local_name(structures),
        manufacturer_data=manufacturer_data,
        service_data=_service_data(structures),
        service_uuids=_service_uuids(structures),
        tx_power=tx_power,
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )
