"""Pass rates with an honest uncertainty: the Wilson score interval.

For ``k`` passes in ``n`` trials, p = k/n and z = 1.96 (95 %):

    centre = (p + z²/2n) / (1 + z²/n)
    half   = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)

(Wilson, "Probable inference, the law of succession, and statistical inference",
JASA 22, 1927.) Unlike the normal approximation it stays inside [0, 1] and is
sensible for 0/n and n/n, which is what a handful of samples per case gives.
"""

from __future__ import annotations

import math

Z_95 = 1.96


def wilson_interval(passed: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The interval for ``passed`` of ``total``; (0, 1) when nothing was counted."""
    if total <= 0:
        return 0.0, 1.0
    if not 0 <= passed <= total:
        raise ValueError("passed must be between 0 and total")
    p = passed / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)
