"""The worker's profile cache: loads only what it lacks, forgets what it is told, bounded."""

from __future__ import annotations

from collections.abc import Sequence

from cloud.alerts.rules import PatientProfile
from cloud.alerts.thresholds import Cohort
from cloud.ingest.profile_cache import EVERY_PATIENT, ProfileCache


class Database:
    """Profiles by patient, and every list of ids the cache asked for."""

    def __init__(self, *known: str) -> None:
        self.profiles = {p: PatientProfile(p) for p in known}
        self.asked: list[list[str]] = []

    def load(self, patient_ids: Sequence[str]) -> dict[str, PatientProfile]:
        self.asked.append(list(patient_ids))
        return {p: self.profiles[p] for p in patient_ids if p in self.profiles}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_held_profile_is_not_loaded_again_and_an_unknown_patient_is_remembered():
    db = Database("P1", "P2")
    cache = ProfileCache(max_patients=10, max_age_s=60)
    assert set(cache.profiles(["P1", "P2", "P-NONE"], db.load)) == {"P1", "P2"}
    assert set(cache.profiles(["P1", "P-NONE", "P3"], db.load)) == {"P1"}
    assert db.asked == [["P1", "P2", "P-NONE"], ["P3"]]


def test_an_announced_patient_is_read_again_with_its_new_profile():
    db = Database("P1", "P2")
    cache = ProfileCache(max_patients=10, max_age_s=60)
    cache.profiles(["P1", "P2"], db.load)
    db.profiles["P1"] = PatientProfile("P1", cohorts=frozenset({Cohort.DIABETES}))
    cache.hear("P1")
    assert cache.profiles(["P1", "P2"], db.load)["P1"].cohorts == {Cohort.DIABETES}
    assert db.asked[-1] == ["P1"]


def test_a_patient_registered_after_being_looked_up_is_found_once_announced():
    db = Database()
    cache = ProfileCache(max_patients=10, max_age_s=60)
    assert cache.profiles(["P9"], db.load) == {}
    db.profiles["P9"] = PatientProfile("P9")
    cache.hear("P9")
    assert set(cache.profiles(["P9"], db.load)) == {"P9"}


def test_a_rule_set_change_or_a_new_connection_forgets_everyone():
    db = Database("P1", "P2")
    cache = ProfileCache(max_patients=10, max_age_s=60)
    cache.profiles(["P1", "P2"], db.load)
    cache.hear(EVERY_PATIENT)
    assert len(cache) == 0
    cache.profiles(["P1"], db.load)
    cache.forget_all()
    cache.profiles(["P1", "P2"], db.load)
    assert db.asked[-1] == ["P1", "P2"]


def test_a_profile_held_too_long_is_read_again_though_nothing_was_announced():
    db = Database("P1", "P2")
    clock = Clock()
    cache = ProfileCache(max_patients=10, max_age_s=60, clock=clock)
    cache.profiles(["P1"], db.load)
    clock.now += 30
    cache.profiles(["P2"], db.load)
    clock.now += 31
    cache.profiles(["P1", "P2"], db.load)
    assert db.asked[-1] == ["P1"]


def test_the_oldest_loaded_go_first_when_the_cache_is_full():
    db = Database(*(f"P{n}" for n in range(6)))
    cache = ProfileCache(max_patients=4, max_age_s=60)
    cache.profiles(["P0", "P1", "P2"], db.load)
    cache.profiles(["P3", "P4"], db.load)
    assert len(cache) == 4
    cache.profiles(["P1", "P2", "P3", "P4"], db.load)
    assert len(db.asked) == 2  # all four still held
    cache.profiles(["P0"], db.load)
    assert db.asked[-1] == ["P0"]
