"""The process-wide GC tuning: rarer young collections, start-up objects frozen, cycles
still freed without anyone calling gc.collect()."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import gc, weakref
    from protocols.process import GEN0_THRESHOLD, tune_garbage_collector

    before = gc.get_freeze_count()
    tune_garbage_collector()
    assert gc.get_threshold()[0] == GEN0_THRESHOLD, gc.get_threshold()
    assert gc.get_freeze_count() > before

    class Node:
        pass

    freed = []
    a, b = Node(), Node()
    a.other, b.other = b, a
    weakref.finalize(a, freed.append, "a")
    del a, b
    keep = [[] for _ in range(3 * GEN0_THRESHOLD)]  # allocations that trigger collections
    assert freed == ["a"], "a reference cycle survived"
    print("ok")
    """
)


def test_tuned_process_still_frees_cycles() -> None:
    # In a child process: the tuning is process-wide and must not leak into the test run.
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
