"""One way to declare and validate model configurations.

Every model's config is a frozen dataclass (design rule 1). Its numeric and string fields declare
their valid range beside their default, through the field's metadata::

    @dataclass(frozen=True)
    class ItemKNNConfig(Config):
        n_neighbors: int | None = field(default=100, metadata=at_least(1, integer=True, none=True))
        shrinkage: float = field(default=0.0, metadata=at_least(0.0))

and :class:`Config` checks them all at construction, so ``ItemKNN(n_neighbors=-5)`` fails at once
with ``ItemKNNConfig.n_neighbors must be an integer >= 1 or None, got -5`` instead of fitting and
reporting metrics. A config with checks that span several fields adds them in ``_check()``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_KEY = "check"


@dataclass(frozen=True)
class Check:
    """A field's valid values: an interval (numbers) or a set of choices (strings).

    Attributes
    ----------
    low, high : float or None
        Bounds (None = unbounded).
    low_open, high_open : bool
        Whether the bound itself is excluded.
    integer : bool
        The value must be an integer (``bool`` is refused).
    none : bool
        None is accepted too.
    choices : tuple or None
        The accepted values (strings); replaces the interval.
    each : bool
        The value is a tuple / list (e.g. hidden widths) and the rule holds for every element.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    none: bool = False
    choices: tuple | None = None
    each: bool = False

    def describe(self) -> str:
        """The rule in words, e.g. ``an integer >= 1 or None``."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            kind = "an integer" if self.integer else "a finite number"
            parts = []
            if self.low is not None:
                parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
            if self.high is not None:
                parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
            text = kind + (" " + " and ".join(parts) if parts else "")
        if self.each:
            text = "a tuple of " + text.replace("an integer", "integers").replace("a finite number", "finite numbers")
        return text + (" or None" if self.none else "")

    def ok(self, value: Any) -> bool:
        """Whether ``value`` satisfies the rule."""
        if value is None:
            return self.none
        if self.each:
            one = dataclasses.replace(self, each=False, none=False)
            return isinstance(value, (tuple, list)) and all(one.ok(v) for v in value)
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not float(value).is_integer():
            return False
        v = float(value)
        if not math.isfinite(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return not (self.high is not None and (v >= self.high if self.high_open else v > self.high))


def at_least(low: float, *, integer: bool = False, none: bool = False, each: bool = False) -> dict[str, Check]:
    """Field metadata: ``value >= low`` (``each``: for every element of a tuple value)."""
    return {_KEY: Check(low=low, integer=integer, none=none, each=each)}


def greater_than(low: float, *, integer: bool = False, none: bool = False) -> dict[str, Check]:
    """Field metadata: ``value > low``."""
    return {_KEY: Check(low=low, low_open=True, integer=integer, none=none)}


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False,
            integer: bool = False, none: bool = False) -> dict[str, Check]:
    """Field metadata: ``low <= value <= high`` (``*_open`` excludes a bound)."""
    return {_KEY: Check(low=low, high=high, low_open=low_open, high_open=high_open, integer=integer, none=none)}


def one_of(*choices: Any, none: bool = False) -> dict[str, Check]:
    """Field metadata: ``value in choices``."""
    return {_KEY: Check(choices=tuple(choices), none=none)}


def check_config(config: Any) -> None:
    """Validate every field of the dataclass ``config`` that declares a :class:`Check`.

    Raises
    ------
    ValueError
        Naming the config class, the field, the valid range and the value given.
    """
    name = type(config).__name__
    for f in dataclasses.fields(config):
        rule = f.metadata.get(_KEY) if isinstance(f.metadata, Mapping) else None
        if rule is None:
            continue
        value = getattr(config, f.name)
        if not rule.ok(value):
            raise ValueError(f"{name}.{f.name} must be {rule.describe()}, got {value!r}")


@dataclass(frozen=True)
class Config:
    """Base of every model config: validates the declared ranges at construction.

    Subclasses are frozen dataclasses; they add cross-field checks by overriding :meth:`_check`.
    """

    def __post_init__(self) -> None:
        check_config(self)
        self._check()

    def _check(self) -> None:
        """Checks spanning several fields (raise ``ValueError`` naming them); none by default."""


def build_config(owner: str, cls: type, config: Any = None, overrides: Mapping[str, Any] | None = None) -> Any:
    """The config an estimator (or policy) ``__init__`` stores: ``config`` or ``cls(**overrides)``.

    Parameters
    ----------
    owner : str
        The estimator's class name (for the messages).
    cls : type
        Its config dataclass.
    config : instance of ``cls``, optional
        A ready config; ``overrides`` then replace some of its fields.
    overrides : mapping, optional
        Config fields as keyword arguments.

    Returns
    -------
    An instance of ``cls`` (validated by its ``__post_init__``).

    Raises
    ------
    TypeError
        An unknown keyword (listing the valid options) or a config of another class.
    ValueError
        A value out of its declared range.
    """
    overrides = dict(overrides or {})
    if config is None:
        try:
            config = cls(**overrides)
        except TypeError as e:
            fields = [f.name for f in dataclasses.fields(cls)]
            raise TypeError(f"{owner}: {e}; valid options: {fields}") from None
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    if not isinstance(config, cls):
        raise TypeError(f"{owner} expects a {cls.__name__}, got {type(config).__name__}")
    return config
