import json
import logging

from protocols.logs import JsonFormatter


def test_log_lines_are_json_with_service_and_extra_fields():
    record = logging.LogRecord(
        "carebridge.x", logging.WARNING, __file__, 1, "lost %s", ("db",), None
    )
    record.retry_s = 0.4
    line = json.loads(JsonFormatter("cloud-serve").format(record))
    assert line["service"] == "cloud-serve"
    assert line["level"] == "warning"
    assert line["msg"] == "lost db"
    assert line["retry_s"] == 0.4
