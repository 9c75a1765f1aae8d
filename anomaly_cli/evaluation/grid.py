"""Threshold grids for `adx sweep`, in exact decimal arithmetic.

Floats would print 0.00030000000000000003 and lose the stop value of a range;
Decimal keeps every value as the user typed it.
"""

from __future__ import annotations

import re
import sys
from decimal import Decimal, InvalidOperation

from anomaly_cli.errors import AdxUserError

MAX_POINTS = 1000
# Scores are float64: a threshold beyond its range would compare as infinity.
_LARGEST = Decimal(sys.float_info.max)
FORMS = "a:b, a:b:step or [t1,t2,...], e.g. threshold=0.0005:0.003"


def parse_grid(text: str | None, steps: int = 11) -> list[Decimal]:
    """Thresholds described by `text`: 'a:b' (steps points, both ends),
    'a:b:step' (b included when it lands on the grid) or '[t1,t2,...]'."""
    raw = "" if text is None else str(text).strip()
    if not raw:
        raise AdxUserError(f"sweep needs thresholds: write {FORMS}")
    if raw.startswith("[") or raw.endswith("]"):
        return _explicit(raw)
    parts = raw.split(":")
    if len(parts) == 2:
        return _evenly(raw, *(_number(p, raw) for p in parts), steps)
    if len(parts) == 3:
        return _stepped(raw, *(_number(p, raw) for p in parts))
    raise AdxUserError(f"threshold={raw} is not a grid; write {FORMS}")


def _number(token: str, raw: str) -> Decimal:
    token = token.strip()
    try:
        value = Decimal(token)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not token:
        raise AdxUserError(f"threshold={raw}: '{token}' is not a number; write {FORMS}")
    if abs(value) > _LARGEST:
        raise AdxUserError(f"threshold={raw}: '{token}' is beyond what a score can reach")
    return value


def _explicit(raw: str) -> list[Decimal]:
    if not (raw.startswith("[") and raw.endswith("]")):
        raise AdxUserError(f"threshold={raw}: unbalanced brackets; write {FORMS}")
    tokens = [t for t in re.split(r"\s*,\s*", raw[1:-1].strip()) if t]
    if not tokens:
        raise AdxUserError(f"threshold={raw} lists no thresholds; write {FORMS}")
    values = [_number(t, raw) for t in tokens]
    if len(set(values)) != len(values):
        raise AdxUserError(f"threshold={raw} lists a threshold twice")
    return values


def _evenly(raw: str, start: Decimal, stop: Decimal, steps: int) -> list[Decimal]:
    _check_order(raw, start, stop)
    if not 2 <= steps <= MAX_POINTS:
        raise AdxUserError(f"threshold.steps={steps} must lie between 2 and {MAX_POINTS}")
    step = (stop - start) / (steps - 1)
    places = max(_places(start), _places(stop)) + 6
    middle = [_tidy(start + step * i, places) for i in range(1, steps - 1)]
    return [start, *middle, stop]


def _stepped(raw: str, start: Decimal, stop: Decimal, step: Decimal) -> list[Decimal]:
    _check_order(raw, start, stop)
    if step <= 0:
        raise AdxUserError(f"threshold={raw}: the step must be positive")
    count = int((stop - start) / step) + 1
    if count > MAX_POINTS:
        raise AdxUserError(f"threshold={raw} gives {count} thresholds; at most {MAX_POINTS}")
    values = [start, *((start + step * i).normalize() for i in range(1, count))]
    if values[-1] == stop:
        values[-1] = stop  # print the stop as typed
    return values


def _check_order(raw: str, start: Decimal, stop: Decimal) -> None:
    if not start < stop:
        raise AdxUserError(f"threshold={raw}: the start must be below the stop (write low:high)")


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _tidy(value: Decimal, places: int) -> Decimal:
    """Cut a non-terminating quotient (0:1 in 4 steps) to a printable length."""
    try:
        return value.quantize(Decimal(1).scaleb(-places)).normalize()
    except InvalidOperation:  # more places than Decimal's 28 digits hold (1e-204:1)
        return value.normalize()


def format_threshold(value: Decimal) -> str:
    """Plain notation, never exponent form: 0.0005, not 5E-4."""
    return format(value, "f")
