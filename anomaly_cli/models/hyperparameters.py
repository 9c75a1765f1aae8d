"""Hyperparameters declared once per model: default, check and stored attribute.

A model lists its settings in a class-level `hyperparameters` dict, e.g.

    hyperparameters = {
        "latent_dim": Hyperparameter(16, integer(minimum=1)),
        "units": Hyperparameter([256], widths()),
    }

and the base class takes each from the config (or its default), checks it,
stores it as an attribute and writes it back in `get_config`. The model's
YAML in configs/model/ lists the same keys (a test holds the two together),
so a setting is written in the declaration and in the YAML, nowhere else.

A check takes the key and the raw value and returns the value to store, or
raises AdxUserError with one line naming `model.<key>=<value>`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from anomaly_cli.errors import AdxUserError

Check = Callable[[str, Any], Any]


def _unchecked(key: str, value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Hyperparameter:
    """One setting of a model: its default, its check, and the attribute that
    holds it when that differs from the key (keras.Model already has a `loss`)."""

    default: Any
    check: Check = _unchecked
    attribute: str | None = None

    def attribute_for(self, key: str) -> str:
        return self.attribute or key


def integer(minimum: int, hint: str = "") -> Check:
    """A whole number >= minimum (true/false refused: YAML's booleans are ints to Python)."""

    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise AdxUserError(f"model.{key}={value} must be a whole number >= {minimum}{hint}")
        if int(value) < minimum:
            raise AdxUserError(f"model.{key}={value} must be >= {minimum}{hint}")
        return int(value)

    return check


def number(
    low: float,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> Check:
    """A number in an interval, e.g. number(0, 1, high_open=True) for [0, 1)."""
    if high is not None:
        bounds = (
            f"must lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        )
    elif low_open:
        bounds = "must be positive" if low == 0 else f"must be > {low:g}"
    else:
        bounds = f"must be >= {low:g}"

    def check(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AdxUserError(f"model.{key}={value} must be a number that {bounds[5:]}{hint}")
        inside = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high)
        )
        if not inside:  # also refuses nan, which compares false with everything
            raise AdxUserError(f"model.{key}={value} {bounds}{hint}")
        return float(value)

    return check


def choice(options: Sequence[str]) -> Check:
    def check(key: str, value: Any) -> str:
        if value not in options:
            raise AdxUserError(f"model.{key}={value}; choose one of: {', '.join(options)}")
        return str(value)

    return check


def flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AdxUserError(f"model.{key}={value} must be true or false")
    return value


def widths(non_empty: bool = True) -> Check:
    """Layer widths: a list of whole numbers >= 1, one per layer."""

    def check(key: str, value: Any) -> list[int]:
        if isinstance(value, int | str) or value is None or (non_empty and not len(value)):
            wanted = "a non-empty list, e.g. [64, 32]" if non_empty else "a list, [] for none"
            raise AdxUserError(f"model.{key}={value} must be {wanted}")
        ints = [int(v) for v in value]
        if any(v < 1 for v in ints):
            raise AdxUserError(f"model.{key}={ints} must all be >= 1")
        return ints

    return check


def optional(inner: Check, hint: str = "") -> Check:
    """null, or a value `inner` accepts; `hint` says what null means."""

    def check(key: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            return inner(key, value)
        except AdxUserError as error:
            raise AdxUserError(f"{error}{hint}") from None

    return check


def width_or_widths(key: str, value: Any) -> int | list[int]:
    """Conv filters: one int (the first layer's width, doubled per layer) or a
    list with each layer's width."""
    if isinstance(value, int) and not isinstance(value, bool):
        return integer(minimum=1)(key, value)
    return widths()(key, value)


def conv_stack(
    filters: int, latent_dim: int, units: list[int] | None = None
) -> dict[str, Hyperparameter]:
    """The settings of the strided conv encoder and decoder that conv_ae, vae,
    iaead and ganomaly share, with each model's defaults; `units` None: no
    dense layers between the conv stack and the latent."""
    stack = {
        "num_hidden_layers": Hyperparameter(3, integer(minimum=1)),
        "filters": Hyperparameter(filters, width_or_widths),
    }
    if units is not None:
        stack["units"] = Hyperparameter(units, widths(non_empty=False))
    stack["latent_dim"] = Hyperparameter(latent_dim, integer(minimum=1))
    return stack
