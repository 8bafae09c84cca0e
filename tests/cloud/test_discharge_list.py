"""The discharge-list CSV: good rows parse, bad rows come back with line, code and raw text."""

from __future__ import annotations

import pytest

from cloud.programmes.discharge_list import parse
from cloud.programmes.errors import DischargeListInvalid

HEADER = (
    "patient_id,name,phone,department,discharged_on,programme_id,consent_notice_version,"
    "consent_scope,consent_channel,consent_collected_at,paid_yuan"
)
GOOD = (
    "D-1,王建国,13800138000,心内科,2026-11-20,H1-p03,v2026.1,monitoring;call_recording,"
    "paper,2026-11-20T10:00:00+08:00,295"
)


def test_a_good_row_parses_with_its_consent():
    rows, rejects = parse("\ufeff" + HEADER + "\n" + GOOD + "\n")
    assert rejects == []
    (row,) = rows
    assert (row.patient_id, row.programme_id, row.paid_cents) == ("D-1", "H1-p03", 29500)
    assert row.consent_scope == ["monitoring", "call_recording"]
    assert row.consent_collected_at.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize(
    ("row", "code"),
    [
        (GOOD.replace("13800138000", "12345"), "bad_phone"),
        (GOOD.replace("2026-11-20,H1", "20/11/2026,H1"), "bad_date"),
        (GOOD.replace("monitoring;call_recording", "call_recording"), "bad_consent"),
        (GOOD.replace("paper", "email"), "bad_consent"),
        (GOOD.replace(",v2026.1,", ",,"), "missing_value"),
        (GOOD.replace("+08:00", ""), "bad_date"),
        (GOOD + ",extra", "extra_cells"),
    ],
)
def test_bad_rows_are_rejected_and_kept(row, code):
    rows, rejects = parse(HEADER + "\n" + GOOD.replace("D-1", "D-0") + "\n" + row + "\n")
    assert [r.patient_id for r in rows] == ["D-0"]
    assert [(r.line, r.code) for r in rejects] == [(3, code)]
    assert rejects[0].raw == row


def test_a_repeated_row_is_rejected():
    _rows, rejects = parse(HEADER + "\n" + GOOD + "\n" + GOOD + "\n")
    assert [r.code for r in rejects] == ["duplicate_row"]


def test_a_file_without_the_columns_is_refused_as_a_whole():
    with pytest.raises(DischargeListInvalid, match="lacks columns"):
        parse("name,phone\n王,138\n")
