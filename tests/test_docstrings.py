"""Every public function, class and method of the package has a docstring (style rule 9)."""

import importlib
import inspect
import pkgutil

import recsys_coldstart


def _public_objects():
    for info in pkgutil.walk_packages(recsys_coldstart.__path__, "recsys_coldstart."):
        mod = importlib.import_module(info.name)
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{mod.__name__}.{name}", obj
                if inspect.isclass(obj):
                    for mname, meth in vars(obj).items():
                        if not mname.startswith("_") and inspect.isfunction(meth):
                            yield f"{mod.__name__}.{name}.{mname}", meth


def test_public_names_have_docstrings():
    missing = [name for name, obj in _public_objects() if not (obj.__doc__ or "").strip()]
    assert not missing, f"{len(missing)} public names lack a docstring: {missing[:30]}"
