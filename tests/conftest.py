"""Shared fixtures: the real-data folder (env var or ../shared/data), small synthetic data.

Dataset tests skip with a reason on a user's machine when the data is absent, but *fail* under
CI (``CI=true``), so a wrong path can never turn the suite green by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys_coldstart.data import make_synthetic

REPO = Path(__file__).resolve().parents[1]
DATA_ENV = "RECSYS_COLDSTART_DATA"


def shared_data_dir() -> Path | None:
    """The real-data folder: $RECSYS_COLDSTART_DATA, else ../shared/data beside the repo."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    cand = REPO.parent / "shared" / "data"
    return cand if cand.is_dir() else None


def _missing(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: dataset tests must not skip; set {DATA_ENV})")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder holding the public datasets (ml-100k/, gowalla/, ...)."""
    d = shared_data_dir()
    if d is None or not d.is_dir():
        _missing(f"real datasets not found: set {DATA_ENV} or place them in ../shared/data")
    return d


@pytest.fixture(scope="session")
def ml100k_dir(data_dir: Path) -> Path:
    """The MovieLens 100K folder."""
    d = data_dir / "ml-100k"
    if not (d / "u.data").is_file():
        _missing(f"{d}/u.data not found")
    return data_dir


@pytest.fixture(scope="session")
def citeulike_dir(data_dir: Path) -> Path:
    """The data folder, checked to hold CiteULike-a with DropoutNet's split."""
    d = data_dir / "citeulike-a"
    if not (d / "users.dat").is_file() or not (d / "dropoutnet_split").is_dir():
        _missing(f"{d}/users.dat or dropoutnet_split/ not found")
    return data_dir


@pytest.fixture(scope="session")
def need_dataset(data_dir: Path):
    """``need_dataset(name) -> data_dir`` once every file of known dataset ``name`` is there (a
    failure under CI, a skip with the missing folder elsewhere)."""
    from recsys_coldstart.data.datasets import DATASETS

    def need(name: str) -> Path:
        folder = data_dir / DATASETS[name].folder
        if not all((folder / f).is_file() for f in DATASETS[name].files):
            _missing(f"{folder}: files of {name} not found")
        return data_dir

    return need


@pytest.fixture(scope="session")
def synthetic():
    """A small synthetic dataset with planted clusters and side features (seed 0)."""
    return make_synthetic(n_users=400, n_items=300, mean_ratings=30, random_state=0)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests use tiny tensors: one intra-op thread is as fast and never thrashes a busy CI box."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
