"""`python -m edge_agent` with a wrong setting: the variable, its value and the rule; exit 2."""

from __future__ import annotations

from edge_agent.__main__ import main as edge_main


def test_the_edge_agent_says_which_variable_is_wrong_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("CAREBRIDGE_EDGE_MODE", "ward")

    assert edge_main(["status"]) == 2

    assert capsys.readouterr().err == (
        "CAREBRIDGE_EDGE_MODE='ward': String should match pattern '^(centre|home)$'\n"
    )
