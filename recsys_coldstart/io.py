"""Save and load fitted models without pickle.

A saved model is a folder with

- ``config.json``: ``{"format": 1, "class": "recsys_coldstart.<module>:<Class>", "config": {...},
  "meta": {...}}``
- ``arrays.npz``: every fitted numpy array (attributes ending in ``_``), read with
  ``allow_pickle=False``; scipy CSR attributes are stored as their three arrays + shape
- optionally ``weights.pt``: a torch ``state_dict`` written by the model's own
  ``_save_extra`` and read back with ``torch.load(weights_only=True)``.

Loading only ever instantiates a subclass of :class:`recsys_coldstart.base.BaseRecommender`
defined inside the ``recsys_coldstart`` package, so a file from elsewhere can never run code.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.exceptions import DataError

FORMAT_VERSION = 1
_CSR_SUFFIXES = ("__csr_data", "__csr_indices", "__csr_indptr", "__csr_shape")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"cannot store {type(value).__name__} in config.json")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A frozen dataclass config as a JSON-able dict (``{}`` for None)."""
    return {} if config is None else _jsonable(config)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (possibly nested) frozen dataclass config from :func:`config_to_dict` output."""
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, val in data.items():
        if key not in fields:
            raise DataError(f"config field {key!r} is not an option of {cls.__name__}")
        ftype = fields[key].type
        sub = _dataclass_type(cls, key, ftype)
        if sub is not None and isinstance(val, dict):
            val = config_from_dict(sub, val)
        elif isinstance(val, list):
            val = tuple(val)
        kwargs[key] = val
    return cls(**kwargs)


def _dataclass_type(cls: type, name: str, ftype: Any) -> type | None:
    import typing

    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        return None
    t = hints.get(name)
    return t if isinstance(t, type) and dataclasses.is_dataclass(t) else None


def fitted_arrays(model: Any) -> dict[str, np.ndarray]:
    """Fitted state of ``model``: attributes ending in ``_`` that are arrays, CSR matrices or scalars."""
    out: dict[str, np.ndarray] = {}
    for name, value in vars(model).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise TypeError(f"{name} is an object array; store numbers or strings only")
            out[name] = value
        elif sp.issparse(value):
            m = sp.csr_matrix(value)
            out[name + "__csr_data"] = m.data
            out[name + "__csr_indices"] = m.indices
            out[name + "__csr_indptr"] = m.indptr
            out[name + "__csr_shape"] = np.asarray(m.shape, np.int64)
        elif isinstance(value, (int, float, np.integer, np.floating, bool, np.bool_)):
            out[name] = np.asarray(value)
    return out


def save_model(model: Any, path: str | os.PathLike, *, meta: dict[str, Any] | None = None) -> Path:
    """Save a fitted model to folder ``path`` (created); returns the folder.

    Parameters
    ----------
    model : BaseRecommender
        A fitted model of this package.
    path : str or PathLike
        Output folder.
    meta : dict, optional
        Extra JSON-able information (dataset, split, command, metrics).
    """
    cls = type(model)
    if not cls.__module__.startswith("recsys_coldstart."):
        raise TypeError(f"only recsys_coldstart models can be saved, not {cls.__module__}.{cls.__name__}")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = fitted_arrays(model)
    if hasattr(model, "_save_extra"):
        model._save_extra(folder)
    doc = {"format": FORMAT_VERSION, "class": f"{cls.__module__}:{cls.__qualname__}",
           "config": config_to_dict(getattr(model, "config", None)), "meta": _jsonable(meta or {})}
    (folder / "config.json").write_text(json.dumps(doc, indent=2))
    np.savez(folder / "arrays.npz", **arrays)
    return folder


def _resolve_class(spec: str, path: Path) -> type:
    from recsys_coldstart.base import BaseRecommender

    module, _, qualname = spec.partition(":")
    if not module.startswith("recsys_coldstart.") or not qualname.isidentifier():
        raise DataError(f"{path}: class {spec!r} is not a recsys_coldstart model")
    try:
        obj = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError) as e:
        raise DataError(f"{path}: unknown model class {spec!r} ({e})") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseRecommender)):
        raise DataError(f"{path}: {spec!r} is not a model class")
    return obj


def read_model_config(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``config.json`` of a saved model folder."""
    folder = Path(path)
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise DataError(f"{folder}: not a saved model (no config.json)")
    try:
        doc = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{cfg_file}: invalid JSON ({e})") from None
    if doc.get("format") != FORMAT_VERSION:
        raise DataError(f"{cfg_file}: unsupported format {doc.get('format')!r}")
    return doc


def load_model(path: str | os.PathLike) -> Any:
    """Load a model saved by :func:`save_model`; never unpickles anything.

    Returns
    -------
    BaseRecommender
        With its config and every fitted array restored.
    """
    folder = Path(path)
    doc = read_model_config(folder)
    cls = _resolve_class(doc["class"], folder)
    cfg_cls = getattr(cls, "config_class", None)
    model = cls(config_from_dict(cfg_cls, doc.get("config", {}))) if cfg_cls is not None else cls()
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    csr_names = {k[: -len(s)] for k in data for s in _CSR_SUFFIXES if k.endswith(s)}
    for name in csr_names:
        shape = tuple(int(x) for x in data.pop(name + "__csr_shape"))
        m = sp.csr_matrix((data.pop(name + "__csr_data"), data.pop(name + "__csr_indices"),
                           data.pop(name + "__csr_indptr")), shape=shape)
        setattr(model, name, m)
    for name, arr in data.items():
        setattr(model, name, arr.item() if arr.ndim == 0 else arr)
    if hasattr(model, "_load_extra"):
        model._load_extra(folder)
    model.meta_ = doc.get("meta", {})
    return model
