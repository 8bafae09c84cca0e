"""Scale drivers: SIG Weight Scale / Body Composition scales, and scales that only broadcast.

`ScaleDriver` talks to a connected SIG scale. Weight Scale (0x181D) and Body Composition
(0x181B) have no Record Access Control Point: once the collector enables indications the
scale sends what it stored, then each new step-on as it happens, and usually switches itself
off. One step-on is a Weight Measurement (0x2A9D) and a Body Composition Measurement
(0x2A9C, possibly in two packets); the driver joins them into ONE `Measurement`.

`AdvertisementScaleDriver` is for scales that never connect (Xiaomi, and any vendor plugin
under `device_drivers.vendors`): it scans, hands matching advertisements to the plugin's
decoder, and yields each new reading once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeVar

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

from device_drivers import uuids
from device_drivers.catalogue import Advertisement
from device_drivers.codec.body_composition import (
    BodyCompositionAssembler,
    BodyCompositionFeature,
    BodyCompositionMeasurement,
    decode_body_composition,
    decode_body_composition_feature,
    has_trusted_time,
    same_step_on,
    to_measurement,
)
from device_drivers.codec.weight_scale import (
    WeightMeasurement,
    WeightScaleFeature,
    decode_weight_measurement,
    decode_weight_scale_feature,
)
from device_drivers.errors import ConnectionFailedError, PayloadError, ProfileMismatchError
from device_drivers.measurement import Measurement
from device_drivers.session import ClockSource, DeviceSession, serial_from_address
from device_drivers.vendors import AdvertisedModel, AdvertisementPlugin
from protocols.reading import DeviceKind, DeviceRef

logger = logging.getLogger(__name__)

_F = TypeVar("_F")

DEFAULT_IDLE_TIMEOUT_S: Final = 10.0
"""Silence after which a scale session is over."""
DEFAULT_MERGE_WINDOW_S: Final = 1.0
"""How long a weight waits for its body composition (and the other way round), and a
first multi-packet part for its second, when time stamps cannot pair them. A scale sends
the indications of one step-on back to back, tens of milliseconds apart."""
DEFAULT_SCAN_IDLE_TIMEOUT_S: Final = 30.0

BadPayloadCallback = Callable[[PayloadError], None]
StepOn = tuple[WeightMeasurement | None, BodyCompositionMeasurement | None]


class StepOnMerger:
    """Pairs weights with body compositions of the same step-on. Pure: times are passed in.

    A weight and a body composition are one step-on when `same_step_on` allows it (equal
    trusted time stamps, same user) and, unless both carry a trusted time stamp, they
    arrived within `window` seconds of each other. A record waits at most `window` for its
    partner (`due`), and only when the scale has the other characteristic at all; a second
    record of the same kind while one waits means the waiting one has no partner.
    Multi-packet body compositions go through a `BodyCompositionAssembler` first.
    """

    def __init__(
        self,
        *,
        expect_weight: bool,
        expect_body_composition: bool,
        window: float = DEFAULT_MERGE_WINDOW_S,
    ) -> None:
        self.expect_weight = expect_weight
        self.expect_body_composition = expect_body_composition
        self.window = window
        self.assembler = BodyCompositionAssembler()
        self._part_at = 0.0
        self._weight: tuple[WeightMeasurement, float] | None = None
        self._body: tuple[BodyCompositionMeasurement, float] | None = None

    @property
    def waiting(self) -> bool:
        return bool(self._weight or self._body or self.assembler.pending)

    def deadline(self) -> float | None:
        """When the oldest waiting record stops waiting."""
        times = [entry[1] for entry in (self._weight, self._body) if entry is not None]
        if self.assembler.pending is not None:
            times.append(self._part_at)
        return min(times) + self.window if times else None

    def add_weight(self, record: WeightMeasurement, at: float) -> list[StepOn]:
        out: list[StepOn] = []
        if self._weight is not None:
            out.append((self._weight[0], None))
            self._weight = None
        if self._body is not None:
            body, body_at = self._body
            self._body = None
            if self._pairs(record, at, body, body_at):
                return [*out, (record, body)]
            out.append((None, body))
        if self.expect_body_composition:
            self._weight = (record, at)
        else:
            out.append((record, None))
        return out

    def add_body_composition_packet(
        self, record: BodyCompositionMeasurement, at: float
    ) -> list[StepOn]:
        out: list[StepOn] = []
        part_at = self._part_at
        for complete in self.assembler.push(record):
            # A part left over from before arrived when it arrived, not now.
            lone = complete is not record and complete.multiple_packet
            out += self._add_body(complete, part_at if lone else at)
        if self.assembler.pending is record:
            self._part_at = at
        return out

    def due(self, now: float) -> list[StepOn]:
        out: list[StepOn] = []
        if self.assembler.pending is not None and now >= self._part_at + self.window:
            for part in self.assembler.flush():
                out += self._add_body(part, self._part_at)
        if self._weight is not None and now >= self._weight[1] + self.window:
            out.append((self._weight[0], None))
            self._weight = None
        if self._body is not None and now >= self._body[1] + self.window:
            out.append((None, self._body[0]))
            self._body = None
        return out

    def flush(self) -> list[StepOn]:
        out: list[StepOn] = []
        for part in self.assembler.flush():
            out += self._add_body(part, self._part_at)
        if self._weight is not None:
            out.append((self._weight[0], None))
        if self._body is not None:
            out.append((None, self._body[0]))
        self._weight = self._body = None
        return out

    def _add_body(self, record: BodyCompositionMeasurement, at: float) -> list[StepOn]:
        out: list[StepOn] = []
        if self._body is not None:
            out.append((None, self._body[0]))
            self._body = None
        if self._weight is not None:
            weight, weight_at = self._weight
            self._weight = None
            if self._pairs(weight, weight_at, record, at):
                return [*out, (weight, record)]
            out.append((weight, None))
        if self.expect_weight:
            self._body = (record, at)
        else:
            out.append((None, record))
        return out

    def _pairs(
        self,
        weight: WeightMeasurement,
        weight_at: float,
        body: BodyCompositionMeasurement,
        body_at: float,
    ) -> bool:
        if not same_step_on(weight, body):
            return False
        if has_trusted_time(weight) and has_trusted_time(body):
            return True
        return abs(weight_at - body_at) <= self.window


@dataclass(frozen=True, slots=True)
class _Packet:
    uuid: str
    data: bytes
    at: float


class ScaleDriver:
    """One connected SIG scale: Weight Scale, Body Composition, or both.

    Args:
        session: the connected device.
        merge_window: see `DEFAULT_MERGE_WINDOW_S`.
        on_bad_payload: called with every indication that does not decode, so the edge
            can keep it as a dead letter; the session carries on.

    `kind` is the catalogue's kind for the driver; `device_kind` says, after `prepare`,
    whether this scale also measures body composition.
    """

    kind: ClassVar[DeviceKind] = DeviceKind.WEIGHT_SCALE
    service_uuid: ClassVar[str] = uuids.WEIGHT_SCALE_SERVICE
    keeps_records: ClassVar[bool] = False
    """A scale drops a step-on from memory once its indications are confirmed."""
    service_uuids: ClassVar[tuple[str, ...]] = (
        uuids.WEIGHT_SCALE_SERVICE,
        uuids.BODY_COMPOSITION_SERVICE,
    )
    """A scale may offer either service or both; either is enough to use this driver."""

    def __init__(
        self,
        session: DeviceSession,
        *,
        merge_window: float = DEFAULT_MERGE_WINDOW_S,
        on_bad_payload: BadPayloadCallback | None = None,
    ) -> None:
        self.session = session
        self.merge_window = merge_window
        self.weight_feature: WeightScaleFeature | None = None
        self.body_composition_feature: BodyCompositionFeature | None = None
        self.clock_set = False
        """Whether prepare() could write the scale's clock (Current Time)."""
        self.device_kind = DeviceKind.WEIGHT_SCALE
        self._on_bad_payload = on_bad_payload
        self._packets: asyncio.Queue[_Packet] = asyncio.Queue()
        self._merger: StepOnMerger | None = None
        self._last_activity = 0.0

    async def prepare(self, now: ClockSource) -> None:
        """Read Device Information and features, set the clock, subscribe: Body
        Composition first, then Weight, whose indications start most scales' burst."""
        session = self.session
        has_weight = session.has(uuids.WEIGHT_MEASUREMENT)
        has_body = session.has(uuids.BODY_COMPOSITION_MEASUREMENT)
        if not (has_weight or has_body):
            raise ProfileMismatchError(
                f"{session.address} has neither a Weight Measurement nor a Body Composition "
                "Measurement characteristic"
            )
        await session.read_device_information()
        if session.has(uuids.WEIGHT_SCALE_FEATURE):
            raw = await session.read(uuids.WEIGHT_SCALE_FEATURE, "weight scale feature")
            self.weight_feature = self._feature(decode_weight_scale_feature, raw)
        if session.has(uuids.BODY_COMPOSITION_FEATURE):
            raw = await session.read(uuids.BODY_COMPOSITION_FEATURE, "body composition feature")
            self.body_composition_feature = self._feature(decode_body_composition_feature, raw)
        self.clock_set = await session.set_clock(now)
        if has_body:
            self.device_kind = DeviceKind.BODY_COMPOSITION_SCALE
        self._merger = StepOnMerger(
            expect_weight=has_weight, expect_body_composition=has_body, window=self.merge_window
        )
        self._touch()
        if has_body:
            await session.subscribe(
                uuids.BODY_COMPOSITION_MEASUREMENT,
                "body composition measurement",
                self._receiver(uuids.BODY_COMPOSITION_MEASUREMENT),
            )
        if has_weight:
            await session.subscribe(
                uuids.WEIGHT_MEASUREMENT,
                "weight measurement",
                self._receiver(uuids.WEIGHT_MEASUREMENT),
            )

    def _feature(self, decode: Callable[[bytes], _F], raw: bytes) -> _F | None:
        try:
            return decode(raw)
        except PayloadError as exc:
            # Features describe precision and options; the measurements still count.
            logger.warning("ignoring a feature of %s: %s", self.session.address, exc)
            return None

    async def measurements(
        self,
        *,
        after_sequence: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> AsyncIterator[Measurement]:
        """Yield one Measurement per step-on as soon as its indications are in.

        Ends when the scale disconnects (after its burst, as most do), or after
        `idle_timeout` seconds without an indication: then the driver closes the link
        itself and yields what arrived before it was down. A disconnect between the two packets of
        a multi-packet body composition raises `ConnectionFailedError` after the first
        part has been yielded, marked `multi_packet_incomplete`. A step-on whose every
        value is "unsuccessful" yields nothing. WSS and BCS have no sequence numbers and the
        scale decides what it sends, so `after_sequence` is accepted and ignored.
        """
        del after_sequence
        merger = self._merger
        if merger is None:
            raise RuntimeError("call prepare() before measurements()")
        loop = asyncio.get_running_loop()
        self._touch()
        while True:
            for step in merger.due(loop.time()):
                if (measurement := self._measurement(step)) is not None:
                    yield measurement
            packet = await self._next(idle_timeout, merger.deadline())
            if packet is None:
                break
            if isinstance(packet, _Packet):
                for step in self._accept(merger, packet):
                    if (measurement := self._measurement(step)) is not None:
                        yield measurement
        broken = merger.assembler.pending is not None and self.session.disconnected.is_set()
        if not self.session.disconnected.is_set():
            # Silence ends the session, and we hang up before letting go of the queue: an
            # indication from now on is confirmed by our stack and the scale then forgets
            # it, so whatever arrives until the link is down must be handed on.
            await self.session.close()
            while not self._packets.empty():
                for step in self._accept(merger, self._packets.get_nowait()):
                    if (measurement := self._measurement(step)) is not None:
                        yield measurement
        for step in merger.flush():
            if (measurement := self._measurement(step)) is not None:
                yield measurement
        if broken:
            raise ConnectionFailedError(
                f"{self.session.address} dropped the link in the middle of a multi-packet "
                "body composition measurement"
            )

    # -- internals ---------------------------------------------------------------------

    def left_over(self) -> list[Measurement]:
        """Step-ons received but not yet yielded (a weight still waiting for its body
        composition included), for a caller that stopped taking them (its own failure, a
        watchdog) and has closed the link: the scale forgot each once our stack confirmed it."""
        merger = self._merger
        if merger is None:
            return []
        steps: list[StepOn] = []
        while not self._packets.empty():
            steps += self._accept(merger, self._packets.get_nowait())
        steps += merger.flush()
        return [m for step in steps if (m := self._measurement(step)) is not None]

    def _touch(self) -> None:
        self._last_activity = asyncio.get_running_loop().time()

    def _receiver(self, uuid: str) -> Callable[[bytes], None]:
        def receive(data: bytes) -> None:
            self._touch()
            self._packets.put_nowait(_Packet(uuid, data, self._last_activity))

        return receive

    async def _next(self, idle_timeout: float, deadline: float | None) -> _Packet | bool | None:
        """The next packet; True when `deadline` passed first (something waiting is due);
        None once the scale is silent for `idle_timeout` or gone, packets received before a
        disconnect still coming first."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(asyncio.QueueEmpty):
                return self._packets.get_nowait()
            if self.session.disconnected.is_set():
                return None
            now = loop.time()
            idle_end = self._last_activity + idle_timeout
            if now >= idle_end:
                return None
            if deadline is not None and now >= deadline:
                return True
            wake = idle_end if deadline is None else min(idle_end, deadline)
            getter = asyncio.ensure_future(self._packets.get())
            dropped = asyncio.ensure_future(self.session.disconnected.wait())
            try:
                await asyncio.wait(
                    (getter, dropped), timeout=wake - now, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                getter.cancel()
                dropped.cancel()
            if getter.done() and not getter.cancelled():
                return getter.result()

    def _accept(self, merger: StepOnMerger, packet: _Packet) -> list[StepOn]:
        try:
            if packet.uuid == uuids.WEIGHT_MEASUREMENT:
                return merger.add_weight(decode_weight_measurement(packet.data), packet.at)
            record = decode_body_composition(packet.data)
        except PayloadError as exc:
            if self._on_bad_payload is not None:
                self._on_bad_payload(exc)
            else:
                logger.warning("malformed measurement from %s: %s", self.session.address, exc)
            return []
        return merger.add_body_composition_packet(record, packet.at)

    def _measurement(self, step: StepOn) -> Measurement | None:
        measurement = to_measurement(*step)
        if measurement is None:
            logger.info("%s reported a step-on without any value", self.session.address)
        return measurement


# -- scales that only advertise --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdvertisedMeasurement:
    """A reading heard in an advertisement, with the device it came from."""

    address: str
    device: DeviceRef
    model: AdvertisedModel
    measurement: Measurement
    rssi: int | None = None


def to_advertisement(data: AdvertisementData) -> Advertisement:
    """bleak's AdvertisementData as the catalogue's plain `Advertisement`."""
    return Advertisement(
        name=data.local_name,
        service_uuids=tuple(uuid.lower() for uuid in data.service_uuids),
        manufacturer_data=dict(data.manufacturer_data),
        service_data={uuid.lower(): bytes(value) for uuid, value in data.service_data.items()},
    )


class AdvertisementScaleDriver:
    """Scans for broadcasting scales of one vendor plugin and yields each reading once.

    Args:
        plugin: the vendor plugin; subclasses (e.g. `XiaomiScaleDriver`) set it.
        address: only this device (bleak's address form), or every matching one.
        backend: bleak scanner backend; None is the platform's own.
        on_bad_payload: called once per distinct malformed advertisement.
        **scanner_kwargs: passed to `BleakScanner` (e.g. `bumble={...}`, `bluez={...}`).

    A scale repeats each frame many times a second: a reading is yielded when its device,
    time and values are new in this scan (see the plugin for what makes a frame a reading).
    """

    kind: ClassVar[DeviceKind] = DeviceKind.WEIGHT_SCALE
    plugin: ClassVar[AdvertisementPlugin | None] = None

    def __init__(
        self,
        *,
        plugin: AdvertisementPlugin | None = None,
        address: str | None = None,
        backend: type[BaseBleakScanner] | None = None,
        on_bad_payload: BadPayloadCallback | None = None,
        **scanner_kwargs: Any,
    ) -> None:
        chosen = plugin or type(self).plugin
        if chosen is None:
            raise ValueError("an advertisement driver needs a vendor plugin")
        self._plugin = chosen
        self.address = address.upper() if address else None
        self._backend = backend
        self._on_bad_payload = on_bad_payload
        self._scanner_kwargs = scanner_kwargs
        self._found: asyncio.Queue[AdvertisedMeasurement] = asyncio.Queue()
        self._seen: set[tuple[Any, ...]] = set()
        self._bad: set[tuple[str, bytes]] = set()
        self._last_heard = 0.0

    async def advertised_measurements(
        self, *, idle_timeout: float = DEFAULT_SCAN_IDLE_TIMEOUT_S
    ) -> AsyncIterator[AdvertisedMeasurement]:
        """Scan and yield each new reading as it is heard.

        Ends once no advertisement of the plugin's formats (from `address`, if given) has
        been heard for `idle_timeout` seconds: a scale stops advertising a little while
        after the user steps off, so a weighing in progress is never cut short.
        """
        loop = asyncio.get_running_loop()
        async with BleakScanner(
            self._on_advertisement, backend=self._backend, **self._scanner_kwargs
        ):
            self._last_heard = loop.time()
            while True:
                try:
                    found = self._found.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = self._last_heard + idle_timeout - loop.time()
                    if remaining <= 0:
                        return
                    try:
                        async with asyncio.timeout(remaining):
                            found = await self._found.get()
                    except TimeoutError:
                        continue  # heard something meanwhile? the deadline says
                yield found

    async def measurements(
        self,
        *,
        after_sequence: int | None = None,
        idle_timeout: float = DEFAULT_SCAN_IDLE_TIMEOUT_S,
    ) -> AsyncIterator[Measurement]:
        """The drivers' common shape; use `advertised_measurements` to know which device
        each reading came from when no `address` was given."""
        del after_sequence
        async for found in self.advertised_measurements(idle_timeout=idle_timeout):
            yield found.measurement

    def _on_advertisement(self, device: BLEDevice, data: AdvertisementData) -> None:
        address = device.address.upper()
        if self.address is not None and address != self.address:
            return
        identified = self._plugin.identify(to_advertisement(data))
        if identified is None:
            return
        model, source, payload = identified
        self._last_heard = asyncio.get_running_loop().time()
        try:
            measurement = self._plugin.decode_advertisement(source, payload)
        except PayloadError as exc:
            if (address, payload) not in self._bad:
                self._bad.add((address, payload))
                if self._on_bad_payload is not None:
                    self._on_bad_payload(exc)
                else:
                    logger.warning("malformed advertisement from %s: %s", address, exc)
            return
        if measurement is None:
            return
        key = (
            address,
            measurement.device_time,
            measurement.clock_set,
            tuple((o.metric, o.device_value, o.device_unit) for o in measurement.observations),
        )
        if key in self._seen:
            return
        self._seen.add(key)
        ref = DeviceRef(
            kind=model.kind,
            model=model.model,
            serial=serial_from_address(address),
            manufacturer=model.manufacturer,
        )
        self._found.put_nowait(AdvertisedMeasurement(address, ref, model, measurement, data.rssi))
