"""tools/clustergan_curve.py, the tool behind docs/PORTS.md's ClusterGAN curves: one row per kept
checkpoint (and the best/ copy) with the G+E updates it had made and its test clustering, rows reused
when the JSON exists, scored again with recompute."""

import importlib.util
import math
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from cogan_tf import config as C
from cogan_tf import data, train
from cogan_tf.clustergan import ClusterGAN
from tests.conftest import ROOT, train_config, write_fake_dataset

KEYS = ("acc", "purity", "nmi", "ari", "kmeans_acc", "kmeans_purity", "kmeans_nmi", "kmeans_ari")


def load_tool():
    spec = importlib.util.spec_from_file_location("clustergan_curve", os.path.join(ROOT, "tools", "clustergan_curve.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_curve_scores_every_checkpoint_and_reuses_its_rows(tmp_path):
    tool = load_tool()
    data_dir = write_fake_dataset(tmp_path / "data", n_train=60, n_test=30)
    # 48 training images (12 held out), 12 steps of 4, a checkpoint every 3 steps and at the end, all kept.
    cfg = train_config(tmp_path, model="clustergan", batch_size=4, learning_rate=1e-4, beta1=0.5, beta2=0.9,
                       data_dir=data_dir, val_size=12, save_every=3, keep_checkpoints=None, sample_every_epochs=0)
    gan = ClusterGAN(C.ClusterGanConfig(), cfg)
    train.fit(gan, log=lambda s: None)
    ckpt_dir = str(tmp_path / "checkpoint" / "clustergan_mnist_4_28")
    saved = tf.train.get_checkpoint_state(ckpt_dir).all_model_checkpoint_paths
    assert len(saved) >= 4

    logs = []
    out = str(tmp_path / "curve")
    result = tool.curve(str(tmp_path / "checkpoint"), data_dir, out, log=logs.append)
    rows = result["rows"]
    kept = [r for r in rows if r["kind"] == "checkpoint"]
    assert [os.path.join(ckpt_dir, r["checkpoint"]) for r in kept] == list(saved)
    assert [r["kind"] for r in rows].count("best") == 1
    # The original recipe moves G+E on every 5th batch from the first: after s steps, ceil(s / 5) updates.
    for r in rows:
        assert r["g_iterations"] == math.ceil(r["step"] / 5), r
        assert all(0.0 <= r[k] <= 1.0 for k in ("acc", "purity", "kmeans_purity")), r
    # A restored checkpoint scores as the live model did: the last row is the trained network's own report.
    x, y = data.load_split(data_dir, "mnist", "test")
    live = gan.cluster_report(x, y)
    last = max(kept, key=lambda r: r["step"])
    assert last["step"] == 12
    for k in KEYS:
        np.testing.assert_allclose(last[k], live[k], atol=1e-6, err_msg=k)
    best = next(r for r in rows if r["kind"] == "best")
    twin = next(r for r in kept if r["step"] == best["step"])
    assert {k: best[k] for k in KEYS} == {k: twin[k] for k in KEYS}
    assert result["run"]["val_size"] == 12 and result["test_images"] == 30
    assert [h["step"] for h in result["validation"]["history"]] == [r["step"] for r in kept]
    assert Image.open(out + ".png").size[0] > 0
    assert sum("G iters" in line for line in logs) == len(rows)

    # Run again: every row comes from the JSON (nothing scored); with recompute every row is scored again.
    logs.clear()
    again = tool.curve(str(tmp_path / "checkpoint"), data_dir, out, log=logs.append)
    assert again["rows"] == rows and not any("G iters" in line for line in logs)
    logs.clear()
    tool.curve(str(tmp_path / "checkpoint"), data_dir, out, recompute=True, log=logs.append)
    assert sum("G iters" in line for line in logs) == len(rows)
