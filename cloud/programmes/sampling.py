"""The reproducible 10 % sample for pathway compliance (路径达标率抽查). Pure.

The population is sorted before drawing, so the order the database returns rows in cannot
change the sample; the draw uses Python's Mersenne Twister seeded with the recorded seed
(`random.Random(seed).sample`), whose sequence Python keeps stable across versions for
integer seeds. Anyone with the population and the seed redraws the same sample.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Sequence

DEFAULT_FRACTION = 0.10


def sample_size(population: int, fraction: float = DEFAULT_FRACTION) -> int:
    """At least one case when there is anyone to check; ceil so 10 % of 15 checks 2."""
    if population <= 0:
        return 0
    return min(population, max(1, math.ceil(population * fraction - 1e-9)))


def new_seed() -> int:
    return secrets.randbits(62)


def draw(population: Sequence[str], seed: int, fraction: float = DEFAULT_FRACTION) -> list[str]:
    if len(set(population)) != len(population):
        raise ValueError("the population lists a case twice")
    ordered = sorted(population)
    picked = random.Random(seed).sample(ordered, sample_size(len(ordered), fraction))
    return sorted(picked)
