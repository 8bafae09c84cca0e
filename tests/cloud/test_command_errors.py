"""`python -m cloud` with a wrong setting: the variable, its value and the rule; exit 2."""

from __future__ import annotations

from cloud.__main__ import main as cloud_main
from cloud.settings import get_settings


def test_the_cloud_commands_say_which_variable_is_wrong_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("CAREBRIDGE_MQTT_PORT", "eighty")
    get_settings.cache_clear()
    try:
        assert cloud_main(["migrate"]) == 2
    finally:
        get_settings.cache_clear()

    assert capsys.readouterr().err == (
        "cloud migrate: CAREBRIDGE_MQTT_PORT='eighty': Input should be a valid integer, unable"
        " to parse string as an integer\n"
    )
