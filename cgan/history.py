"""history.jsonl: one JSON object per complete epoch, in order (the format is in cgan.runs).

A reader lists the records up to the first line that is not one (torn by a crash, foreign or out
of order); a rewrite refuses a file with such a line, since it would drop what follows it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from cgan.files import HISTORY_CAP, loads_json, read_regular
from cgan.messages import RunError


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    d_loss: float
    g_loss: float
    epoch_seconds: float
    wall_seconds: float
    finished_at: float
    metrics: dict | None = None

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        if data["metrics"] is None:
            del data["metrics"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> EpochRecord:
        """The record in a history line; ValueError (or KeyError, TypeError) when it is not one:
        an epoch that is not a whole number from 1, times that are not finite and >= 0, metrics
        that are not an object of bounded depth. Losses may be anything a float holds (a diverged
        run's are inf or nan)."""
        epoch = data["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise ValueError(f"epoch {epoch!r}")
        epoch_seconds = _seconds(data["epoch_seconds"])
        metrics = data.get("metrics")
        if metrics is not None and not (isinstance(metrics, dict) and _shallow(metrics, METRICS_DEPTH)):
            raise ValueError("metrics")
        return cls(
            epoch=epoch,
            d_loss=_float(data["d_loss"]),
            g_loss=_float(data["g_loss"]),
            epoch_seconds=epoch_seconds,
            wall_seconds=_seconds(data.get("wall_seconds", epoch_seconds)),
            finished_at=_seconds(data.get("finished_at", 0.0)),
            metrics=metrics,
        )


METRICS_DEPTH = 4  # {"averaged": {"diversity": [...]}} is 3 levels deep


def _float(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _seconds(value) -> float:
    seconds = _float(value)
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"{value!r} is not a time")
    return seconds


def _shallow(value, levels: int) -> bool:
    """Whether lists and objects nest at most `levels` deep in `value`."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        return True
    return levels > 0 and all(_shallow(item, levels - 1) for item in value)


def read_history(path: Path) -> tuple[list[EpochRecord], bool]:
    """(the records of history.jsonl at `path` up to the first bad line, whether every line was
    good); ([], True) when there is no such file."""
    try:
        text = read_regular(path, HISTORY_CAP).decode("utf-8")
    except FileNotFoundError:
        return [], True
    except IsADirectoryError:
        raise RunError(f"{path}: a folder, expected a file (damaged run)") from None
    except UnicodeDecodeError as exc:
        raise RunError(
            f"{path}: damaged, not text (byte {exc.start} is not UTF-8)"
        ) from None
    except OSError as exc:
        raise RunError(f"{path}: unreadable ({exc.strerror or exc})") from None
    records: list[EpochRecord] = []
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        try:
            record = EpochRecord.from_json(loads_json(line, path))
        except (ValueError, KeyError, TypeError, OverflowError):
            break
        if record.epoch != (records[-1].epoch if records else 0) + 1:
            break  # epochs count 1, 2, 3, ...
        records.append(record)
    return records, len(records) == len(lines)


def history_bytes(records: list[EpochRecord]) -> bytes:
    """The text of a history.jsonl holding `records`."""
    return "".join(json.dumps(r.to_json()) + "\n" for r in records).encode()
