"""`python -m device_drivers decode`: the contract support staff and scripts rely on."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

from device_drivers.__main__ import EXIT_BAD_PAYLOAD, EXIT_USAGE, main
from device_drivers.characteristics import CODECS, parse_code
from tests.device_drivers.vectors import REPO_ROOT, ble_vectors


def _run(*argv: str) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return (
        code,
        (
            json.loads(out.getvalue())
            if out.getvalue().strip().startswith(("[", "{"))
            else out.getvalue()
        ),
        err.getvalue(),
    )


def test_blood_pressure_readings_with_flags() -> None:
    code, readings, _ = _run("decode", "--char", "2A35", "--hex", "1496005f006df476000c00")
    assert code == 0
    by_metric = {r["metric"]: r for r in readings}
    assert set(by_metric) == {"systolic", "diastolic", "mean_arterial_pressure", "pulse_rate"}
    assert by_metric["systolic"]["value"] == 150.0
    assert by_metric["systolic"]["unit"] == "mm[Hg]"
    assert by_metric["pulse_rate"]["unit"] == "/min"
    assert set(by_metric["systolic"]["flags"]) == {"irregular_pulse", "pulse_rate_out_of_range"}
    assert "context" in by_metric["systolic"]


def test_kpa_is_printed_in_the_canonical_unit_with_the_device_value_kept() -> None:
    code, readings, _ = _run("decode", "--char", "0x2a35", "--hex", "01a0f06bf07cf0")
    assert code == 0
    systolic = next(r for r in readings if r["metric"] == "systolic")
    assert systolic["unit"] == "mm[Hg]"
    assert systolic["value"] == pytest.approx(120.0, abs=0.1)
    assert (systolic["device_value"], systolic["device_unit"]) == (16.0, "kPa")


def test_glucose_context_meal_and_unavailable_fields() -> None:
    # 120 mg/dL capillary blood from the finger.
    code, readings, _ = _run("decode", "--char", "2A18", "--hex", "020200ea07010203040578b011")
    assert code == 0
    (reading,) = readings
    assert reading["metric"] == "glucose"
    assert reading["unit"] == "mmol/L"
    assert reading["value"] == pytest.approx(120 / 18.016, abs=1e-6)
    assert reading["sequence_number"] == 2
    assert reading["context"] == {"site": "finger"}
    # No concentration field at all: nothing to read.
    code, readings, _ = _run("decode", "--char", "2A18", "--hex", "000100ea070102030405")
    assert (code, readings) == (0, [])


def test_a_characteristic_without_readings_shows_its_fields_on_request() -> None:
    code, readings, err = _run("decode", "--char", "2A49", "--hex", "0000")
    assert (code, readings) == (0, [])
    assert "--fields" in err
    code, shown, _ = _run("decode", "--char", "2A49", "--hex", "0000", "--fields")
    assert code == 0
    assert shown["name"] == "Blood Pressure Feature"
    assert shown["fields"]["raw"] == 0


@pytest.mark.parametrize(
    ("argv", "exit_code", "message"),
    [
        (["--char", "2A35", "--hex", "1e78"], EXIT_BAD_PAYLOAD, "malformed_payload"),
        (["--char", "2A35", "--hex", "zz"], EXIT_USAGE, "not hexadecimal"),
        (["--char", "blood", "--hex", "00"], EXIT_USAGE, "not a characteristic code"),
        (["--char", "2A00", "--hex", "00"], EXIT_USAGE, "not one decode knows"),
    ],
)
def test_errors_go_to_stderr_with_a_non_zero_exit(
    argv: list[str], exit_code: int, message: str
) -> None:
    code, out, err = _run("decode", *argv)
    assert code == exit_code
    assert out == ""
    assert message in err


def test_every_vector_of_a_known_characteristic_decodes_or_fails_cleanly() -> None:
    for vector in ble_vectors():
        name = vector["characteristic"]
        if not name.startswith("0x") or parse_code(name) not in CODECS:
            continue
        code, _, err = _run("decode", "--char", name, "--hex", vector["hex"], "--fields")
        assert code == 0, (name, vector["hex"], err)


def test_list_and_the_real_command_line() -> None:
    code, listing, _ = _run("list")
    assert code == 0
    assert "2A35  Blood Pressure Measurement  (readings)" in listing
    done = subprocess.run(
        [sys.executable, "-m", "device_drivers", "decode", "--char", "2A5E", "--hex", "0062004800"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    metrics = {r["metric"]: r["value"] for r in json.loads(done.stdout)}
    assert metrics == {"spo2": 98.0, "pulse_rate": 72.0}


def test_full_uuid_codes_are_understood() -> None:
    assert parse_code("00002a35-0000-1000-8000-00805f9b34fb") == 0x2A35
