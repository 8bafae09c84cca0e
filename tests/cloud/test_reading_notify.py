"""Which stored readings wake the centre station (pure)."""

from __future__ import annotations

from cloud.db.reading_notify import centre_counts
from cloud.ingest.intake import AcceptedReading
from protocols.reading import Source
from simulators.readings import SimulatedCuff


def test_one_count_per_edge_of_new_centre_readings_only():
    centre = SimulatedCuff("BP-C", source=Source.CENTRE).measure(120, 80, 70, patient_id=None)
    again = SimulatedCuff("BP-D", source=Source.CENTRE).measure(121, 81, 71, patient_id="P1")
    home = SimulatedCuff("BP-H", source=Source.HOME).measure(122, 82, 72, patient_id="P2")
    accepted = (
        [AcceptedReading("centre-a", r) for r in centre]
        + [AcceptedReading("centre-b", r) for r in again]
        + [AcceptedReading("home-1", r) for r in home]
    )
    fresh = {r.reading_id for r in centre + home}  # centre-b's were stored before
    assert centre_counts(accepted, fresh) == {"centre-a": len(centre)}
