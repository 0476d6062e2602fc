"""Runs the model contract (``tests/contract.py``) on every entry of the CLI registry."""

from __future__ import annotations

import pytest
from contract import CHECKS, CONFIGS, contract_split, fit_case

from recsys_coldstart.cli.registry import MODELS

NAMES = sorted(MODELS)


def test_every_registered_model_has_a_contract_row():
    assert set(CONFIGS) == set(MODELS), (
        f"add a row to tests/contract.py CONFIGS for {sorted(set(MODELS) - set(CONFIGS))}; "
        f"drop {sorted(set(CONFIGS) - set(MODELS))}")


@pytest.fixture(scope="module")
def split():
    return contract_split()


@pytest.fixture(scope="module")
def cases(split):
    return {}


@pytest.fixture
def case(request, split, cases):
    name = request.param
    if name not in cases:
        cases[name] = fit_case(name, split)
    return cases[name]


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("case", NAMES, indirect=True)
def test_contract(case, check, tmp_path):
    if check == "save_load":
        CHECKS[check](case, tmp_path / case.name)
    else:
        CHECKS[check](case)
