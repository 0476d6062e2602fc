"""The top-level public API: every name resolves and carries a docstring."""

import subprocess
import sys

import recsys_coldstart as rc


def test_every_public_name_resolves_and_is_documented():
    for name in rc.__all__:
        obj = getattr(rc, name)
        assert obj.__doc__, f"{name} has no docstring"


def test_import_is_light_and_data_layer_has_no_torch():
    code = "import sys, recsys_coldstart, recsys_coldstart.data.datasets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_docstring_example_runs():
    data = rc.make_synthetic(n_users=200, n_items=100, random_state=0)
    split = rc.user_cold_split(data, n_support=3, random_state=0)
    from recsys_coldstart.evaluate import evaluate

    res = evaluate(rc.FeaturePopularity().fit(split.train), split)
    assert set(res.segment) == {"cold-user"}
