"""Save and load fitted models without pickle, atomically.

A saved model is a folder with

- ``config.json``: ``{"format": 2, "class": "recsys_coldstart.<module>:<Class>", "config": {...},
  "meta": {...}}``
- ``arrays.npz``: every fitted numpy array (attributes ending in ``_``), read with
  ``allow_pickle=False``; scipy CSR attributes are stored as their three arrays + shape, and a
  dict of 1-d arrays (the training history ``history_``) as one entry per key
- optionally ``weights.pt``: a torch ``state_dict`` written by the model's own
  ``_save_extra`` and read back with ``torch.load(weights_only=True)``
- ``manifest.json``, written last: the size and SHA-256 of every other file.

Saving writes the whole folder beside the target (``.<name>.tmp-<pid>-<random>``), fsyncs it and
swaps it into place with one atomic rename (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two
renames through a ``.<name>.old-<pid>-<random>`` backup), so a save killed at any instant leaves
either the old model or the new one. Leftovers of a killed save are removed by the next save of
the same folder and never read by :func:`load_model`, except that when the folder itself is
missing and a backup of it is complete (a save killed between its two renames), the backup is
loaded with a warning.

Loading checks everything before any model code runs and raises
:class:`~recsys_coldstart.exceptions.ModelFileError` (a ``DataError``: exit code 2 in the CLI)
with one line naming the file and what is wrong: files against the manifest, the JSON document's
shape, the config's keys and types against the config dataclass, fitted-array names (only
``name_`` attributes the class does not define: never a method, property or dunder), dtypes,
finiteness and CSR structure, and the torch weights. Only a subclass of
:class:`recsys_coldstart.base.BaseRecommender` defined inside ``recsys_coldstart`` is ever
instantiated, so a file from elsewhere can never run code.

Length: the whole on-disk format (typed config, arrays, weights, manifest, atomic swap, the one-
line load errors) lives in one module on purpose: it is the only place outside cli allowed to turn
a saved class name into a class, and readers audit the no-pickle rules in one file.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import errno
import hashlib
import importlib
import json
import logging
import os
import re
import secrets
import shutil
import sys
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.exceptions import DataError, ModelFileError, TrainingDivergedError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
ARRAYS_FILE = "arrays.npz"
WEIGHTS_FILE = "weights.pt"
MANIFEST_FILE = "manifest.json"
_READABLE_FORMATS = (1, 2)  # format 1: written before the manifest existed (loaded with a warning)
_DOC_KEYS = ("format", "class", "config", "meta")
_CSR_SUFFIXES = ("__csr_data", "__csr_indices", "__csr_indptr", "__csr_shape")
_DICT_SEP = "__dict__"
_TMP_TAG, _OLD_TAG = ".tmp-", ".old-"
_FITTED_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*_")
_DICT_KEY = re.compile(r"[A-Za-z0-9_@.+\-]+")
_MODULE_PART = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_RESERVED = frozenset({"meta_"})  # restored from config.json, never from arrays.npz
_ARRAY_KINDS = "biufcUS"  # numbers, bools and fixed-width strings; no objects or structured dtypes
# Swap folders with one atomic rename where the OS can (tests switch it off to cover the fallback).
_USE_EXCHANGE = True


# ---------------------------------------------------------------------------------------- config
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
    """A frozen dataclass config as a JSON-able dict.

    Parameters
    ----------
    config : dataclass instance or None

    Returns
    -------
    dict
        Field name -> JSON value (nested dataclasses as dicts, tuples as lists); ``{}`` for None.
    """
    return {} if config is None else _jsonable(config)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (possibly nested) frozen dataclass config from :func:`config_to_dict` output.

    Every value is checked against the field's annotation (``int``, ``float``, ``str``, ``bool``,
    ``tuple[...]``, ``list[...]``, ``dict[str, ...]``, ``Literal``, ``X | None``, nested
    dataclasses); JSON lists become tuples where the field is a tuple.

    Parameters
    ----------
    cls : type
        The config dataclass.
    data : dict
        One value for every field of ``cls`` (a saved config is complete: a missing key would
        silently take a default that may have changed since).

    Returns
    -------
    An instance of ``cls``.

    Raises
    ------
    DataError
        Naming the missing keys, an unknown key, or a key whose value has the wrong type or range.
    """
    return _build_config(cls, data, "")


def _build_config(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise DataError(f"config{' key ' + repr(prefix[:-1]) if prefix else ''} must be an object, "
                        f"got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise DataError(f"config key {prefix + unknown[0]!r} is not an option of {cls.__name__} "
                        f"(options: {', '.join(fields)})")
    missing = [k for k in fields if k not in data]
    if missing:
        raise DataError(f"config keys missing for {cls.__name__}: {', '.join(prefix + k for k in missing)} "
                        "(saved by another version?)")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: check nothing rather than fail
        hints = {}
    kwargs = {key: _coerce(val, hints.get(key, Any), prefix + key) for key, val in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise DataError(f"config: {_one_line(e)}") from None


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against the annotation ``hint`` (lists -> tuples); DataError naming ``key``."""
    ok, out = _match(value, hint, key)
    if not ok:
        raise DataError(f"config key {key!r} must be {_describe(hint)}, got {value!r}")
    return out


def _match(value: Any, hint: Any, key: str) -> tuple[bool, Any]:
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True, value
    if hint is None or hint is type(None):
        return value is None, None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or (hasattr(types, "UnionType") and isinstance(hint, types.UnionType)):
        # a tagged union of nested configs (e.g. StudentConfig.distill): the "kind" key picks the member
        kinds = {getattr(a, "kind", None): a for a in args if isinstance(a, type) and dataclasses.is_dataclass(a)}
        if isinstance(value, dict) and isinstance(value.get("kind"), str) and set(kinds) - {None}:
            return _match(value, kinds[value["kind"]], key) if value["kind"] in kinds else (False, None)
        for arg in sorted(args, key=lambda a: a is not type(None)):
            ok, out = _match(value, arg, key)
            if ok:
                return True, out
        return False, None
    if origin is typing.Literal:
        return any(type(value) is type(a) and value == a for a in args), value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            return False, None
        return True, _build_config(hint, value, key + ".")
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, None
        return True, float(value)
    if hint is str:
        return isinstance(value, str), value
    if origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False, None
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                return False, None
            items = [_match(v, a, key) for v, a in zip(value, args, strict=True)]
        else:
            item = args[0] if args else Any
            items = [_match(v, item, key) for v in value]
        if not all(ok for ok, _ in items):
            return False, None
        outs = [o for _, o in items]
        return True, (list(outs) if origin is list else tuple(outs))
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            return False, None
        vt = args[1] if len(args) == 2 else Any
        items = {k: _match(v, vt, key) for k, v in value.items()}
        if not all(ok for ok, _ in items.values()):
            return False, None
        return True, {k: o for k, (_, o) in items.items()}
    if hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, None
        return True, (tuple(value) if hint is tuple else list(value))
    if hint is dict:
        return isinstance(value, dict), value
    # Any other annotation (a class, a callable): JSON could not have stored such an object.
    return (isinstance(hint, type) and isinstance(value, hint)), value


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or (hasattr(types, "UnionType") and isinstance(hint, types.UnionType)):
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if hint is type(None) or hint is None:
        return "null"
    if origin in (tuple, list, collections.abc.Sequence):
        return "a list" + (f" of {_describe(args[0])}" if args and (len(args) == 1 or args[1] is Ellipsis) else "")
    if isinstance(hint, type):
        return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
                "dict": "an object"}.get(hint.__name__, hint.__name__)
    return str(hint)


# ---------------------------------------------------------------------------------------- arrays
def fitted_arrays(model: Any) -> dict[str, np.ndarray]:
    """Fitted state of ``model`` as named numpy arrays (what ``arrays.npz`` holds).

    Attributes ending in ``_`` (not starting with ``_``) that are numpy arrays, scipy sparse
    matrices (stored as ``name__csr_data/indices/indptr/shape``), numbers, or dicts of 1-d
    numeric arrays such as the training history ``history_`` (stored as ``name__dict__key``).
    Other attributes (strings, lists, ``meta_``) are not fitted state and are left out.

    Parameters
    ----------
    model : BaseRecommender

    Returns
    -------
    dict of str -> np.ndarray

    Raises
    ------
    TypeError
        For an object array (it could only be stored with pickle) or a dict key that cannot name
        an archive entry.
    """
    out: dict[str, np.ndarray] = {}
    for name, value in vars(model).items():
        if not name.endswith("_") or name.startswith("_") or name in _RESERVED:
            continue
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in _ARRAY_KINDS:
                raise TypeError(f"{name} is an array of {value.dtype}; store numbers or strings only")
            out[name] = value
        elif sp.issparse(value):
            m = sp.csr_matrix(value)
            out[name + "__csr_data"] = m.data
            out[name + "__csr_indices"] = m.indices
            out[name + "__csr_indptr"] = m.indptr
            out[name + "__csr_shape"] = np.asarray(m.shape, np.int64)
        elif isinstance(value, (int, float, np.integer, np.floating, bool, np.bool_)):
            out[name] = np.asarray(value)
        elif isinstance(value, collections.abc.Mapping) and value and _is_array_dict(value):
            for key, v in value.items():
                if not isinstance(key, str) or not _DICT_KEY.fullmatch(key):
                    raise TypeError(f"{name}: key {key!r} cannot name an archive entry "
                                    "(letters, digits and _ @ . + - only)")
                out[f"{name}{_DICT_SEP}{key}"] = np.asarray(v)
    return out


def _is_array_dict(d: collections.abc.Mapping) -> bool:
    for v in d.values():
        if isinstance(v, (str, bytes, collections.abc.Mapping)):
            return False
        try:
            a = np.asarray(v)
        except Exception:  # noqa: BLE001 - ragged or odd values: not an array dict
            return False
        if a.ndim != 1 or a.dtype.kind not in "biuf":
            return False
    return True


def _nonfinite(a: np.ndarray) -> int:
    """Number of NaN/inf values in a float array (training logs, ``history*``, may hold NaN: not checked)."""
    return int(a.size - np.count_nonzero(np.isfinite(a))) if a.dtype.kind in "fc" else 0


# ------------------------------------------------------------------------------------------ save
def save_model(model: Any, path: str | os.PathLike, *, meta: dict[str, Any] | None = None) -> Path:
    """Save a fitted model to folder ``path`` atomically; returns the folder.

    The folder is written beside ``path`` and swapped into place in one step, so a save that is
    killed leaves the previous model (or nothing) there, never a mix.

    Parameters
    ----------
    model : BaseRecommender
        A fitted model of this package.
    path : str or PathLike
        Output folder: new, or an earlier saved model (replaced). An existing folder that is not
        a saved model is refused rather than replaced.
    meta : dict, optional
        Extra JSON-able information (dataset, split, command, metrics, a data manifest); read back
        with :func:`read_model_meta`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TrainingDivergedError
        When a fitted float array holds NaN or inf (the training run diverged).
    DataError
        When ``path`` exists and is not a saved model.
    """
    cls = type(model)
    if not cls.__module__.startswith("recsys_coldstart."):
        raise TypeError(f"only recsys_coldstart models can be saved, not {cls.__module__}.{cls.__name__}")
    target = Path(path)
    if target.is_symlink():
        target = target.resolve()  # replace the folder the link points to; the link stays valid
    arrays = fitted_arrays(model)
    for name, a in arrays.items():
        bad = 0 if name.startswith("history") else _nonfinite(a)
        if bad:
            raise TrainingDivergedError(f"refusing to save {cls.__name__}: {name.split('__csr_')[0]} holds {bad} "
                                        "NaN/inf values (the training run diverged)")
    doc = {"format": FORMAT_VERSION, "class": f"{cls.__module__}:{cls.__qualname__}",
           "config": config_to_dict(getattr(model, "config", None)), "meta": _jsonable(meta or {})}
    text = json.dumps(doc, indent=2)
    if target.exists() and not target.is_dir():
        raise DataError(f"{target}: exists and is not a folder; refusing to replace it with a model")
    if target.is_dir() and any(target.iterdir()) and not (
            (target / MANIFEST_FILE).is_file() or (target / CONFIG_FILE).is_file()):
        raise DataError(f"{target}: exists and is not a saved model; refusing to replace it (choose a new folder)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}{_TMP_TAG}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        if hasattr(model, "_save_extra"):
            model._save_extra(tmp)
        np.savez(tmp / ARRAYS_FILE, **arrays)
        (tmp / CONFIG_FILE).write_text(text)
        files = {}
        for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
            _fsync_file(f)
            files[f.relative_to(tmp).as_posix()] = {"size": f.stat().st_size, "sha256": _sha256(f)}
        manifest = tmp / MANIFEST_FILE
        manifest.write_text(json.dumps({"format": FORMAT_VERSION, "files": files}, indent=2))
        _fsync_file(manifest)
        _fsync_dir(tmp)
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_leftovers(target)
    return target


def _swap_into_place(new: Path, target: Path) -> None:
    """Make ``new`` the folder at ``target``; the old ``target`` folder is removed afterwards."""
    parent = target.parent
    if not os.path.lexists(target):
        os.rename(new, target)
        _fsync_dir(parent)
        return
    if _exchange(new, target):
        old = new  # the exchange left the previous model under the temporary name
    else:
        old = parent / f".{target.name}{_OLD_TAG}{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(target, old)
        try:
            os.rename(new, target)
        except BaseException:
            os.rename(old, target)
            raise
    _fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2``); False where unsupported."""
    if not _USE_EXCHANGE or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # kernel or filesystem without RENAME_EXCHANGE: use two renames
    raise OSError(err, os.strerror(err), str(b))


def _leftovers(target: Path, tag: str) -> list[Path]:
    prefix = f".{target.name}{tag}"
    try:
        return [p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]
    except OSError:
        return []


def _remove_leftovers(target: Path) -> None:
    """Remove temporary and backup folders of ``target`` left by saves that were killed."""
    for tag in (_TMP_TAG, _OLD_TAG):
        for p in _leftovers(target, tag):
            pid = p.name[len(target.name) + 1 + len(tag):].split("-")[0]
            if not pid.isdigit() or int(pid) == os.getpid() or not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot tell safely: leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ load
def _model_folder(path: str | os.PathLike) -> Path:
    """The folder to read: ``path``, or the complete backup a save killed mid-swap left of it."""
    folder = Path(path)
    if folder.is_dir():
        return folder
    if folder.exists():
        raise ModelFileError(f"{folder}: not a saved model (a file, not a folder)")
    backups = sorted(_leftovers(folder, _OLD_TAG), key=lambda p: p.stat().st_mtime, reverse=True)
    for b in backups:
        try:
            _check_manifest(b)
        except ModelFileError:
            continue
        logger.warning("%s is missing: a save was interrupted; loading the previous model from %s "
                       "(rename it to %s to keep it)", folder, b, folder.name)
        return b
    raise ModelFileError(f"{folder}: not a saved model (no config.json: the folder does not exist)")


def _check_manifest(folder: Path) -> bool:
    """Check every file against ``manifest.json``; False for a format-1 folder without one."""
    mfile = folder / MANIFEST_FILE
    if not mfile.is_file():
        cfg = folder / CONFIG_FILE
        if not cfg.is_file():
            raise ModelFileError(f"{folder}: not a saved model (no config.json)")
        if _parse_json(cfg).get("format") == 1:
            return False
        raise ModelFileError(f"{mfile}: missing, so the save of this folder never completed")
    man = _parse_json(mfile)
    files = man.get("files")
    if man.get("format") != FORMAT_VERSION or not isinstance(files, dict) or set(man) != {"format", "files"}:
        raise ModelFileError(f"{mfile}: not a model manifest (expected format {FORMAT_VERSION} and a 'files' object)")
    for req in (CONFIG_FILE, ARRAYS_FILE):
        if req not in files:
            raise ModelFileError(f"{mfile}: does not list {req}")
    if (folder / WEIGHTS_FILE).exists() and WEIGHTS_FILE not in files:
        raise ModelFileError(f"{folder / WEIGHTS_FILE}: not listed in {MANIFEST_FILE} (added after saving)")
    for name, entry in files.items():
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts or not parts or not isinstance(entry, dict):
            raise ModelFileError(f"{mfile}: bad entry {name!r}")
        f = folder / name
        size, digest = entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or not isinstance(digest, str):
            raise ModelFileError(f"{mfile}: entry {name!r} needs an integer size and a sha256 string")
        if not f.is_file():
            raise ModelFileError(f"{f}: missing (listed in {MANIFEST_FILE})")
        actual = f.stat().st_size
        if actual != size:
            raise ModelFileError(f"{f}: {actual} bytes where {MANIFEST_FILE} says {size} (truncated or changed "
                                 "after saving)")
        if _sha256(f) != digest:
            raise ModelFileError(f"{f}: contents differ from the checksum in {MANIFEST_FILE} (changed after saving)")
    return True


def _parse_json(file: Path) -> dict[str, Any]:
    try:
        doc = json.loads(file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{file}: not valid JSON ({_one_line(e)})") from None
    except OSError as e:
        raise ModelFileError(f"{file}: cannot be read ({e.strerror or e})") from None
    if not isinstance(doc, dict):
        raise ModelFileError(f"{file}: expected a JSON object, got {type(doc).__name__}")
    return doc


def _read_doc(folder: Path) -> dict[str, Any]:
    """The checked ``config.json`` of ``folder`` (the manifest checked first)."""
    if not _check_manifest(folder):
        logger.warning("%s was saved without a manifest (format 1): its files cannot be checked for "
                       "completeness; save it again to upgrade", folder)
    cfg = folder / CONFIG_FILE
    doc = _parse_json(cfg)
    fmt = doc.get("format")
    if fmt not in _READABLE_FORMATS or isinstance(fmt, bool):
        raise ModelFileError(f"{cfg}: unsupported format {fmt!r} (this version reads {_READABLE_FORMATS})")
    missing = [k for k in _DOC_KEYS if k not in doc]
    unknown = sorted(set(doc) - set(_DOC_KEYS))
    if missing or unknown:
        raise ModelFileError(f"{cfg}: " + (f"keys missing: {', '.join(missing)}" if missing
                                           else f"unknown key {unknown[0]!r}"))
    if not isinstance(doc["class"], str):
        raise ModelFileError(f"{cfg}: 'class' must be a string like "
                             f"'recsys_coldstart.baselines.popularity:Popularity', got {doc['class']!r}")
    for key in ("config", "meta"):
        if not isinstance(doc[key], dict):
            raise ModelFileError(f"{cfg}: {key!r} must be an object, got {type(doc[key]).__name__}")
    return doc


def read_model_config(path: str | os.PathLike) -> dict[str, Any]:
    """The checked ``config.json`` of a saved model folder.

    Parameters
    ----------
    path : str or PathLike
        A folder written by :func:`save_model`.

    Returns
    -------
    dict
        ``{"format", "class", "config", "meta"}``.

    Raises
    ------
    ModelFileError
        Naming the file when the folder is missing, incomplete or corrupt.
    """
    return _read_doc(_model_folder(path))


def read_model_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``meta`` dict given to :func:`save_model` (dataset, split, seed, data manifest, ...).

    Parameters
    ----------
    path : str or PathLike
        A folder written by :func:`save_model`.

    Returns
    -------
    dict

    Raises
    ------
    ModelFileError
        Naming the file when the folder is missing, incomplete or corrupt.
    """
    return dict(read_model_config(path)["meta"])


def _resolve_class(spec: str, cfg: Path) -> type:
    from recsys_coldstart.base import BaseRecommender

    module, _, qualname = spec.partition(":")
    parts = module.split(".")
    if (parts[0] != "recsys_coldstart" or len(parts) < 2 or not qualname.isidentifier()
            or not all(_MODULE_PART.fullmatch(p) for p in parts)):
        raise ModelFileError(f"{cfg}: class {spec!r} is not a recsys_coldstart model")
    try:
        obj = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError) as e:
        raise ModelFileError(f"{cfg}: unknown model class {spec!r} ({_one_line(e)})") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseRecommender)
            and obj.__module__.startswith("recsys_coldstart.")):
        raise ModelFileError(f"{cfg}: {spec!r} is not a model class")
    return obj


def _check_name(cls: type, name: str, file: Path) -> None:
    """Refuse an archive entry that is not fitted state of ``cls`` (e.g. one that would shadow a method)."""
    if not _FITTED_NAME.fullmatch(name) or name in _RESERVED:
        raise ModelFileError(f"{file}: entry {name!r} is not fitted state (fitted attributes are named like "
                             "'item_factors_')")
    for attr in (name, name[:-1]):
        if hasattr(cls, attr):
            raise ModelFileError(f"{file}: entry {name!r} would shadow {cls.__name__}.{attr}, refused")


def _read_arrays(file: Path, cls: type) -> dict[str, Any]:
    """Fitted attributes stored in ``arrays.npz``, each checked; ModelFileError naming the entry."""
    if not file.is_file():
        raise ModelFileError(f"{file}: missing")
    data: dict[str, np.ndarray] = {}
    try:
        with np.load(file, allow_pickle=False) as npz:
            names = list(npz.files)
            for k in names:
                try:
                    data[k] = npz[k]
                except ValueError as e:
                    if "allow_pickle" in str(e):
                        raise ModelFileError(f"{file}: entry {k!r} is an object array (refused: reading it "
                                             "would need pickle)") from None
                    raise
    except ModelFileError:
        raise
    except Exception as e:  # noqa: BLE001 - zipfile/zlib/numpy all raise their own types
        raise ModelFileError(f"{file}: not a readable .npz archive ({type(e).__name__}: {_one_line(e)})") from None
    out: dict[str, Any] = {}
    groups: dict[str, dict[str, np.ndarray]] = {}
    csr: dict[str, dict[str, np.ndarray]] = {}
    for k, a in data.items():
        if a.dtype.kind not in _ARRAY_KINDS:
            raise ModelFileError(f"{file}: entry {k!r} has dtype {a.dtype}; only numbers and strings are read")
        suffix = next((s for s in _CSR_SUFFIXES if k.endswith(s)), None)
        if suffix is not None:
            csr.setdefault(k[: -len(suffix)], {})[suffix] = a
        elif _DICT_SEP in k:
            name, _, key = k.partition(_DICT_SEP)
            if not _DICT_KEY.fullmatch(key) or a.ndim != 1:
                raise ModelFileError(f"{file}: entry {k!r} is not a 1-d array under a plain key")
            groups.setdefault(name, {})[key] = a
        else:
            out[k] = a
    for name, a in out.items():
        _check_name(cls, name, file)
        if _nonfinite(a) and not name.startswith("history"):
            raise ModelFileError(f"{file}: {name} holds {_nonfinite(a)} NaN/inf values (the model that wrote it "
                                 "had diverged)")
        out[name] = a.item() if a.ndim == 0 else a
    for name, parts in csr.items():
        _check_name(cls, name, file)
        if name in out:
            raise ModelFileError(f"{file}: {name} is stored twice")
        out[name] = _rebuild_csr(name, parts, file)
    for name, d in groups.items():
        _check_name(cls, name, file)
        if name in out:
            raise ModelFileError(f"{file}: {name} is stored twice")
        out[name] = d
    return out


def _rebuild_csr(name: str, parts: dict[str, np.ndarray], file: Path) -> sp.csr_matrix:
    absent = [s.removeprefix("__csr_") for s in _CSR_SUFFIXES if s not in parts]
    if absent:
        raise ModelFileError(f"{file}: sparse matrix {name} lacks its {', '.join(absent)}")
    shape, data = parts["__csr_shape"], parts["__csr_data"]
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
        raise ModelFileError(f"{file}: sparse matrix {name} has a bad shape {shape.tolist()}")
    if _nonfinite(data):
        raise ModelFileError(f"{file}: {name} holds {_nonfinite(data)} NaN/inf values (the model that wrote it "
                             "had diverged)")
    try:
        m = sp.csr_matrix((data, parts["__csr_indices"], parts["__csr_indptr"]),
                          shape=(int(shape[0]), int(shape[1])))
        m.check_format(full_check=True)
    except (ValueError, TypeError, IndexError) as e:
        raise ModelFileError(f"{file}: sparse matrix {name} is inconsistent ({_one_line(e)})") from None
    return m


def _check_weights(file: Path) -> None:
    """Read ``weights.pt`` safely and refuse anything but finite tensors (and plain containers)."""
    import pickle

    import torch

    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(e))
        raise ModelFileError(f"{file}: refused, not a plain tensor file (torch.load(weights_only=True) failed"
                             f"{': ' + found.group(1).strip()[:120] if found else ''})") from None
    except EOFError:
        raise ModelFileError(f"{file}: empty or truncated torch file") from None
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, zipfile errors, ...
        raise ModelFileError(f"{file}: not a readable torch file ({type(e).__name__}: {_one_line(e)})") from None
    stack = [("", state)]
    while stack:
        where, obj = stack.pop()
        if isinstance(obj, torch.Tensor):
            if (obj.is_floating_point() or obj.is_complex()) and not bool(torch.isfinite(obj).all()):
                raise ModelFileError(f"{file}: tensor {where or '(root)'} holds NaN/inf values (the model that "
                                     "wrote it had diverged)")
        elif isinstance(obj, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in obj.items())
        elif isinstance(obj, (list, tuple)):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(obj))


def load_model(path: str | os.PathLike) -> Any:
    """Load a model saved by :func:`save_model`; never unpickles anything.

    Parameters
    ----------
    path : str or PathLike
        A folder written by :func:`save_model`.

    Returns
    -------
    BaseRecommender
        With its config, every fitted array and ``meta_`` (the ``meta`` given at save) restored.

    Raises
    ------
    ModelFileError
        One line naming the file and what is wrong when the folder is missing, incomplete,
        corrupt or tampered with (a ``DataError``: exit code 2 in the CLI).
    """
    folder = _model_folder(path)
    doc = _read_doc(folder)
    cfg_file = folder / CONFIG_FILE
    cls = _resolve_class(doc["class"], cfg_file)
    cfg_cls = getattr(cls, "config_class", None)
    try:
        if cfg_cls is not None:
            model = cls(config_from_dict(cfg_cls, doc["config"]))
        elif doc["config"]:
            raise DataError(f"{cls.__name__} takes no configuration, found keys {sorted(doc['config'])}")
        else:
            model = cls()
    except DataError as e:
        raise ModelFileError(f"{cfg_file}: {_one_line(e)}") from None
    for name, value in _read_arrays(folder / ARRAYS_FILE, cls).items():
        setattr(model, name, value)
    weights = folder / WEIGHTS_FILE
    if weights.exists():
        _check_weights(weights)
    if hasattr(model, "_load_extra"):
        try:
            model._load_extra(folder)
        except Exception as e:  # noqa: BLE001 - a mismatched state dict, a missing key, ...
            where = weights if weights.exists() else folder
            raise ModelFileError(f"{where}: does not fit {cls.__name__} ({type(e).__name__}: "
                                 f"{_one_line(e)})") from None
    model.meta_ = doc["meta"]
    return model


def _one_line(e: BaseException) -> str:
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    line = " ".join(msg.split())
    return line if len(line) <= 300 else line[:297] + "..."
