"""ClusterGAN port (cogan_tf/clustergan.py): coupled weight decay, the 1:5 update schedule, outputs, resume,
clustering evaluation and the SavedModel's two signatures; --recipe paper's G+E update (no weight decay), the
validation split and the best checkpoint. (Its networks and losses: tests/test_clustergan_networks.py,
test_losses.py; --recipe paper's training: test_clustergan_paper.py; main.py's ClusterGAN flags: test_main.py.)"""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C
from cogan_tf import runner
from cogan_tf.errors import UsageError
from cogan_tf.clustergan import ClusterGAN
from cogan_tf.losses import coupled_weight_decay, generator_encoder_loss
from tests.conftest import (fake_images, fit, quiet, run_without_cogan_tf, train_config,
                            write_fake_dataset)

CFG = C.ClusterGanConfig()
PAPER = C.clustergan_config("paper")


def train_cfg(tmp_path, **kw):
    return train_config(tmp_path, **{**dict(model="clustergan", batch_size=4, learning_rate=1e-4, beta1=0.5, beta2=0.9, sample_every_epochs=1), **kw})


def built_gan(tmp_path, model_cfg=CFG, **kw):
    gan = ClusterGAN(model_cfg, train_cfg(tmp_path, **kw), arrays=fake_images(40))
    keras.utils.set_random_seed(gan.seed)
    gan.build()
    return gan


# --- the training step: coupled weight decay, the 1:5 schedule, one latent per batch --------------------

@pytest.fixture(scope="module")
def eleven_steps(tmp_path_factory):
    """A GAN built and stepped 11 times (compiled once for the tests below), with what each step moved."""
    gan = built_gan(tmp_path_factory.mktemp("steps"))
    step = tf.function(gan.train_step)
    x = gan.training_arrays()[0]
    watched = {"g": gan.generator.h1.kernel, "e": gan.encoder.h3.kernel, "d": gan.discriminator.h3.kernel,
               "g_stats": gan.generator.bn1.moving_mean}
    rec = {"first_before": [v.numpy().copy() for v in gan.ge_vars + gan.d_vars],
           "h0_bias": gan.generator.h0.bias.numpy().copy(), "rng": gan.rng.state.numpy().copy(),
           "moved": [], "outputs": []}
    for i in range(11):
        before = {k: v.numpy().copy() for k, v in watched.items()}
        out = step(x[4 * (i % 10):4 * (i % 10) + 4])
        rec["outputs"].append({k: float(v) for k, v in out.items()})
        rec["moved"].append({k: not np.array_equal(before[k], v.numpy()) for k, v in watched.items()})
        if i == 0:
            rec["first_after"] = [v.numpy().copy() for v in gan.ge_vars + gan.d_vars]
            rec["h0_bias_after"] = gan.generator.h0.bias.numpy().copy()
            rec["rng_after"] = gan.rng.state.numpy().copy()
            rec["last_ge"] = {k: float(v.numpy()) for k, v in gan.last_ge.items()}
    rec["gan"] = gan
    return rec


def test_coupled_weight_decay_is_l2_through_adam(eleven_steps):
    g, v = tf.constant([1.0, -2.0]), tf.Variable([3.0, 4.0])
    np.testing.assert_allclose(coupled_weight_decay([g, None], [v, v], 0.5)[0].numpy(), [2.5, 0.0])
    assert coupled_weight_decay([None], [v], 0.5) == [None]
    # The biases of G's layers before a BatchNorm get no gradient from the loss (BatchNorm removes any
    # constant shift), so the first G+E update moves them by the decay alone. Through Adam's first
    # step that is ~lr = 1e-4 toward 0 (the update is ~lr * sign(grad)); AdamW's decoupled decay would
    # move them by lr * wd * w ~ 1e-10, and no decay would leave the sign to float noise.
    b0, b1 = eleven_steps["h0_bias"], eleven_steps["h0_bias_after"]
    delta = b1 - b0
    big = np.abs(b0) > 0.05
    assert big.sum() > 100
    np.testing.assert_array_equal(np.sign(delta[big]), -np.sign(b0[big]))
    assert np.all((np.abs(delta[big]) > 0.9e-4) & (np.abs(delta[big]) < 1.01e-4))


def test_one_to_five_schedule(eleven_steps):
    gan = eleven_steps["gan"]
    ge_steps = [i for i, m in enumerate(eleven_steps["moved"]) if m["g"]]
    assert ge_steps == [0, 5, 10]
    assert int(gan.d_opt.iterations) == 11 and int(gan.ge_opt.iterations) == 3  # 1 G+E : 5 D
    for m in eleven_steps["moved"]:
        assert m["g"] == m["e"]  # G and E are one player
        assert m["d"]  # D every batch
        assert m["g_stats"]  # G runs in training mode in D's step too: its BatchNorm statistics move
    # Between G+E updates the step reports the latest G+E losses.
    outs = eleven_steps["outputs"]
    assert outs[1]["ge_loss"] == outs[4]["ge_loss"] == outs[0]["ge_loss"] == pytest.approx(
        eleven_steps["last_ge"]["ge_loss"])
    assert outs[5]["ge_loss"] != outs[4]["ge_loss"]
    assert set(outs[0]) == {"d_loss", "d_loss_real", "d_loss_fake", "ge_loss", "ge_adv_loss", "zn_loss", "zc_loss"}
    assert all(np.isfinite(v) for o in outs for v in o.values())


def test_first_step_changes_every_trainable_weight_and_draws_one_latent(eleven_steps):
    gan = eleven_steps["gan"]
    for v, b, a in zip(gan.ge_vars + gan.d_vars, eleven_steps["first_before"], eleven_steps["first_after"]):
        assert not np.array_equal(a, b), v.path
    # One (z_n, class) draw per batch, shared by the G+E and the D update.
    replay = tf.random.Generator.from_state(eleven_steps["rng"], gan.rng.algorithm)
    replay.normal([4, 30])
    replay.uniform([4], 0, 10, dtype=tf.int32)
    np.testing.assert_array_equal(replay.state.numpy(), eleven_steps["rng_after"])


# --- the loop: outputs, resume, seed ------------------------------------------------------------------

def test_epoch_outputs_and_exact_resume(tmp_path, weights):
    x = fake_images(20)  # 5 steps of 4 per epoch: G+E updates at steps 0 and 5
    logs = []
    full = runner.run(CFG, train_cfg(tmp_path / "a", epoch=2), arrays=x, log=logs.append)
    runner.run(CFG, train_cfg(tmp_path / "b", epoch=2, max_steps=3), arrays=x, log=quiet)
    logs_b = []
    resumed = runner.run(CFG, train_cfg(tmp_path / "b", epoch=2), arrays=x, log=logs_b.append)
    assert any("Load SUCCESS" in line and "step 3" in line for line in logs_b)
    assert int(resumed.ge_opt.iterations) == int(full.ge_opt.iterations) == 2
    # Equal up to float noise: TF's multithreaded CPU kernels are not bit-reproducible under load (this
    # comparison failed bit-exactly in 2 of ~15 runs). A wrong resume (another batch or z) moves the
    # weights by ~lr = 1e-4 per step, far outside this tolerance.
    for a, b in zip(weights(full, optimizers=True), weights(resumed, optimizers=True)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(full.rng.state.numpy(), resumed.rng.state.numpy())
    for k in full.last_ge:
        assert float(full.last_ge[k].numpy()) == pytest.approx(float(resumed.last_ge[k].numpy()), rel=1e-4)

    from PIL import Image
    expected = ["enc_cross_entropy_loss.png", "enc_mse_loss.png", "generator_results.gif", "img_0.png",
                "img_1.png", "loss.png", "losses.json"]
    for root in (tmp_path / "a", tmp_path / "b"):
        out = root / "samples" / "clustergan"
        assert sorted(os.listdir(out)) == expected
        with Image.open(out / "img_1.png") as im:
            assert im.size == (280, 280)  # 10 rows (one per class) of 10
        with Image.open(out / "generator_results.gif") as im:
            assert im.n_frames == 2
        hist = json.loads((out / "losses.json").read_text())["epochs"]
        assert set(hist["1"]) == {"ge_loss", "d_loss", "zn_loss", "zc_loss", "enc_mse_loss", "enc_ce_loss", "grid"}
    ha = json.loads((tmp_path / "a/samples/clustergan/losses.json").read_text())["epochs"]
    hb = json.loads((tmp_path / "b/samples/clustergan/losses.json").read_text())["epochs"]
    # The encoder check after each epoch uses noise from (seed, epoch): the same in both runs.
    assert ha["1"]["enc_mse_loss"] == pytest.approx(hb["1"]["enc_mse_loss"], rel=1e-4)
    # 5 steps per epoch: the one G+E update's loss is reported for all 5 batches, so the epoch mean of
    # the reported values is that update's loss.
    assert ha["1"]["ge_loss"] == pytest.approx(hb["1"]["ge_loss"], rel=1e-4)
    assert any(line.startswith("epoch 1: epoch_ge_loss: ") for line in logs)
    ck = tmp_path / "a" / "checkpoint" / "clustergan_mnist_4_28"
    names = [n for n, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(ck)))]
    assert sum("moving_mean" in n for n in names) == 3 and sum("moving_variance" in n for n in names) == 3
    assert sum(n.startswith("last_ge_losses/") for n in names) == 4


def test_class_ordered_display_noise_and_seed(tmp_path):
    a = ClusterGAN(CFG, train_cfg(tmp_path), arrays=fake_images(40))
    b = ClusterGAN(CFG, train_cfg(tmp_path), arrays=fake_images(40))
    c = ClusterGAN(CFG, train_cfg(tmp_path, seed=4), arrays=fake_images(40))
    assert a.sample_zn.shape == (100, 30)
    np.testing.assert_array_equal(a.sample_zn, b.sample_zn)
    assert not np.allclose(a.sample_zn, c.sample_zn)
    np.testing.assert_array_equal(a.sample_classes.reshape(10, 10), np.repeat(np.arange(10)[:, None], 10, 1))


# --- evaluation and export ----------------------------------------------------------------------------

def test_cluster_report_scores_the_encoder_argmax(tmp_path):
    gan = ClusterGAN(CFG, train_cfg(tmp_path), arrays=fake_images(40))
    labels = np.repeat(np.arange(10), 3)
    perm = np.random.default_rng(1).permutation(10)
    gan.encode = lambda x: (np.zeros((30, 30)), np.eye(10)[perm[labels]])  # an encoder that clusters perfectly
    report = gan.cluster_report(np.zeros((30, 28, 28, 1), np.uint8), labels)
    assert report["acc"] == report["nmi"] == pytest.approx(1.0) and report["ari"] == pytest.approx(1.0)
    # K-means on [z_n, softmax] (the paper's protocol) finds the same ten groups.
    assert report["kmeans_purity"] == report["kmeans_acc"] == pytest.approx(1.0)
    assert report["kmeans_nmi"] == pytest.approx(1.0) and report["kmeans_ari"] == pytest.approx(1.0)
    assert report["cluster_sizes"] == [3] * 10 and report["kmeans_cluster_sizes"] == [3] * 10
    assert report["cluster_to_label"] == {str(perm[k]): k for k in range(10)}


SAVED_MODEL_CHECK = r"""
import sys, numpy as np, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
a = np.load(sys.argv[2])
out = m.signatures["serving_default"](z_n=tf.constant(a["z_n"]), z_c=tf.constant(a["z_c"]))
enc = m.signatures["encode"](images=tf.constant(a["x"]))
np.savez(sys.argv[3], images=out["images"].numpy(), z_n=enc["z_n"].numpy(), probs=enc["class_probs"].numpy())
print(sorted(out), sorted(enc), "cogan_tf" in sys.modules)
"""


def test_evaluate_clusters_test_set_and_saved_model_round_trip(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=30)
    cfg = train_cfg(tmp_path, data_dir=data_dir, max_steps=2)
    runner.run(CFG, cfg, log=quiet)
    logs = []
    gan = runner.run(CFG, cfg, is_train=False, log=logs.append)
    report = json.loads((tmp_path / "evaluate" / "clustergan_clustering.json").read_text())
    assert {"acc", "nmi", "ari", "n", "cluster_sizes", "cluster_to_label", "dataset", "step", "purity",
            "kmeans_purity", "kmeans_acc", "kmeans_nmi", "kmeans_ari", "checkpoint"} <= set(report)
    assert report["n"] == 30 and report["step"] == 2 and sum(report["cluster_sizes"]) == 30
    assert report["checkpoint"]["kept_by"] == "latest" and report["checkpoint"]["path"].endswith("ClusterGAN.model-3")
    from cogan_tf import data
    from cogan_tf import clustering
    x, y = data.load_split(data_dir, "mnist", "test")
    z_n, probs = gan.encode(x)
    assert report["acc"] == pytest.approx(clustering.cluster_acc(y, np.argmax(probs, axis=1)))
    km = clustering.kmeans_clusters(np.concatenate([z_n, probs], 1), 10, seed=gan.seed)
    assert report["kmeans_purity"] == pytest.approx(clustering.purity(y, km))
    assert any(line.startswith(" [*] clustering of the 30 mnist test images (step 2): ACC ")
               and "K-means purity" in line for line in logs)
    assert os.path.isfile(tmp_path / "evaluate" / "clustergan" / "test_00.png")

    rng = np.random.default_rng(0)
    z_n = rng.standard_normal((6, 30)).astype(np.float32)
    z_c = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 6)]
    xf = x[:6].astype(np.float32) / 255
    np.savez(tmp_path / "in.npz", z_n=z_n, z_c=z_c, x=xf)
    last = run_without_cogan_tf(SAVED_MODEL_CHECK, tmp_path / "export" / "clustergan", tmp_path / "in.npz",
                                tmp_path / "out.npz", cwd=tmp_path)
    assert last == "['images'] ['class_probs', 'z_n'] False"
    got = np.load(tmp_path / "out.npz")
    images = gan.generator(tf.constant(np.concatenate([z_n, z_c], 1)), training=False).numpy()
    assert got["images"].shape == (6, 28, 28, 1)
    np.testing.assert_allclose(got["images"], images, atol=1e-5)
    np.testing.assert_allclose(got["images"], gan.generate(z_n, np.argmax(z_c, 1)), atol=1e-5)
    z_hat, probs = gan.encode(xf)
    np.testing.assert_allclose(got["z_n"], z_hat, atol=1e-5)
    np.testing.assert_allclose(got["probs"], probs, atol=1e-6)
    np.testing.assert_allclose(got["probs"].sum(1), 1, atol=1e-5)


def test_evaluate_without_checkpoint_is_refused(tmp_path):
    from cogan_tf.errors import UsageError
    with pytest.raises(UsageError, match="no checkpoint in .*clustergan_mnist_4_28: train first"):
        runner.run(CFG, train_cfg(tmp_path), is_train=False, arrays=fake_images(40), log=quiet)


def test_zn_sigma_scales_every_z_n_and_travels_with_the_export(tmp_path):
    """--zn_sigma (the ClusterGAN paper's 0.1): the training latent, the display noise and the
    encoder check draw z_n ~ N(0, sigma^2); the SavedModel carries sigma and the evaluation samples
    with it."""
    from cogan_tf.evaluate import samples as sampling
    m = C.ClusterGanConfig(zn_sigma=0.1)
    gan = ClusterGAN(m, train_cfg(tmp_path), arrays=fake_images(40))
    keras.utils.set_random_seed(gan.seed)
    gan.build()
    z_n, _, _ = gan.sample_latent(20000)
    assert float(np.std(z_n.numpy())) == pytest.approx(0.1, rel=0.02)
    assert float(np.std(gan.sample_zn)) == pytest.approx(0.1, rel=0.1)
    default = ClusterGAN(CFG, train_cfg(tmp_path), arrays=fake_images(40))
    np.testing.assert_allclose(gan.sample_zn, 0.1 * default.sample_zn, rtol=1e-6)  # same draws, scaled

    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=30)
    cfg = train_cfg(tmp_path, data_dir=data_dir, max_steps=2)
    runner.run(m, cfg, log=quiet)
    loaded = tf.saved_model.load(str(tmp_path / "export" / "clustergan"))
    assert float(loaded.zn_sigma.numpy()) == pytest.approx(0.1)
    seen = []
    serve = loaded.signatures["serving_default"]

    class SpySignature:  # serving_default, recording the z_n the evaluation feeds it
        structured_input_signature = serve.structured_input_signature
        structured_outputs = serve.structured_outputs

        def __call__(self, **kw):
            seen.append(kw["z_n"].numpy())
            return serve(**kw)

    class Spy:  # the loaded model with that signature
        zn_sigma = loaded.zn_sigma
        signatures = {**loaded.signatures, "serving_default": SpySignature()}

    sampling.generate(Spy(), n=2000, seed=0, source="spy")
    assert float(np.std(np.concatenate(seen))) == pytest.approx(0.1, rel=0.05)
    # A resume with another sigma is refused in one line naming the flag.
    with pytest.raises(UsageError, match=r"trained with zn_sigma=0.1 \(here 1.0, flag --zn_sigma\)"):
        runner.run(CFG, dataclasses.replace(cfg, max_steps=3), log=quiet)


# --- --recipe paper: the ClusterGAN paper authors' training ---------------------------------------------


@pytest.mark.parametrize("model_cfg, decay", [(PAPER, 0.0), (CFG, 2.5e-5)])
def test_paper_recipe_feeds_adam_the_loss_gradient_alone(tmp_path, model_cfg, decay):
    """What G+E's Adam receives is the gradient of the G+E loss itself under --recipe paper (the
    authors' l2_regularizer terms never reach their loss); the original adds 2.5e-5 * w."""
    gan = built_gan(tmp_path, model_cfg)
    assert gan.ge_opt.weight_decay is None and gan.d_opt.weight_decay is None  # no decoupled decay either
    rng = np.random.default_rng(0)
    z_n = tf.constant(model_cfg.zn_sigma * rng.standard_normal((4, 30)), tf.float32)
    classes = tf.constant([0, 3, 7, 9])
    z = tf.concat([z_n, tf.one_hot(classes, 10)], axis=1)
    with tf.GradientTape() as tape:
        fake = gan.generator(z, training=True)
        zn_hat, logits = gan.encoder(fake, training=True)
        loss = generator_encoder_loss(gan.discriminator.logits(fake, training=True), zn_hat, z_n, logits, classes,
                                      critic=model_cfg.critic)["ge_loss"]
    reference = tape.gradient(loss, gan.ge_vars)
    fed = []
    gan.ge_opt.apply_gradients = fed.extend  # capture what the update hands to Adam
    gan.ge_update(z, z_n, classes)
    fed = {id(v): g.numpy() for g, v in fed}
    checked = 0
    for g, v in zip(reference, gan.ge_vars):
        if g is None:
            continue
        expected = g.numpy() + decay * v.numpy()
        np.testing.assert_allclose(fed[id(v)], expected, rtol=1e-5, atol=1e-12, err_msg=v.path)
        checked += 1
    assert checked == len(gan.ge_vars)


# --- the validation split and the best checkpoint (--val_size) ------------------------------------------

def scripted_reports(purities, calls):
    """cluster_report stand-in: the validation scores come from a script, so which checkpoint is best
    is known in advance; records the images it was given."""
    it = iter(purities)

    def report(x, y):
        calls.append((np.asarray(x).copy(), np.asarray(y).copy()))
        p = next(it)
        return {"acc": p / 2, "purity": p / 2, "nmi": 0.1, "ari": 0.1, "kmeans_acc": p, "kmeans_purity": p,
                "kmeans_nmi": 0.2, "kmeans_ari": 0.2}
    return report


def test_validation_split_is_held_out_and_the_best_checkpoint_is_kept(tmp_path):
    from cogan_tf import data
    data_dir = write_fake_dataset(tmp_path / "data", n_train=60, n_test=30)
    # 48 training images, 12 steps of 4; checkpoints at counters 2, 5, 8, 11 (steps 1, 4, 7, 10) and at
    # the end (step 12, counter 13); all kept, to compare the best copy with the original.
    cfg = train_cfg(tmp_path, data_dir=data_dir, val_size=12, save_every=3, keep_checkpoints=None,
                    sample_every_epochs=0)
    gan = ClusterGAN(CFG, cfg)
    calls = []
    gan.cluster_report = scripted_reports([0.2, 0.7, 0.5, 0.7, 0.1], calls)  # best: step 4 (a tie keeps the first)
    logs = []
    fit(gan, log=logs.append)

    # Held out: the 12 validation images are not trained on, and with the 48 make up the training split.
    x_all, y_all = data.load_split(data_dir, "mnist", "train")
    train_x = gan.training_arrays()[0]
    val_x, val_y = gan.validation_set()
    assert len(train_x) == 48 and len(val_x) == 12 and len(calls) == 5
    for x, y in calls:
        np.testing.assert_array_equal(x, val_x)
        np.testing.assert_array_equal(y, val_y)
    as_set = lambda a: {r.tobytes() for r in a}  # noqa: E731
    assert len(as_set(x_all)) == 60  # random images: all different
    assert not as_set(train_x) & as_set(val_x) and as_set(train_x) | as_set(val_x) == as_set(x_all)
    tr_idx, va_idx = data.holdout_split(60, 12, gan.seed)
    np.testing.assert_array_equal(val_y, y_all[va_idx])
    assert not np.array_equal(va_idx, data.holdout_split(60, 12, gan.seed + 1)[1])  # seeded

    ckpt_dir = tmp_path / "checkpoint" / "clustergan_mnist_4_28"
    best = json.loads((ckpt_dir / "best" / "best.json").read_text())
    assert best["selected_by"] == "kmeans_purity" and best["val_size"] == 12
    assert [h["step"] for h in best["history"]] == [1, 4, 7, 10, 12]
    assert [h["kmeans_purity"] for h in best["history"]] == [0.2, 0.7, 0.5, 0.7, 0.1]
    assert best["best"]["step"] == 4 and best["best"]["checkpoint"] == os.path.join("best", "ClusterGAN.model-5")
    assert best["best"]["g_iterations"] == 1  # G+E moved at step 0 only, of steps 0..3
    # Only the best one is left in best/ (the step-1 copy was removed when step 4 beat it).
    assert sorted(os.listdir(ckpt_dir / "best")) == ["ClusterGAN.model-5.data-00000-of-00001",
                                                     "ClusterGAN.model-5.index", "best.json"]
    kept = tf.train.load_checkpoint(str(ckpt_dir / "best" / "ClusterGAN.model-5"))
    same = tf.train.load_checkpoint(str(ckpt_dir / "ClusterGAN.model-5"))
    names = [n for n, _ in tf.train.list_variables(str(ckpt_dir / "ClusterGAN.model-5"))]
    assert len(names) > 50
    for n in names:
        np.testing.assert_array_equal(kept.get_tensor(n), same.get_tensor(n), err_msg=n)
    assert any("best: step 4 (K-means purity 0.7000) [kept]" in line for line in logs)

    saved = json.loads((ckpt_dir / "config.json").read_text())
    assert saved["val_size"] == 12 and saved["model_config"]["recipe"] == "original"
    with pytest.raises(UsageError, match="val_size=12, not 8"):
        runner.run(CFG, dataclasses.replace(cfg, val_size=8), log=quiet)

    # --is_train False evaluates the kept checkpoint on the test set, and says so.
    logs = []
    runner.run(CFG, cfg, is_train=False, log=logs.append)
    report = json.loads((tmp_path / "evaluate" / "clustergan_clustering.json").read_text())
    assert report["step"] == 4 and report["checkpoint"]["step"] == 4 and report["checkpoint"]["latest_step"] == 12
    assert report["checkpoint"]["kept_by"] == "best validation kmeans_purity (12 images)"
    assert report["checkpoint"]["validation"]["kmeans_purity"] == 0.7 and report["n"] == 30
    assert any(line.startswith(" [*] evaluating the best checkpoint by validation K-means purity: ") for line in logs)
    # So does python -m cogan_tf.evaluate --checkpoint_dir (the run rebuilt from its config.json).
    gan = runner.gan_from_checkpoint(str(tmp_path / "checkpoint"), data_dir, log=quiet)
    assert gan.train_cfg.val_size == 12 and gan.restored_from["step"] == 4 and int(gan.ge_opt.iterations) == 0
    assert gan.restored_from["path"] == str(ckpt_dir / "best" / "ClusterGAN.model-5")

    # The clustering curve: every checkpoint and the best copy, against G+E's update count (the
    # original updates G+E at steps 0, 5, 10: 1 after step 1 and 4, 2 after 7 and 10, 3 after 12).
    from cogan_tf.evaluate import clustergan_curve as tool
    lines = []
    out = str(tmp_path / "curve")
    result = tool.curve(str(tmp_path / "checkpoint"), data_dir, out, log=lines.append)
    rows = result["rows"]
    assert [(r["kind"], r["step"], r["g_iterations"]) for r in rows] == [
        ("checkpoint", 1, 1), ("checkpoint", 4, 1), ("checkpoint", 7, 2), ("checkpoint", 10, 2),
        ("checkpoint", 12, 3), ("best", 4, 1)]
    assert rows[5]["kmeans_purity"] == rows[1]["kmeans_purity"]  # the best copy is the step-4 checkpoint
    assert result["run"]["val_size"] == 12 and result["validation"]["best"]["step"] == 4
    assert len(lines) == 7 and os.path.getsize(out + ".png") > 10_000
    lines = []
    assert tool.curve(str(tmp_path / "checkpoint"), data_dir, out, log=lines.append)["rows"] == rows
    assert len(lines) == 1  # a rerun reuses the scored rows
    lines = []
    assert tool.curve(str(tmp_path / "checkpoint"), data_dir, out, recompute=True, log=lines.append)["rows"] == rows
    assert len(lines) == 7  # --recompute scores every row again, to the same figures


# --- the held-out images (--val_size) ----------------------------------------------------------------

def test_val_size_larger_than_the_data_is_refused(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=20, n_test=10)
    with pytest.raises(UsageError, match="--val_size=18: leaves fewer than one batch of the 20 mnist training"):
        runner.run(CFG, train_cfg(tmp_path, data_dir=data_dir, val_size=18), log=quiet)
    with pytest.raises(UsageError, match="--val_size=8: the validation clustering needs at least 10 images"):
        runner.run(CFG, train_cfg(tmp_path, data_dir=data_dir, val_size=8), log=quiet)
