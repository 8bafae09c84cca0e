"""`python -m device_drivers`: tools for support staff and scripts.

    python -m device_drivers decode --char 2A35 --hex 1496005f006df476000c00
    python -m device_drivers list

`decode` prints the readings a payload yields as a JSON list (metric, value in the
canonical unit, unit, the device's own value and unit, flags, context, device time,
sequence number); `--fields` prints every decoded field instead. Fields the device marked
not available yield no reading. Bad input is reported on stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from device_drivers.characteristics import CODECS, parse_code
from device_drivers.errors import PayloadError

EXIT_BAD_PAYLOAD = 1
EXIT_USAGE = 2


def _readings(measurement_json: dict[str, Any]) -> list[dict[str, Any]]:
    shared = {key: value for key, value in measurement_json.items() if key != "readings"}
    return [{**reading, **shared} for reading in measurement_json["readings"]]


def decode(code: int, payload: bytes, *, fields: bool) -> Any:
    """What `decode` prints for one payload; raises PayloadError for bad bytes."""
    codec = CODECS[code]
    record = codec.decode(payload)
    measurement = codec.to_measurement(record) if codec.to_measurement else None
    readings = _readings(measurement.to_json()) if measurement is not None else []
    if fields:
        return {
            "characteristic": f"0x{code:04X}",
            "name": codec.name,
            "fields": record.as_dict(),
            "readings": readings,
        }
    return readings


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "").replace("-", "")
    cleaned = cleaned.removeprefix("0x")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"{text!r} is not hexadecimal bytes") from None


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m device_drivers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    decode_cmd = commands.add_parser("decode", help="decode one characteristic value")
    decode_cmd.add_argument("--char", required=True, help="characteristic, e.g. 2A35 or 0x2A18")
    decode_cmd.add_argument("--hex", required=True, help="the value as hex, e.g. 1e7800500064")
    decode_cmd.add_argument("--fields", action="store_true", help="print every decoded field")
    commands.add_parser("list", help="list the characteristics decode knows")
    args = parser.parse_args(argv)

    if args.command == "list":
        for code, codec in sorted(CODECS.items()):
            kind = "readings" if codec.to_measurement else "fields"
            print(f"{code:04X}  {codec.name}  ({kind})", file=out)
        return 0

    try:
        code = parse_code(args.char)
        payload = _parse_hex(args.hex)
    except ValueError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    if code not in CODECS:
        known = ", ".join(f"{c:04X}" for c in sorted(CODECS))
        print(f"error: characteristic {code:04X} is not one decode knows ({known})", file=err)
        return EXIT_USAGE
    try:
        result = decode(code, payload, fields=args.fields)
    except PayloadError as exc:
        print(f"error: {exc} [{exc.code}]", file=err)
        return EXIT_BAD_PAYLOAD
    json.dump(result, out, ensure_ascii=False, indent=2)
    out.write("\n")
    if not args.fields and CODECS[code].to_measurement is None:
        print(f"note: {CODECS[code].name} carries no readings; --fields shows it", file=err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
