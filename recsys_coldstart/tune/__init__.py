"""Hyper-parameter tuning: optuna studies over a model's own ``search_space(trial)``."""

from recsys_coldstart.tune.study import (
    TuneInterrupted,
    TuneResult,
    default_params,
    make_model,
    parse_metric,
    suite_toml,
    tune,
    tune_records,
    write_best_toml,
)

__all__ = ["tune", "TuneResult", "TuneInterrupted", "default_params", "parse_metric", "write_best_toml", "suite_toml", "tune_records", "make_model"]
