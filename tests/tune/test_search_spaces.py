"""Every registered model can be tuned: its search space draws valid configs, covers the published
optima, and its per-evaluation logs drive a MedianPruner (issue 12)."""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")

from recsys_coldstart.cli.registry import MODELS, model_class  # noqa: E402
from recsys_coldstart.data import warm_split  # noqa: E402
from recsys_coldstart.tune import default_params, tune  # noqa: E402

NO_PARAMETERS = {"popularity"}  # a floor with nothing to tune runs as it is


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_but_the_parameterless_floor_has_a_search_space(name):
    cls = model_class(name)
    assert callable(getattr(cls, "search_space", None)) == (name not in NO_PARAMETERS)


@pytest.mark.parametrize("name", sorted(set(MODELS) - NO_PARAMETERS))
def test_search_space_draws_valid_configs(name):
    cls = model_class(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(8):
        trial = study.ask()
        params = cls.search_space(trial)
        cls(**params)  # the config validates every draw
        study.tell(trial, 0.0)
    assert cls.__doc__ and cls.search_space.__doc__


def _space(name, **fixed):
    """The distributions of a model's search space (one trial of a random sampler; ``fixed``
    params are enqueued, e.g. a branch of a conditional space)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    if fixed:
        study.enqueue_trial(fixed)
    trial = study.ask()
    model_class(name).search_space(trial)
    return trial.distributions


def _covers(dist, lo=None, hi=None, values=()):
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return all(v in dist.choices for v in values)
    return (lo is None or dist.low <= lo) and (hi is None or dist.high >= hi)


def test_ranges_cover_the_published_optima():
    als = _space("als")
    # Revisiting iALS / our ml-100k grid: regularization up to 1e3, factors up to 512
    assert _covers(als["reg"], 0.05, 1e3) and _covers(als["dim"], values=(64, 128, 256, 512))
    assert _covers(als["alpha"], 1.0, 40.0) and _covers(als["n_epochs"], 15, 50)
    for g in ("lightgcn", "sgl", "simgcl", "xsimgcl"):
        d = _space(g, optimizer="adam")
        assert _covers(d["dim"], values=(64, 256)) and _covers(d["lr"], 1e-3, 1e-2) and _covers(d["reg"], 1e-6, 1e-2)
        assert _covers(d["n_layers"], 1, 4) and _covers(d["optimizer"], values=("adam", "adagrad"))
        # Adagrad's own lr range covers the 0.1 measured on ml-100k (scale_sharded.json)
        assert _covers(_space(g, optimizer="adagrad")["adagrad_lr"], 0.02, 0.2)
        # both batch samplers where the model implements both
        samplers = model_class(g).samplers
        assert len(samplers) == 1 or _covers(d["sampler"], values=("full", "neighbor"))
    sgl = _space("sgl")
    assert _covers(sgl["drop_rate"], 0.1, 0.5) and _covers(sgl["cl_temp"], 0.1, 1.0)
    assert _covers(sgl["cl_weight"], 0.005, 1.0)
    for g in ("simgcl", "xsimgcl"):
        d = _space(g)
        assert _covers(d["eps"], 0.01, 1.0) and _covers(d["cl_weight"], 0.02, 2.0) and _covers(d["cl_temp"], 0.15, 0.2)
    assert "cl_layer" in _space("xsimgcl")
    st = _space("student")
    assert _covers(st["lam"], 0.0, 1.0) and "temperature" in st
    assert _covers(_space("ease")["reg"], 200.0, 1000.0)


def test_default_config_is_a_point_of_the_space():
    # the default config is trial 0 of a study as a regular point, so the sampler learns from it
    for name in ("als", "ease", "lightgcn", "sgl", "simgcl", "xsimgcl", "teacher", "dropoutnet"):
        cls = model_class(name)
        point = default_params(cls)
        assert point, name
        cfg = cls.config_class()
        assert all(getattr(cfg, k) == v for k, v in point.items())
    # a base config fixes a search-space parameter: it is no longer part of the point
    assert default_params(model_class("lightgcn"), {"dim": 16}) == {"lr": 0.01, "reg": 1e-4, "n_layers": 3} or \
        "dim" not in default_params(model_class("lightgcn"), {"dim": 16})
    # a default outside the space and not fixed: None (trial 0 is fitted from the base config alone)
    assert default_params(model_class("content-knn")) is None


FAST = {
    "lightgcn": {"dim": 8, "eval_every": 1, "batch_size": 1024},
    "xsimgcl": {"dim": 8, "eval_every": 1, "batch_size": 1024},
    "als": {"dim": 8, "num_threads": 1},
    "bpr": {"dim": 8},
    "teacher": {"dim": 8, "hidden": (8,), "n_negatives": 8, "batch_size": 256},
    "dropoutnet": {"batch_size": 256, "base_dim": 8},
}


@pytest.fixture(scope="module")
def warm(synthetic):
    return warm_split(synthetic, random_state=0)


@pytest.mark.parametrize("name", list(FAST))
def test_a_median_pruner_prunes_graph_tower_and_mf_models(name, warm):
    """A finished trial that scored 1.0 at every step: a MedianPruner prunes the next real trial at
    its first report, so the model's log key is the one the tuner reads and the fit stops."""
    cls = model_class(name)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="p", storage=storage, direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=1.0,
                                              intermediate_values={e: 1.0 for e in range(0, 6)}))
    base = {**FAST[name], "n_epochs": 4, "random_state": 0, "device": "cpu"}
    study.enqueue_trial(default_params(cls, base))  # the default point (FAST fixes what it sets)
    res = tune(cls, warm, n_trials=2, storage=storage, study_name="p", n_startup_trials=1, n_warmup_steps=0,
               base_config=base,
               evaluate_default=False, evaluate_test=False)
    real = res.study.trials[1]
    assert real.state == optuna.trial.TrialState.PRUNED, name
    assert len(real.intermediate_values) == 1  # stopped at its first evaluation
