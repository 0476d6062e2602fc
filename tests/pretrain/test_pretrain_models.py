"""Contract tests of the graph pretraining models on the synthetic fixture."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import recsys_coldstart.graph.encoders as encoders
from recsys_coldstart.baselines.popularity import Popularity
from recsys_coldstart.data import user_cold_split, warm_split
from recsys_coldstart.evaluate import evaluate, metric_value
from recsys_coldstart.exceptions import TrainingDivergedError
from recsys_coldstart.io import load_model, save_model
from recsys_coldstart.pretrain import SGL, LightGCN, SimGCL, XSimGCL
from recsys_coldstart.pretrain._trainer import CHECKPOINT_FILE

# small-data settings: the published yelp2018 contrastive weights are for graphs ~100x larger
FAST = {"lr": 0.01, "batch_size": 512, "n_epochs": 15, "eval_every": 3, "patience": 3}
MODELS = {
    "lightgcn": (LightGCN, {}),
    "sgl": (SGL, {"cl_weight": 0.02}),
    "simgcl": (SimGCL, {"cl_weight": 0.02}),
    "xsimgcl": (XSimGCL, {"cl_weight": 0.02}),
}


@pytest.fixture(scope="module")
def warm(synthetic):
    return warm_split(synthetic, random_state=0)


@pytest.fixture(scope="module")
def ucold(synthetic):
    return user_cold_split(synthetic, n_support=3, random_state=0)


@pytest.fixture(scope="module")
def pop_warm(warm):
    return metric_value(evaluate(Popularity().fit(warm.train), warm), "ndcg", 20, "warm")


@pytest.fixture(scope="module")
def fitted_lightgcn(warm):
    return LightGCN(**FAST).fit(warm.train, val=warm.val)


@pytest.mark.parametrize("name", list(MODELS))
def test_beats_popularity_on_warm(name, warm, pop_warm):
    cls, extra = MODELS[name]
    model = cls(**FAST, **extra).fit(warm.train, val=warm.val)
    assert model.user_factors_.dtype == np.float32 and model.user_factors_.shape == (warm.train.n_users, 64)
    assert model.item_factors_.shape == (warm.train.n_items, 64)
    ndcg = metric_value(evaluate(model, warm), "ndcg", 20, "warm")
    assert ndcg > pop_warm * 1.5, (name, ndcg, pop_warm)


@pytest.mark.parametrize("aug", ["nd", "rw"])
def test_sgl_augmentations_train(aug, warm):
    model = SGL(aug_type=aug, n_epochs=2, lr=0.01, batch_size=512).fit(warm.train)
    assert np.isfinite(model.history_["loss"]).all() and len(model.history_["loss"]) == 2


def test_invalid_options_raise():
    with pytest.raises(ValueError):
        SGL(aug_type="xx")
    with pytest.raises(ValueError):
        XSimGCL(n_layers=2, cl_layer=3)
    with pytest.raises(TypeError):
        LightGCN(not_an_option=1)


@pytest.mark.parametrize("cls", [LightGCN, SimGCL])
def test_deterministic_under_random_state(cls, warm):
    a = cls(n_epochs=2, batch_size=512, random_state=3, device="cpu").fit(warm.train)
    b = cls(n_epochs=2, batch_size=512, random_state=3, device="cpu").fit(warm.train)
    c = cls(n_epochs=2, batch_size=512, random_state=4, device="cpu").fit(warm.train)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


@pytest.mark.parametrize("cls", [SimGCL, XSimGCL])
def test_one_propagation_per_batch(cls, warm, monkeypatch):
    """SimGCL propagates its 3 views in one wide product; XSimGCL uses a single forward pass."""
    calls = []
    orig = encoders.spmm

    def counting(adj, x):
        calls.append(x.shape[1])
        return orig(adj, x)

    monkeypatch.setattr(encoders, "spmm", counting)
    model = cls(n_epochs=1, batch_size=100_000, n_layers=2)  # one batch
    model.fit(warm.train)
    if cls is SimGCL:  # clean layers (autograd), each view's noise offsets for layer 2, final
        assert calls == [64, 64, 64, 64, 64, 64]
    else:  # one perturbed pass, then the final (unperturbed) representations
        assert calls == [64, 64, 64, 64]


def test_simgcl_noise_offsets_equal_direct_perturbed_views():
    from recsys_coldstart.graph import (
        layer_mean,
        lightgcn_layers,
        normalized_adjacency,
        spmm,
    )
    from recsys_coldstart.pretrain.simgcl import noise_offsets

    ui = sp.random(30, 20, density=0.2, format="csr", random_state=0)
    adj = normalized_adjacency(ui)
    n, d, eps = 50, 8, 0.1
    w = torch.randn(n, 2 * d, generator=torch.Generator().manual_seed(1))
    base = torch.randn(n, d, generator=torch.Generator().manual_seed(0))

    e_fast = base.clone().requires_grad_(True)
    layers = lightgcn_layers(adj, e_fast, 3)
    off1, off2 = noise_offsets(adj, layers, eps, torch.Generator().manual_seed(7))
    final = layer_mean(layers, include_input=False)
    fast = torch.cat([final + off1, final + off2], 1)
    (fast * w).sum().backward()

    e_direct = base.clone().requires_grad_(True)
    g = torch.Generator().manual_seed(7)
    views, outs = [e_direct, e_direct], [[], []]
    for _ in range(3):
        u = torch.rand((2, n, d), generator=g)  # noise_offsets draws (view, node, dim) per layer
        views = [spmm(adj, x) for x in views]
        views = [x + torch.sign(x) * torch.nn.functional.normalize(u[v], dim=-1) * eps for v, x in enumerate(views)]
        for v in range(2):
            outs[v].append(views[v])
    direct = torch.cat([torch.stack(outs[0]).mean(0), torch.stack(outs[1]).mean(0)], 1)
    (direct * w).sum().backward()
    np.testing.assert_allclose(fast.detach().numpy(), direct.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(e_fast.grad.numpy(), e_direct.grad.numpy(), atol=1e-5)


def test_save_load_round_trip(fitted_lightgcn, warm, ucold, tmp_path):
    model = fitted_lightgcn
    folder = save_model(model, tmp_path / "m", meta={"dataset": "synthetic"})
    assert (folder / "weights.pt").is_file()
    state = torch.load(folder / "weights.pt", weights_only=True)
    np.testing.assert_array_equal(state["user_emb"].numpy(), model.user_emb0_)
    assert json.loads((folder / "config.json").read_text())["config"]["n_epochs"] == FAST["n_epochs"]
    loaded = load_model(folder)
    assert isinstance(loaded, LightGCN) and loaded.config == model.config
    users = np.arange(20)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    obs = warm.train.user_items[:5]
    np.testing.assert_allclose(loaded.embed_users(obs), model.embed_users(obs), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(loaded.history_["loss"], model.history_["loss"])


def test_nan_guard_raises(warm):
    with pytest.raises(TrainingDivergedError, match="lower the learning rate|NaN"):
        LightGCN(lr=1e30, n_epochs=3, batch_size=512).fit(warm.train)


def test_nan_guard_on_injected_inf(warm):
    class Broken(LightGCN):
        def _batch_loss(self, ctx, users, pos, neg):
            loss, parts = super()._batch_loss(ctx, users, pos, neg)
            return loss * float("inf"), parts

    with pytest.raises(TrainingDivergedError, match="epoch 1, batch 1"):
        Broken(n_epochs=1).fit(warm.train)


def test_checkpoint_resume_continues_exactly(warm, tmp_path):
    opts = {"n_epochs": 4, "batch_size": 512, "lr": 0.01, "random_state": 5, "device": "cpu"}
    full = SimGCL(**opts).fit(warm.train)
    ck = tmp_path / "ck"
    first = SimGCL(**{**opts, "n_epochs": 2}, checkpoint_dir=str(ck), checkpoint_every=1).fit(warm.train)
    assert (ck / CHECKPOINT_FILE).is_file() and len(first.history_["epoch"]) == 2
    resumed = SimGCL(**opts, checkpoint_dir=str(ck), checkpoint_every=1).fit(warm.train)
    np.testing.assert_array_equal(resumed.history_["epoch"], [1, 2, 3, 4])
    np.testing.assert_allclose(resumed.history_["loss"], full.history_["loss"], rtol=1e-6)
    np.testing.assert_allclose(resumed.item_factors_, full.item_factors_, rtol=1e-5, atol=1e-6)


def test_callback_stops_and_gets_logs(warm):
    seen = []

    def cb(epoch, logs):
        seen.append((epoch, dict(logs)))
        return epoch >= 3

    model = LightGCN(n_epochs=50, batch_size=512, eval_every=1).fit(warm.train, val=warm.val, callback=cb)
    assert [e for e, _ in seen] == [1, 2, 3]
    assert len(model.history_["epoch"]) == 3
    assert {"loss", "val_ndcg@20", "seconds"} <= set(seen[0][1])
    assert np.isfinite(model.history_["val_ndcg@20"]).all()


def test_early_stopping_restores_best(warm):
    model = LightGCN(lr=0.05, n_epochs=60, batch_size=512, eval_every=1, patience=2).fit(warm.train, val=warm.val)
    hist = model.history_["val_ndcg@20"]
    assert len(hist) < 60
    assert model.best_epoch_ == int(model.history_["epoch"][np.nanargmax(hist)])


@pytest.mark.parametrize("mode", ["graph", "local"])
def test_fold_in_beats_popularity_on_cold_users(mode, ucold):
    model = LightGCN(**FAST, fold_in=mode).fit(ucold.train)
    pop = metric_value(evaluate(Popularity().fit(ucold.train), ucold), "ndcg", 20, "cold-user")
    ndcg = metric_value(evaluate(model, ucold), "ndcg", 20, "cold-user")
    assert ndcg > pop, (mode, ndcg, pop)


def test_fold_in_shapes_and_empty_rows(fitted_lightgcn):
    model = fitted_lightgcn
    obs = sp.csr_matrix(([1.0, 1.0], ([0, 0], [3, 7])), shape=(2, model.n_items_))
    for mode in ("graph", "local"):
        m = LightGCN(**FAST, fold_in=mode)
        m.__dict__.update({k: v for k, v in model.__dict__.items() if k != "config"})
        m._layers_cache = None
        emb = m.embed_users(obs)
        assert emb.shape == (2, 64) and emb.dtype == np.float32
        np.testing.assert_array_equal(emb[1], 0)  # nothing observed: the zero vector
        assert np.abs(emb[0]).sum() > 0
    with pytest.raises(ValueError):
        model.embed_users(sp.csr_matrix((1, model.n_items_ + 1)))


def test_registry_names_resolve():
    from recsys_coldstart.cli.registry import model_class

    assert model_class("lightgcn") is LightGCN and model_class("xsimgcl") is XSimGCL
    assert model_class("sgl") is SGL and model_class("simgcl") is SimGCL


def test_cli_pretrain_saves_loadable_model(tmp_path, capsys):
    from recsys_coldstart.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text('model = "xsimgcl"\n[config]\nn_layers = 2\nlr = 0.01\ncl_weight = 0.02\n')
    out = tmp_path / "m"
    rc = main(["pretrain", "--dataset", "synthetic", "--config", str(cfg), "--epochs", "2", "--device", "cpu",
               "--no-progress", "--save", str(out)])
    assert rc == 0
    assert "ndcg@20" in capsys.readouterr().out
    doc = json.loads((out / "config.json").read_text())
    assert doc["meta"]["dataset"] == "synthetic" and doc["meta"]["split"] == "warm"
    assert doc["config"]["n_layers"] == 2 and doc["config"]["n_epochs"] == 2
    assert "test_warm_ndcg@20" in doc["meta"]["metrics"]
    model = load_model(out)
    assert isinstance(model, XSimGCL) and (out / "weights.pt").is_file()
    assert main(["pretrain", "--dataset", "synthetic", "--model", "nope", "--save", str(tmp_path / "x")]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "lightgcn"\n[config]\nnot_a_field = 1\n')
    assert main(["pretrain", "--dataset", "synthetic", "--config", str(bad), "--save", str(tmp_path / "y")]) == 2


def test_xsimgcl_batch_loss_equals_direct_reference_computation():
    """XSimGCL's loss and gradient equal a from-scratch computation of the paper's objective.

    Pins the details a faithful XSimGCL needs (Yu et al. 2023; SELFRec's XSimGCL): noise
    ``ε sign(x) normalize(U(0,1))`` added after every layer to the *current noisy* layer and
    propagated by the next layers, final = mean of the noisy layers 1..L (no layer 0), BPR on the
    noisy final embeddings, InfoNCE (cosine, τ) between final and noisy layer ``l*`` over the
    batch's unique users and unique positive items, L2 on the batch's layer-0 embeddings.
    """
    from recsys_coldstart.graph.convert import BipartiteGraph
    from recsys_coldstart.graph.encoders import LightGCNEncoder
    from recsys_coldstart.pretrain._trainer import TrainContext

    ui = sp.random(40, 30, density=0.15, format="csr", random_state=3)
    g = BipartiteGraph(ui)
    cfg = dict(dim=8, n_layers=3, eps=0.2, cl_weight=0.2, cl_temp=0.15, cl_layer=2, reg=1e-2)
    model = XSimGCL(**cfg)
    enc = LightGCNEncoder(g.n_users, g.n_items, 8, 3, include_input=False, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # larger than Xavier so that signs and norms matter
        enc.user_emb.mul_(20.0)
        enc.item_emb.mul_(20.0)
    users, pos = g.edge_user[:25], g.edge_item[:25]
    neg = torch.randint(g.n_items, (25,), generator=torch.Generator().manual_seed(1))
    ctx = TrainContext(graph=g, adj=g.adjacency(), encoder=enc, generator=torch.Generator().manual_seed(5),
                       device=torch.device("cpu"), state={})
    loss, _ = model._batch_loss(ctx, users, pos, neg)
    loss.backward()
    grad_model = torch.cat([enc.user_emb.grad, enc.item_emb.grad]).clone()

    # direct computation with a dense adjacency and the same noise stream
    dense = torch.from_numpy(ui.toarray() > 0).float()
    a = torch.zeros(70, 70)
    a[:40, 40:], a[40:, :40] = dense, dense.T
    deg = a.sum(1)
    dinv = torch.where(deg > 0, deg.clamp(min=1).rsqrt(), torch.zeros_like(deg))
    a = dinv[:, None] * a * dinv[None, :]
    e0 = torch.cat([enc.user_emb.detach(), enc.item_emb.detach()]).requires_grad_(True)
    gen, x, layers = torch.Generator().manual_seed(5), e0, []
    for _ in range(3):
        x = a @ x
        u = torch.rand(x.shape, generator=gen)
        x = x + torch.sign(x) * (u / u.norm(dim=1, keepdim=True)) * 0.2
        layers.append(x)
    final, view = torch.stack(layers).mean(0), layers[1]
    eu, ei, ej = final[users], final[40 + pos], final[40 + neg]
    bpr = -torch.log(torch.sigmoid((eu * ei).sum(1) - (eu * ej).sum(1))).mean()

    def nce(p, q):
        p, q = p / p.norm(dim=1, keepdim=True), q / q.norm(dim=1, keepdim=True)
        return -torch.diag(torch.log_softmax(p @ q.T / 0.15, 1)).mean()

    uu, ii = torch.unique(users), torch.unique(pos) + 40
    cl = nce(final[uu], view[uu]) + nce(final[ii], view[ii])
    reg = 1e-2 * 0.5 * (e0[users].pow(2).sum() + e0[40 + pos].pow(2).sum() + e0[40 + neg].pow(2).sum()) / 25
    direct = bpr + 0.2 * cl + reg
    direct.backward()
    np.testing.assert_allclose(loss.item(), direct.item(), rtol=1e-5)
    np.testing.assert_allclose(grad_model.numpy(), e0.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_simgcl_noise_offsets_at_rows_equal_the_full_offsets(n_layers):
    from recsys_coldstart.graph import lightgcn_layers, normalized_adjacency
    from recsys_coldstart.pretrain.simgcl import csr_row_slice, noise_offsets

    ui = sp.random(30, 20, density=0.2, format="csr", random_state=0)
    adj = normalized_adjacency(ui)
    base = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    layers = lightgcn_layers(adj, base, n_layers)
    g = torch.Generator().manual_seed(7)
    draws = [torch.rand((2, 50, 8), generator=g) for _ in range(n_layers)]
    full1, full2 = noise_offsets(adj, layers, 0.1, None, uniforms=draws)
    # the draws of the full computation reproduce noise_offsets' own generator stream
    gen1, gen2 = noise_offsets(adj, layers, 0.1, torch.Generator().manual_seed(7))
    np.testing.assert_allclose(gen1.numpy(), full1.numpy(), atol=1e-6)
    np.testing.assert_allclose(gen2.numpy(), full2.numpy(), atol=1e-6)
    rows = torch.tensor([3, 0, 41, 17, 29])
    sub1, sub2 = noise_offsets(adj, layers, 0.1, None, rows=rows, uniforms=draws)
    np.testing.assert_allclose(sub1.numpy(), full1[rows].numpy(), atol=1e-6)
    np.testing.assert_allclose(sub2.numpy(), full2[rows].numpy(), atol=1e-6)
    np.testing.assert_array_equal(csr_row_slice(adj, rows).to_dense().numpy(), adj.to_dense()[rows].numpy())
