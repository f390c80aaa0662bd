"""Which epochs' weights a run keeps (``--keep``)."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class KeepPolicy:
    """Which epochs keep their weights: all, or those in `ranges` or a multiple of a step in
    `every`; the final epoch always."""

    keep_all: bool = True
    ranges: tuple = ()  # inclusive (first, last) epoch ranges, sorted and disjoint
    every: tuple = ()

    def keeps(self, epoch: int, final_epoch: int) -> bool:
        if self.keep_all or epoch == final_epoch or any(epoch % step == 0 for step in self.every):
            return True
        place = bisect.bisect_right(self.ranges, (epoch, math.inf))
        return place > 0 and self.ranges[place - 1][0] <= epoch <= self.ranges[place - 1][1]


def parse_keep(spec: str) -> KeepPolicy:
    """'all' | 'last' | comma list of N, A-B, everyK (e.g. '1-10,every5,20,50,75').

    Ranges are held as their ends, never spelled out, so 1-10000000000 costs a few bytes."""
    spec = spec.strip().lower()
    if spec in ("", "all"):
        return KeepPolicy(keep_all=True)
    ranges: list[tuple[int, int]] = []
    every: list[int] = []
    for token in spec.split(","):
        token = token.strip()
        try:
            if token == "last":
                continue
            if token.startswith("every"):
                step = int(token[5:])
                if step < 1:
                    raise ValueError
                every.append(step)
            elif "-" in token:
                lo, hi = (int(t) for t in token.split("-", 1))
                if lo < 1 or hi < lo:
                    raise ValueError
                ranges.append((lo, hi))
            else:
                value = int(token)
                if value < 1:
                    raise ValueError
                ranges.append((value, value))
        except ValueError:
            raise ValueError(
                f"bad keep token {token[:40]!r}: use all, last, N, A-B or everyK (e.g. 1-10,every5,75)"
            ) from None
    return KeepPolicy(keep_all=False, ranges=_merged(ranges), every=tuple(sorted(set(every))))


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Inclusive ranges, sorted, with overlapping or touching ones joined."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)
