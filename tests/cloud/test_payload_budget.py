"""The ingest worker's byte budget: paho's thread waits while it is spent, one message
larger than the whole budget still passes alone, and stopping releases a waiting thread."""

from __future__ import annotations

import threading

import pytest

from cloud.ingest.payload_budget import PayloadBudget


def _taking(budget: PayloadBudget, size: int) -> tuple[threading.Thread, threading.Event]:
    taken = threading.Event()

    def take() -> None:
        budget.take(size)
        taken.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, taken


def test_a_take_that_would_overspend_waits_until_bytes_are_given_back():
    budget = PayloadBudget(100)
    budget.take(60)
    thread, taken = _taking(budget, 50)
    assert not taken.wait(0.2), "took 110 bytes of a 100-byte budget"
    budget.give_back(60)
    assert taken.wait(2)
    thread.join(2)
    assert budget.held_bytes == 50
    assert budget.peak_bytes == 60


def test_what_fits_is_taken_at_once():
    budget = PayloadBudget(100)
    budget.take(40)
    budget.take(60)
    assert budget.held_bytes == 100


def test_a_message_larger_than_the_budget_passes_alone():
    budget = PayloadBudget(100)
    budget.take(500)
    assert budget.held_bytes == 500
    thread, taken = _taking(budget, 1)
    assert not taken.wait(0.2), "a second message joined an over-budget one"
    budget.give_back(500)
    assert taken.wait(2)
    thread.join(2)


def test_closing_releases_a_waiting_thread():
    budget = PayloadBudget(10)
    budget.take(10)
    thread, taken = _taking(budget, 5)
    assert not taken.wait(0.2)
    budget.close()
    assert taken.wait(2)
    thread.join(2)


def test_giving_back_more_than_is_held_is_a_bug_and_says_so():
    budget = PayloadBudget(10)
    budget.take(3)
    with pytest.raises(ValueError, match="only 3 are held"):
        budget.give_back(4)


def test_a_budget_needs_a_positive_limit():
    with pytest.raises(ValueError):
        PayloadBudget(0)
