"""Issue-15 suite cells: dataset variants with compressed side features, the start fields of tower
models in records, and the report's cold-start checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_coldstart.bench import parse_suite, read_results, run_suite, suite_cells
from recsys_coldstart.bench.loading import SplitCache
from recsys_coldstart.cli.registry import model_classes, policy_classes
from recsys_coldstart.data import make_split, make_synthetic
from recsys_coldstart.data.features import (
    SideFeatures,
    clipped_idf,
    column_counts,
    compress_features,
    drop_rare_columns,
    smooth_idf,
)
from recsys_coldstart.data.splits import with_side_features
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.report.render import build_report, load_records, to_markdown

SYN = {"n_users": 300, "n_items": 200, "mean_ratings": 20}


def test_compress_features_and_drop_rare_columns():
    rng = np.random.default_rng(0)
    x = sp.random(50, 30, density=0.2, random_state=0, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    f = SideFeatures(x)
    c = compress_features(f, 8, weighting="tfidf", noise_columns=3, random_state=1)
    assert c.values.shape == (50, 11) and not c.is_sparse
    assert c.names[:2] == ("svd0", "svd1") and c.names[-1] == "noise2"
    norms = np.linalg.norm(c.values[:, :8], axis=0)
    assert np.all(np.diff(norms) <= 1e-5)  # strongest component first
    again = compress_features(f, 8, weighting="tfidf", noise_columns=3, random_state=1)
    np.testing.assert_array_equal(c.values, again.values)  # seeded
    # all but one dimension of a dense table keeps nearly all of it (standardised)
    dense = SideFeatures(rng.normal(size=(40, 6)).astype(np.float32))
    assert compress_features(dense, -1, weighting="standardize").values.shape == (40, 5)
    with pytest.raises(DataError, match="weighting"):
        compress_features(f, 4, weighting="bm25")
    # document frequencies and the two idf weightings, sparse and dense alike
    dense_x = x.toarray()
    np.testing.assert_array_equal(column_counts(x), (dense_x != 0).sum(axis=0))
    np.testing.assert_array_equal(column_counts(dense_x), column_counts(x))
    np.testing.assert_allclose(smooth_idf(x), np.log(51.0 / (1.0 + (dense_x != 0).sum(axis=0))) + 1.0)
    np.testing.assert_allclose(clipped_idf(x), np.log(50.0 / (1.0 + (dense_x != 0).sum(axis=0))).clip(min=0.0),
                               rtol=1e-6)
    np.testing.assert_array_equal(clipped_idf(np.ones((4, 3))), np.ones(3))  # everywhere: no weighting
    kept = drop_rare_columns(f, 12)
    df = np.asarray((x != 0).sum(axis=0)).ravel()
    assert kept.n_features == int((df >= 12).sum())
    assert kept.names == tuple(n for n, d in zip(f.names, df, strict=True) if d >= 12)


def test_with_side_features_replaces_every_part():
    split = make_split(make_synthetic(**SYN, random_state=0), "item-cold", random_state=0)
    new = compress_features(split.train.item_features, 4)
    out = with_side_features(split, item_features=new)
    for part in ("train", "val", "test", "support", "source"):
        assert getattr(out, part).item_features is new
        assert getattr(out, part).user_features is getattr(split, part).user_features
    with pytest.raises(DataError, match="rows"):
        with_side_features(split, item_features=SideFeatures(np.zeros((3, 2), np.float32)))


def _suite(models):
    return {"name": "hold", "seeds": [0], "ks": [20],
            "datasets": [{"name": "synthetic", "splits": ["item-cold"], "options": SYN},
                         {"name": "synthetic/svd4", "source": "synthetic", "splits": ["item-cold"],
                          "options": {**SYN, "item_features_svd": {"n": 4}}}],
            "models": models}


def test_a_dataset_variant_loads_its_source_with_compressed_features():
    suite = parse_suite(_suite([{"name": "content-knn"}]), models=model_classes())
    cells = {c.dataset.name: c for c in suite_cells(suite)}
    cache = SplitCache()
    plain = cache.get(cells["synthetic"])
    svd = cache.get(cells["synthetic/svd4"])
    assert svd.train.item_features.n_features == 4 and plain.train.item_features.n_features > 4
    assert (svd.train.user_items != plain.train.user_items).nnz == 0  # same split, other features
    with pytest.raises(DataError, match="unknown keys"):
        parse_suite({**_suite([{"name": "content-knn"}]), "datasets": [{"name": "x", "loader": "synthetic"}]},
                    models=model_classes())


def test_start_fields_in_records_and_the_reports_cold_start_checks(tmp_path):
    models = [
        {"name": "content-knn"},
        {"name": "als", "label": "als-16", "config": {"dim": 16}},
        {"name": "dropoutnet", "label": "content-map", "teacher": "als-16", "config": {"n_epochs": 0, "pref_dim": 16}},
        {"name": "teacher", "role": "teacher", "teacher": "als-16",
         "config": {"n_epochs": 1, "dim": 16, "hidden": [16]}},
        {"name": "student", "role": "student", "teacher": "teacher",
         "config": {"n_epochs": 1, "dim": 8, "hidden": [8], "content_init": "map", "keep_teacher": 0.95}},
        {"name": "dropoutnet", "teacher": "als-16", "config": {"n_epochs": 1, "pref_dim": 16}},
        {"name": "heater", "teacher": "als-16", "config": {"n_epochs": 1, "pref_dim": 16, "n_experts": 2}},
    ]
    suite = parse_suite(_suite(models), models=model_classes())
    summary = run_suite(suite, tmp_path, models=model_classes(), policies=policy_classes(), only="synthetic__*")
    assert not summary.failed
    df = read_results(tmp_path)
    met = df[(df.record_type == "metric") & (df.segment == "cold-item") & (df.metric == "ndcg")]
    st = met[met.model == "student"].iloc[0]
    assert st.dim in (8, 16) and "8" in st.width_val  # keep_teacher tried 8 first, widened only if needed
    assert isinstance(st.val_start, dict) and "val_recall@20" in st.val_start
    assert st.n_stored > st.n_params > 0  # the item memory and the content map are stored on top
    cm = met[met.model == "content-map"].iloc[0]
    assert bool(cm.kept_start)  # n_epochs = 0: the start is all there is
    assert pd.isna(met[met.model == "content-knn"].iloc[0].get("kept_start"))
    text = to_markdown(build_report(load_records(tmp_path)))
    sec = text.split("## Cold start: training from the start")[1].split("\n## ")[0]
    assert "content-map (n_epochs = 0: the start)" in sec
    assert "floor `content-knn`" in sec
    assert "teacher `teacher`" in sec and "vs the start it trains from (`content-map`)" in sec
    assert "student `student` keeps" in sec
    assert "DropoutNet vs Heater" in sec
    # each verdict is computed from the table's own means
    nd = met.groupby("model").value.mean()
    verdict = "PASS" if nd["teacher"] >= nd["content-map"] - 1e-9 else "FAIL"
    assert f"{nd['teacher']:.4f} vs the start it trains from (`content-map`) {nd['content-map']:.4f}: {verdict}" in sec


def test_start_checks_never_mix_budgets(tmp_path):
    # a time-capped teacher gets its own table: it is never checked against the default rows
    models = [
        {"name": "content-knn"},
        {"name": "als", "label": "als-16", "config": {"dim": 16}},
        {"name": "dropoutnet", "label": "content-map", "teacher": "als-16", "config": {"n_epochs": 0, "pref_dim": 16}},
        {"name": "teacher", "role": "teacher", "teacher": "als-16", "config": {"n_epochs": 1, "dim": 16, "hidden": [16]}},
    ]
    suite = parse_suite(_suite(models), models=model_classes())
    run_suite(suite, tmp_path, models=model_classes(), policies=policy_classes(), only="synthetic__*")
    df = load_records(tmp_path)
    df.loc[df.model == "teacher", "capped"] = True
    df.loc[df.model == "teacher", "max_train_seconds"] = 5.0
    sec = to_markdown(build_report(df)).split("## Cold start: training from the start")[1].split("\n## ")[0]
    captions = [line for line in sec.splitlines() if line.startswith("**")]
    assert captions == ["**synthetic — item-cold — default**", "**synthetic — item-cold — capped**"]
    default, capped = sec.split("**synthetic — item-cold — default**")[1].split("**synthetic — item-cold — capped**")
    assert "floor `content-knn`" in default and "content-map" in default
    assert "teacher" not in default  # the capped teacher is never shown or checked beside default rows
    assert "teacher `teacher`" not in capped and "floor" not in capped  # nothing to compare it with
