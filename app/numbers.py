"""How the app writes a share on screen: one convention for every page.

    percent(0.62)   -> "62%"
    percent(0.999)  -> "99%+"    never a rounded-up, overconfident "100%"
    percent(0.001)  -> "<1%"     never a rounded-down "0%" for something that happens
"""

from __future__ import annotations

import math

NEAR_CERTAIN = 0.995  # from here on a share would round to 100 %
NEAR_NEVER = 0.005  # below this it would round to 0 %


def percent(share: float) -> str:
    """A share in [0, 1] as "N%", "99%+" (0.995 and above) or "<1%" (below 0.005)."""
    share = float(share)
    if not math.isfinite(share) or not 0.0 <= share <= 1.0:
        raise ValueError(f"a share is between 0 and 1, got {share}")
    if share >= NEAR_CERTAIN:
        return "99%+"
    if share < NEAR_NEVER:
        return "<1%"
    # Between the two, rounding gives 1-99 (half-way cases at the edges stay inside).
    return f"{min(99, max(1, round(share * 100)))}%"
