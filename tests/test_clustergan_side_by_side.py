"""cogan_tf/evaluate/clustergan_side_by_side.py: this port's clustering curves beside another code's
encodings, every point scored by the same function: the port's own checkpoints encoded give the port's
numbers exactly; the paper's selection on both sides; refusals of bad encodings."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import checkpoints, runner
from cogan_tf.data import load_split
from cogan_tf.errors import DataError, UsageError
from cogan_tf.evaluate import clustergan_curve, clustergan_side_by_side
from cogan_tf.gan import Loop
from tests.conftest import quiet, write_fake_dataset
from tests.test_clustergan import train_cfg
from tests.test_clustergan_paper import PAPER


def test_side_by_side_scores_other_encodings_as_the_port_scores_its_own(tmp_path):
    tool = clustergan_side_by_side
    data_dir = write_fake_dataset(tmp_path / "data", n_train=48, n_test=30)
    # 15 critic batches = 3 G+E updates; a checkpoint after 1 and after 2 updates, and at the end
    cfg = train_cfg(tmp_path / "p", data_dir=data_dir, dataset="mnist", seed=3, epoch=2, max_steps=15, save_every=5,
                    keep_checkpoints=None, sample_every_epochs=0, val_size=12)
    runner.run(PAPER, cfg, log=quiet)
    port_dir = str(tmp_path / "p" / "checkpoint")
    # The other side: the port's own checkpoints encoded into the .npz format, logits (not softmax) as other
    # code writes them. Scored by the tool, they must give the port's numbers exactly.
    gan = runner.gan_from_checkpoint(port_dir, data_dir, "clustergan", log=quiet)
    x, y = load_split(data_dir, "mnist", "test")
    ckpt_dir = os.path.join(port_dir, "clustergan_mnist_4_28")
    paths = tf.train.get_checkpoint_state(ckpt_dir).all_model_checkpoint_paths
    encodings = []
    x_val, y_val = gan.validation_set()
    for i, path in enumerate(paths):
        checkpoints.restore_weights(Loop(gan, gan.train_cfg), gan, path)
        enc = {}
        for split, images, labels in (("test", x, y), ("val", x_val, y_val)):
            z_n, logits = gan.encoder(tf.constant(images.astype(np.float32) / 255.0), training=False)
            enc.update({f"{split}_zn": z_n.numpy(), f"{split}_logits": logits.numpy(),
                        f"{split}_labels": labels.astype(np.int64)})
        out = tmp_path / f"dump_{i}.npz"
        np.savez(out, ge_updates=np.int64(clustergan_curve.g_iterations(path)),
                 info=json.dumps({"seed": 3}), **enc)
        encodings.append(str(out))
    lines = []
    summary = tool.curves(tool.check_inputs([port_dir], encodings, data_dir, str(tmp_path / "sbs"), select=True),
                          data_dir, log=lines.append)
    updates = [r["ge_updates"] for r in summary["rows"]]
    assert updates == [0, 1, 2, 3]  # the step-1 save (no update yet), steps 6 and 11, the end
    for row in summary["rows"]:
        for key in tool.CURVE_KEYS:
            assert row["port"][key]["mean"] == pytest.approx(row["other"][key]["mean"], abs=1e-6)
            assert row["port_mean_within_other_range"][key]
    assert lines[-1].startswith("port mean within the other side's range at 12 of 12 points")
    # The paper's protocol at the end: the port's run scored at its latest checkpoint on its own validation split,
    # the other side from its validation encodings; the same model, so the same numbers.
    final = summary["final"]
    assert final["ge_updates"] == 3 and final["port"]["n"] == final["other"]["n"] == 1
    for side in ("port", "other"):
        assert final[side]["best_seed"] == 3 and final[side]["mean_std"]["kmeans_nmi"]["std"] == 0
    assert final["port"]["best_validation_kmeans_purity"] == pytest.approx(final["other"]["best_validation_kmeans_purity"])
    assert final["port"]["best_test"] == pytest.approx(final["other"]["best_test"])
    table = (tmp_path / "sbs.md").read_text().splitlines()
    assert table[2].startswith("| G+E updates | score |") and len(table) == 4 + 4 * len(tool.PLOT_KEYS) + 7
    assert table[-2].startswith("| this port | 1 | seed 3 (") and table[-1].startswith("| the authors' code | 1 | seed 3 (")
    sel = tool.selection([{"seed": s, "validation": {"kmeans_purity": v}, "test": {k: t for k in tool.FINAL_KEYS}}
                          for s, v, t in ((0, 0.5, 0.9), (1, 0.7, 0.6), (2, 0.7, 0.3))])
    assert sel["best_seed"] == 1 and sel["best_test"]["kmeans_ari"] == 0.6  # the first on a tie
    assert sel["mean_std"]["kmeans_purity"]["mean"] == pytest.approx(0.6)
    assert (tmp_path / "sbs.png").stat().st_size > 0 and json.loads((tmp_path / "sbs.json").read_text())["rows"]

    # The range check can fail: a port mean outside the other runs' min..max is marked.
    def pts(values):
        return [{"ge_updates": 10, "seed": s, "scores": {"test": {k: v for k in tool.CURVE_KEYS}}}
                for s, v in enumerate(values)]
    assert not tool.summarize(pts([0.5, 0.52]), pts([0.6, 0.7]))["rows"][0][
        "port_mean_within_other_range"]["kmeans_purity"]
    assert tool.summarize(pts([0.5, 0.7]), pts([0.4, 0.7]))["rows"][0][
        "port_mean_within_other_range"]["kmeans_purity"]
    with pytest.raises(UsageError, match="no G\\+E update count is on both sides"):
        tool.summarize(pts([0.5]), [{**p, "ge_updates": 20} for p in pts([0.5])])

    # Encodings of other images, or not in the format, are refused in one line naming the file.
    bad = tmp_path / "bad.npz"
    np.savez(bad, ge_updates=np.int64(1), test_zn=np.zeros((30, 30)), test_logits=np.zeros((30, 10)),
             test_labels=(y[::-1] + 1) % 10, info=json.dumps({"seed": 3}))
    with pytest.raises(DataError, match="bad.npz: its test_labels are not the dataset's test labels"):
        tool.check_inputs([port_dir], [str(bad)], data_dir, str(tmp_path / "x"))
    np.savez(bad, ge_updates=np.int64(1), test_zn=np.zeros((30, 30)), info="{}")
    with pytest.raises(DataError, match="bad.npz: lacks test_logits, test_labels"):
        tool.read_encoding(str(bad))
    np.savez(bad, ge_updates=np.int64(1), test_zn=np.zeros((30, 30)), test_logits=np.zeros((30, 10)),
             test_labels=y, info="{}")
    with pytest.raises(DataError, match="bad.npz: its info is not a JSON object with the run's seed"):
        tool.read_encoding(str(bad))
