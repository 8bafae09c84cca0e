"""The device catalogue: advertisements to drivers, in priority order, as validated data."""

from __future__ import annotations

import pytest

from device_drivers import uuids
from device_drivers.catalogue import (
    Advertisement,
    catalogue_entry,
    default_catalogue,
    identify,
    parse_catalogue,
)
from protocols.reading import DeviceKind

MIBCS_SERVICE_DATA = bytes.fromhex("0226b20705040f0201ac018642")


@pytest.mark.parametrize(
    ("service", "kind"),
    [
        (uuids.GLUCOSE_SERVICE, DeviceKind.GLUCOSE_METER),
        (uuids.BLOOD_PRESSURE_SERVICE, DeviceKind.BLOOD_PRESSURE_MONITOR),
        (uuids.PULSE_OXIMETER_SERVICE, DeviceKind.PULSE_OXIMETER),
        (uuids.WEIGHT_SCALE_SERVICE, DeviceKind.WEIGHT_SCALE),
        (uuids.BODY_COMPOSITION_SERVICE, DeviceKind.BODY_COMPOSITION_SCALE),
    ],
)
def test_sig_profiles_are_found_by_advertised_service(service: str, kind: DeviceKind) -> None:
    entry = identify(Advertisement(name="Any", service_uuids=(service.upper(),)))
    assert entry is not None
    assert entry.kind is kind
    assert entry.connectable


def test_a_xiaomi_scale_is_not_taken_for_a_sig_body_composition_scale() -> None:
    adv = Advertisement(
        name="MIBFS",
        service_uuids=(uuids.BODY_COMPOSITION_SERVICE,),
        service_data={uuids.BODY_COMPOSITION_SERVICE: MIBCS_SERVICE_DATA},
    )
    entry = identify(adv)
    assert entry is not None
    assert entry.id == "xiaomi-mibcs2"
    assert not entry.connectable
    # Same UUID, another payload length: not the Xiaomi format, so the SIG entry applies.
    other = Advertisement(
        service_uuids=(uuids.BODY_COMPOSITION_SERVICE,),
        service_data={uuids.BODY_COMPOSITION_SERVICE: b"\x00\x01"},
    )
    sig_entry = identify(other)
    assert sig_entry is not None
    assert sig_entry.id == "sig-body-composition"


def test_unknown_devices_have_no_entry() -> None:
    assert identify(Advertisement(name="Headphones", service_uuids=(uuids.sig(0x110B),))) is None


def test_every_entry_names_an_importable_driver() -> None:
    for entry in default_catalogue():
        driver = entry.driver_class()
        assert driver.kind in {
            entry.kind,
            DeviceKind.WEIGHT_SCALE,
            DeviceKind.BODY_COMPOSITION_SCALE,
        }


def test_name_prefix_and_manufacturer_id_matchers() -> None:
    catalogue = parse_catalogue(
        {
            "entries": [
                {
                    "id": "vendor",
                    "title": "A vendor scale",
                    "kind": "weight_scale",
                    "driver": "device_drivers.scale:ScaleDriver",
                    "connectable": False,
                    "match": {"manufacturer_id": 0xFF64, "name_prefix": "SC"},
                }
            ]
        }
    )
    assert identify(Advertisement(name="SC-01", manufacturer_data={0xFF64: b""}), catalogue)
    assert identify(Advertisement(name="XX-01", manufacturer_data={0xFF64: b""}), catalogue) is None
    assert identify(Advertisement(name="SC-01", manufacturer_data={0x0001: b""}), catalogue) is None


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"id": "a", "match": {"colour": "red"}}, "unknown match keys"),
        ({"id": "a", "match": {}}, "at least one match"),
        ({"id": "a", "match": {"name_prefix": "X"}, "kind": "toaster"}, "catalogue a"),
        ({"id": "a", "match": {"name_prefix": "X"}}, "catalogue a"),
    ],
)
def test_catalogue_mistakes_name_the_entry(entry: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_catalogue({"entries": [entry]})


def test_duplicate_ids_are_refused() -> None:
    entry = {
        "id": "twice",
        "title": "t",
        "kind": "weight_scale",
        "driver": "x:Y",
        "connectable": True,
        "match": {"name_prefix": "X"},
    }
    with pytest.raises(ValueError, match="duplicate"):
        parse_catalogue({"entries": [entry, entry]})


def test_a_driver_reference_that_is_not_a_class_is_refused() -> None:
    (entry,) = parse_catalogue(
        {
            "entries": [
                {
                    "id": "bad",
                    "title": "t",
                    "kind": "weight_scale",
                    "driver": "device_drivers.uuids:sig",
                    "connectable": True,
                    "match": {"name_prefix": "X"},
                }
            ]
        }
    )
    with pytest.raises(TypeError, match="not a class"):
        entry.driver_class()


def test_entries_are_found_by_id_and_a_missing_one_is_named() -> None:
    assert catalogue_entry("sig-glucose").kind is DeviceKind.GLUCOSE_METER
    with pytest.raises(KeyError, match="no-such-device"):
        catalogue_entry("no-such-device")
