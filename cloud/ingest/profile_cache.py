"""The patient profiles an ingest worker judges readings by, kept between flushes.

A flush of readings from 5,000 patients read their cohorts, targets and rule sets afresh
every time, though they change a few times a year: 12–15 µs per reading of a worker's and
the database's time (`benchmarks.ingest_stages`). The cache forgets a patient when the
database announces a change (`PROFILE_CHANNEL`, sent by triggers on `patients`,
`patient_targets` and `rule_sets`), forgets everything when the worker's connection is
new (announcements made while it was away are lost), and reloads any entry older than
`max_age_s` whatever it heard, so a change that no trigger covers is late, not lost.

A profile can lag by one flush: PostgreSQL holds announcements for a session in a
transaction until it ends, so a target committed while a flush is being stored is heard
after that flush (which may have judged its readings by the previous target).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cloud.alerts.rules import PatientProfile

PROFILE_CHANNEL = "patient_profiles"
"""NOTIFY channel: the payload is a patient id, or `*` when every profile may have changed."""
EVERY_PATIENT = "*"

LoadProfiles = Callable[[Sequence[str]], dict[str, PatientProfile]]


class ProfileCache:
    def __init__(
        self,
        *,
        max_patients: int,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_patients = max_patients
        self._max_age_s = max_age_s
        self._clock = clock
        self._entries: dict[str, tuple[PatientProfile | None, float]] = {}
        """Patient id → (profile or None for a patient the database does not know, loaded at);
        in loading order, so the first entries are the oldest."""

    def __len__(self) -> int:
        return len(self._entries)

    def profiles(self, patient_ids: Sequence[str], load: LoadProfiles) -> dict[str, PatientProfile]:
        """The profiles of the known ones among `patient_ids`, loading with `load` (in the
        caller's transaction) those not held or held too long."""
        now = self._clock()
        fresh_after = now - self._max_age_s
        found: dict[str, PatientProfile] = {}
        missing: list[str] = []
        for patient_id in patient_ids:
            entry = self._entries.get(patient_id)
            if entry is None or entry[1] < fresh_after:
                missing.append(patient_id)
            elif entry[0] is not None:
                found[patient_id] = entry[0]
        if missing:
            loaded = load(missing)
            found.update(loaded)
            for patient_id in missing:
                # Re-inserted, so it moves to the end of the loading order.
                self._entries.pop(patient_id, None)
                self._entries[patient_id] = (loaded.get(patient_id), now)
            self._trim()
        return found

    def hear(self, payload: str) -> None:
        """Take in one announcement on `PROFILE_CHANNEL`."""
        if payload == EVERY_PATIENT:
            self.forget_all()
        else:
            self._entries.pop(payload, None)

    def forget_all(self) -> None:
        self._entries.clear()

    def _trim(self) -> None:
        # The oldest loaded go first; a flush never needs more than its own patients.
        excess = len(self._entries) - self._max_patients
        if excess > 0:
            for patient_id in list(self._entries)[:excess]:
                del self._entries[patient_id]
