"""What the retained `EdgeStatus` says about paired devices (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from edge_agent.device_links import LinkStatus, device_statuses
from edge_agent.local_state import KnownDevice
from protocols.reading import DeviceKind

SEEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
METER = KnownDevice(
    address="AA:00:00:00:00:01",
    name="Meter",
    catalogue_id="sig-glucose",
    kind="glucose_meter",
    connectable=True,
    rssi=-60,
    last_seen_at=SEEN,
    paired_at=SEEN,
    serial="GM-1",
    model="Instant",
    manufacturer="Roche",
    last_connected_at=None,
    last_sequence=None,
    clock_offset_s=None,
    battery_percent=80,
    failures=0,
    last_error_code=None,
    last_error=None,
    retry_at=None,
)


def test_a_live_link_marks_its_device_connected_and_the_rest_keep_their_last_error():
    cuff = replace(
        METER,
        address="AA:00:00:00:00:02",
        kind="blood_pressure_monitor",
        serial="BP-1",
        battery_percent=None,
        last_error_code="needs_pairing",
    )
    links = {METER.address: LinkStatus(METER.address, "glucose_meter", connected=True)}
    meter_status, cuff_status = device_statuses([METER, cuff], links)
    assert meter_status.connected and meter_status.serial == "GM-1"
    assert meter_status.kind is DeviceKind.GLUCOSE_METER and meter_status.battery_percent == 80
    assert meter_status.last_seen_at == SEEN and meter_status.model == "Instant"
    assert not cuff_status.connected and cuff_status.last_error_kind == "needs_pairing"


def test_devices_the_protocol_cannot_name_are_left_out_or_sent_without_serial():
    uncatalogued = replace(METER, address="AA:00:00:00:00:03", kind=None)
    odd_serial = replace(METER, address="AA:00:00:00:00:04", serial="序列 1", model="M" * 80)
    [status] = device_statuses([uncatalogued, odd_serial], {})
    assert status.address == "AA:00:00:00:00:04"
    assert status.serial is None and status.model == "M" * 64
