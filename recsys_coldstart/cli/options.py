"""``--set key=value``: any config field of a model from the command line.

Values are parsed by the field's declared type (``int``, ``float``, ``bool``, ``str``, optional
``None``, tuples as comma-separated values); an unknown key is a one-line error that lists the
valid keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any

import typer

from recsys_coldstart.exceptions import DataError

SET_OPT = typer.Option([], "--set", help="Config field of the model, key=value (repeatable), e.g. --set "
                       "cl_weight=0.05 --set n_epochs=50; an unknown key lists the valid ones.")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def config_fields(config_class: type) -> dict[str, Any]:
    """``name -> type`` of a config dataclass's fields (string annotations resolved)."""
    hints = typing.get_type_hints(config_class)
    return {f.name: hints.get(f.name, str) for f in dataclasses.fields(config_class)}


def parse_value(text: str, typ: Any, key: str) -> Any:
    """Parse ``text`` as a value of type ``typ`` (the field ``key`` names it in errors).

    Parameters
    ----------
    text : str
    typ : type or typing annotation
        E.g. ``int``, ``float | None``, ``tuple[int, ...]``, ``bool``.
    key : str

    Returns
    -------
    Any
    """
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null", ""):
            return None
        rest = [a for a in args if a is not type(None)]
        errors = []
        for a in rest:
            try:
                return parse_value(text, a, key)
            except DataError as e:
                errors.append(str(e))
        raise DataError(errors[0] if errors else f"--set {key}={text}: cannot parse")
    if origin in (tuple, list):
        elem = args[0] if args else str
        parts = [p for p in text.replace(" ", "").split(",") if p != ""]
        vals = [parse_value(p, elem, key) for p in parts]
        return tuple(vals) if origin is tuple else vals
    if typ is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise DataError(f"--set {key}={text}: expected true or false")
    if typ is int:
        try:
            return int(text)
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                f = float("nan")
            if f.is_integer():
                return int(f)
            raise DataError(f"--set {key}={text}: expected an integer") from None
    if typ is float:
        try:
            return float(text)
        except ValueError:
            raise DataError(f"--set {key}={text}: expected a number") from None
    if typ is str or typ is Any:
        return text
    try:
        return typ(text)
    except Exception:  # noqa: BLE001 - any constructor failure is a parse failure
        raise DataError(f"--set {key}={text}: cannot parse as {getattr(typ, '__name__', typ)}") from None


def parse_set(items: Iterable[str], config_class: type, *, what: str = "model",
              skip: Iterable[str] = ()) -> dict[str, Any]:
    """Parse ``--set key=value`` items against ``config_class``'s fields.

    Parameters
    ----------
    items : iterable of str
        ``"key=value"`` strings.
    config_class : type
        A config dataclass.
    what : str
        Names the model in errors.
    skip : iterable of str
        Fields the command sets itself (listed as invalid here).

    Returns
    -------
    dict
        ``field -> parsed value``.

    Raises
    ------
    DataError
        A malformed item, an unknown key (the message lists the valid keys) or a bad value.
    """
    fields = config_fields(config_class)
    for name in skip:
        fields.pop(name, None)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise DataError(f"--set {item!r}: expected key=value")
        if key not in fields:
            raise DataError(f"--set {key}: unknown {what} config key; valid keys: {', '.join(sorted(fields))}")
        out[key] = parse_value(text.strip(), fields[key], key)
    return out
