"""Evaluation: grid slicing, the three kinds of
SavedModel (CoGAN from the port, vanilla and ClusterGAN from hand-built modules), checkpoints, reports,
and the command line's refusals."""

import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import cli, images, published, record as record_lib, runner
from cogan_tf.evaluate import classifier, grid_compare as gc, image_metrics, reports, samples as sampling, scoring
from cogan_tf.evaluate.__main__ import LIST_FLAGS
from cogan_tf.errors import UsageError
from cogan_tf.errors import DataError
from tests.conftest import ROOT, error_lines, out_cases, run_cli, without_tensorflow
from tests.test_classifier import SMALL, learnable_digits, write_learnable_dataset


def templates():
    """The clean class templates behind tests.test_classifier.learnable_digits, float (10, 28, 28, 1)."""
    t = np.zeros((10, 28, 28, 1), np.float32)
    for k in range(10):
        r, c = divmod(k, 4)
        t[k, r * 9 + 1:r * 9 + 8, c * 7:c * 7 + 7] = 1.0
    return t


def test_batches_have_no_tiny_remainder():
    batches = list(sampling._batches(1001, 500))
    assert [b.stop - b.start for b in batches] == [334, 334, 333]
    assert [b.start for b in batches] == [0, 334, 668] and batches[-1].stop == 1001
    assert [(b.start, b.stop) for b in sampling._batches(64, 500)] == [(0, 64)]


# --- grids -----------------------------------------------------------------------------------------

def test_grid_pairs_round_trip_with_the_port_writer(tmp_path):
    rng = np.random.default_rng(5)
    top1, top2 = rng.random((64, 28, 28, 1)), rng.random((64, 28, 28, 1))
    paths = []
    for i, top in enumerate((top1, top2)):
        paths.append(images.save_grid(str(tmp_path / "top" / f"train_0{i}_0099.png"), top))
        paths.append(images.save_grid(str(tmp_path / "bot" / f"train_0{i}_0099.png"), 1 - top))
    s = sampling.samples_from_grids(paths)
    assert s.model == "cogan" and s.n == 128
    np.testing.assert_allclose(s.images["top"], np.rint(np.concatenate([top1, top2]) * 255) / 255, atol=1e-6)
    np.testing.assert_allclose(s.images["bot"], np.rint((1 - np.concatenate([top1, top2])) * 255) / 255, atol=1e-6)
    # Written from exact inverses, the pairs agree on every pixel (save for values within 1/255 of 0.5).
    near_half = np.mean(np.abs(np.concatenate([top1, top2]) - 0.5) < 1 / 255)
    assert image_metrics.pixel_agreement(s.images["top"], 1 - s.images["bot"]) >= 1 - near_half


def test_grid_input_errors(tmp_path):
    with pytest.raises(UsageError, match="pairs TOP.png BOT.png .*got 3 paths"):
        sampling.grid_pairs(["a.png", "b.png", "c.png"])
    with pytest.raises(UsageError, match="looks swapped"):
        sampling.grid_pairs(["samples/bot/x.png", "samples/top/x.png"])
    odd = str(tmp_path / "odd.png")
    images.save_png(odd, np.zeros((30, 56), np.uint8))
    good = images.save_grid(str(tmp_path / "good.png"), np.zeros((64, 28, 28)))
    with pytest.raises(images.GridError, match="56x30 pixels is not a grid of 28x28 cells"):
        sampling.samples_from_grids([good, odd])
    small = str(tmp_path / "small.png")
    images.save_png(small, np.zeros((28, 56), np.uint8))
    with pytest.raises(images.GridError, match="holds 64 cells but .* holds 2"):
        sampling.samples_from_grids([good, small])


# --- SavedModels of the three kinds --------------------------------------------------------------------

class FakeCogan(tf.Module):
    """z -> the template of digit argmax(z[:10]) on top, and its inverse (or, not inverted, itself) below."""

    def __init__(self, inverse=True):
        super().__init__()
        self.t = tf.constant(templates())
        self.inverse = inverse

    @tf.function(input_signature=[tf.TensorSpec([None, 100], tf.float32, name="z")])
    def serve(self, z):
        top = tf.gather(self.t, tf.argmax(z[:, :10], axis=1))
        return {"top": top, "bot": 1.0 - top if self.inverse else top}


class FakeVanilla(tf.Module):
    def __init__(self):
        super().__init__()
        self.t = tf.constant(templates())

    @tf.function(input_signature=[tf.TensorSpec([None, 128], tf.float32, name="z")])
    def serve(self, z):
        return {"images": tf.gather(self.t, tf.argmax(z[:, :10], axis=1))}


PERM = np.array([3, 7, 0, 9, 1, 5, 2, 8, 6, 4])


class FakeClusterGan(tf.Module):
    """G draws the template of class argmax(z_c); the encoder matches templates, under a permutation of
    cluster numbers (so a correct clustering has ACC 1 only after matching clusters to labels)."""

    def __init__(self):
        super().__init__()
        self.t = tf.constant(templates())
        self.w = tf.constant(templates().reshape(10, 784).T[:, np.argsort(PERM)])

    @tf.function(input_signature=[tf.TensorSpec([None, 30], tf.float32, name="z_n"),
                                  tf.TensorSpec([None, 10], tf.float32, name="z_c")])
    def serve(self, z_n, z_c):
        return {"images": tf.gather(self.t, tf.argmax(z_c, axis=1))}

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")])
    def encode(self, images):
        scores = tf.reshape(images, [-1, 784]) @ self.w
        return {"z_n": tf.zeros([tf.shape(images)[0], 30]), "class_probs": tf.nn.softmax(10.0 * scores)}


def save_module(module, path, encode=False):
    sigs = {"serving_default": module.serve}
    if encode:
        sigs["encode"] = module.encode
    tf.saved_model.save(module, path, signatures=sigs)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A learnable fake MNIST with a classifier trained on it, and a CoGAN run's checkpoint and export."""
    from cogan_tf import config as C, runner

    root = tmp_path_factory.mktemp("eval")
    data_dir = write_learnable_dataset(root / "data")
    clf = classifier.load_or_train(data_dir, "mnist", retrain=True, recipe=SMALL, log=lambda s: None)
    x, _ = learnable_digits(16, seed=9)
    x = x[..., None]
    # max_steps=0: a checkpoint and an export of the initial weights, without compiling a training step.
    cfg = C.TrainConfig(epoch=1, batch_size=8, seed=3, log_every=0, sample_every=0, save_every=0, max_steps=0,
                        data_dir=data_dir, checkpoint_dir=str(root / "checkpoint"), sample_dir=str(root / "samples"),
                        log_dir=str(root / "logs"), export_dir=str(root / "export"),
                        evaluate_dir=str(root / "evaluate"))
    runner.run(C.CoganConfig(), cfg, arrays=[x, 255 - x], log=lambda s: None)
    return dict(root=root, data_dir=data_dir, clf=clf, checkpoint=str(root / "checkpoint"),
                export=str(root / "export" / "cogan"), ref=scoring.make_reference(clf, data_dir, "mnist"))


def quiet(*_):
    pass


def test_model_kind_from_signatures(tmp_path, env):
    assert sampling.model_kind(sampling.load_saved_model(env["export"])) == "cogan"
    assert sampling.model_kind(tf.saved_model.load(save_module(FakeVanilla(), str(tmp_path / "v")))) == "vanilla"
    loaded = tf.saved_model.load(save_module(FakeClusterGan(), str(tmp_path / "c"), True))
    assert sampling.model_kind(loaded) == "clustergan"


def test_perfect_and_non_inverse_cogan_pairs(tmp_path, env):
    perfect = sampling.generate(tf.saved_model.load(save_module(FakeCogan(), str(tmp_path / "p"))), n=300, seed=1)
    report = scoring.evaluate_samples(perfect, env["clf"], env["ref"])
    assert report["pairs"]["pixel_agreement"] == 1.0
    assert report["pairs"]["mean_abs_difference"] == 0.0
    assert report["pairs"]["label_agreement"] == 1.0
    top = report["domains"]["top"]
    assert top == {k: v for k, v in report["domains"]["bot"].items() if k != "scored_as"}
    assert sum(top["histogram"]) == pytest.approx(1.0)
    assert top["effective_classes"] > 9.3  # argmax of 10 normal draws: near-uniform digits
    assert top["classifier_score"] > 5

    wrong = sampling.generate(tf.saved_model.load(save_module(FakeCogan(inverse=False), str(tmp_path / "w"))), n=100)
    report = scoring.evaluate_samples(wrong, env["clf"], env["ref"])
    assert report["pairs"]["pixel_agreement"] == 0.0
    assert report["pairs"]["mean_abs_difference"] == 1.0


def test_cogan_saved_model_report_and_json(tmp_path, env):
    out = str(tmp_path / "r" / "report.json")
    lines = []
    report = scoring.report_for_saved_model(env["export"], env["data_dir"], n=130, seed=2, out=out, clf=env["clf"],
                                       log=lines.append)
    assert report["model"] == "cogan" and report["n"] == 130 and report["seed"] == 2
    for key in ("pixel_agreement", "mean_abs_difference", "label_agreement"):
        assert 0.0 <= report["pairs"][key] <= 1.0
    for d in ("top", "bot"):
        m = report["domains"][d]
        assert 1.0 <= m["classifier_score"] <= 10.0 + 1e-6 and m["frechet_distance"] >= 0
        assert len(m["histogram"]) == 10
    assert report["real"]["frechet_distance_n"] == 130
    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(report))
    table = "\n".join(lines)
    for text in ("pixel agreement", "label agreement", "classifier score", "Frechet distance", "class 9 (%)"):
        assert text in table
    # Same seed, same z, same report.
    again = scoring.report_for_saved_model(env["export"], env["data_dir"], n=130, seed=2, clf=env["clf"], log=quiet)
    assert again["pairs"] == report["pairs"]


def test_vanilla_and_clustergan_reports(tmp_path, env):
    ref = env["ref"]
    van = sampling.generate(tf.saved_model.load(save_module(FakeVanilla(), str(tmp_path / "v"))), n=200)
    report = scoring.evaluate_samples(van, env["clf"], ref)
    assert set(report["domains"]) == {"images"} and "pairs" not in report
    assert report["domains"]["images"]["effective_classes"] > 9

    cg = sampling.generate(tf.saved_model.load(save_module(FakeClusterGan(), str(tmp_path / "c"), True)), n=200)
    assert cg.z_c.shape == (200,) and cg.encode is not None
    report = scoring.evaluate_samples(cg, env["clf"], ref)
    assert set(report["domains"]) == {"images"}
    # The encoder's clusters are the labels under a permutation: ACC, NMI and ARI of 1 after matching.
    c = report["clustering"]
    assert c["n"] == 300 and c["acc"] == pytest.approx(1.0) and c["nmi"] == pytest.approx(1.0)
    assert c["ari"] == pytest.approx(1.0)
    # The paper's protocol, K-means on [z_n, class_probs], finds the same ten groups.
    assert c["kmeans_purity"] == pytest.approx(1.0) and c["kmeans_nmi"] == pytest.approx(1.0)
    assert c["kmeans_ari"] == pytest.approx(1.0) and c["purity"] == pytest.approx(1.0)
    # z_c picks the template, which the classifier reads back: codes match digits one to one.
    assert report["latent_code_vs_classifier"]["acc"] > 0.95
    assert "clustering of the test set by the encoder" in reports.format_report(report)


class NoisyZnClusterGan(FakeClusterGan):
    """FakeClusterGan whose z_n is loud noise: what E's z_n is when it was trained without a z_n loss."""

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")])
    def encode(self, images):
        scores = tf.reshape(images, [-1, 784]) @ self.w
        z_n = 100.0 * tf.random.stateless_normal([tf.shape(images)[0], 30], seed=[1, 2])
        return {"z_n": z_n, "class_probs": tf.nn.softmax(10.0 * scores)}


def test_clustergan_export_says_whether_kmeans_takes_z_n(tmp_path, env):
    """An export of a model trained without a z_n loss (beta_n 0) is clustered on its softmax alone, as the
    run's own report does; exports without the flag (all earlier ones) on [z_n, softmax]."""
    clustering = {}
    for name, flag in (("without", None), ("softmax", False), ("both", True)):
        module = NoisyZnClusterGan()
        if flag is not None:
            module.kmeans_on_zn = tf.Variable(flag, trainable=False)
        loaded = tf.saved_model.load(save_module(module, str(tmp_path / name), True))
        samples = sampling.generate(loaded, n=100)
        assert samples.kmeans_on_zn is (flag is not False)
        full = scoring.evaluate_samples(samples, env["clf"], env["ref"])
        clustering[name] = full["clustering"]
        if name == "softmax":
            assert "K-means on [softmax]" in reports.format_report(full)
    assert clustering["softmax"]["kmeans_features"] == "softmax"
    assert clustering["softmax"]["kmeans_purity"] == pytest.approx(1.0)
    for name in ("without", "both"):  # the noise in z_n spoils K-means on [z_n, softmax]
        assert clustering[name]["kmeans_features"] == "z_n, softmax" and clustering[name]["kmeans_purity"] < 0.9
        assert clustering[name]["acc"] == pytest.approx(1.0)  # the argmax protocol does not use z_n


class OtherShapes(tf.Module):
    """Generators with the exported names but other shapes: an int z, z of open width, 10x10 images, and
    images whose shape only shows when they are made."""

    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.int32, name="z")])
    def int_z(self, z):
        return {"images": tf.zeros([tf.shape(z)[0], 28, 28, 1])}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="z")])
    def open_z(self, z):
        return {"images": tf.zeros([tf.shape(z)[0], 28, 28, 1])}

    @tf.function(input_signature=[tf.TensorSpec([None, 100], tf.float32, name="z")])
    def small(self, z):
        return {"images": tf.reshape(z, [-1, 10, 10, 1])}

    def __init__(self):
        super().__init__()
        self.k = tf.Variable(1)  # a variable's value, not a constant: the traced image shape stays open

    @tf.function(input_signature=[tf.TensorSpec([None, 100], tf.float32, name="z")])
    def late(self, z):
        return {"images": tf.reshape(z, tf.stack([-1, 10 * self.k, 10 * self.k, self.k]))}


def test_a_generator_of_other_shapes_is_refused_in_one_line(tmp_path):
    m = OtherShapes()
    for name, message in (("int_z", "SavedModel input 'z' is int32 of shape (None, 5); an exported generator "
                                    "takes float32 (batch, n)"),
                          ("open_z", "SavedModel input 'z' is float32 of shape (None, None); "),
                          ("small", "SavedModel output 'images' has shape (None, 10, 10, 1); an exported generator "
                                    "gives (batch, 28, 28, 1) images")):
        path = str(tmp_path / name)
        tf.saved_model.save(m, path, signatures={"serving_default": getattr(m, name)})
        with pytest.raises(UsageError) as e:
            sampling.sample_stream(tf.saved_model.load(path), n=10, source=path)  # before any sample or the classifier
        assert str(e.value).startswith(f"{path}: {message}")
    path = str(tmp_path / "late")
    tf.saved_model.save(m, path, signatures={"serving_default": m.late})
    stream = sampling.sample_stream(tf.saved_model.load(path), n=10, source=path)
    with pytest.raises(DataError, match=f"^{path}: its output 'images' has shape \\(10, 10, 10, 1\\), not "
                                        "\\(batch, 28, 28, 1\\)$"):
        next(stream.draw())


def test_checkpoint_report_uses_the_stored_config(env):
    lines = []
    gan = runner.gan_from_checkpoint(env["checkpoint"], env["data_dir"], log=lines.append)
    assert gan.name == "cogan" and gan.train_cfg.batch_size == 8 and gan.seed == 3
    assert any("Load SUCCESS" in line for line in lines)
    report = scoring.report_for_gan(gan, env["data_dir"], n=64, clf=env["clf"], log=quiet)
    assert report["model"] == "cogan" and report["source"].endswith("mnist_8_28")
    # The same generator exported by training gives the same numbers for the same z.
    direct = scoring.report_for_saved_model(env["export"], env["data_dir"], n=64, clf=env["clf"], log=quiet)
    assert reports.flatten(direct["pairs"]) == pytest.approx(reports.flatten(report["pairs"]))


def test_missing_model_and_checkpoint_errors(tmp_path):
    with pytest.raises(DataError, match="no SavedModel here"):
        sampling.load_saved_model(str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="no such checkpoint directory"):
        record_lib.find_run(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no config.json"):
        record_lib.find_run(str(tmp_path / "empty"))


# --- damaged SavedModels: one line naming the folder and what is wrong -------------------------------------

AGAIN = "export it again from its checkpoint with `python main.py --is_train False --checkpoint_dir DIR` (and --model as trained)"


def flip(path, at=0.5, n=16):
    """Invert ``n`` bytes of ``path`` from ``at`` (a fraction of its length) on."""
    b = bytearray(path.read_bytes())
    i = int(len(b) * at)
    b[i:i + n] = bytes(x ^ 0xFF for x in b[i:i + n])
    path.write_bytes(bytes(b))


def truncate(path, keep=0.5):
    path.write_bytes(path.read_bytes()[:int(path.stat().st_size * keep)])


def data_file(d):
    return next((d / "variables").glob("variables.data-*"))


def flip_recorded_version(d):
    """One bit of the TensorFlow version saved_model.pb records: the file still parses and loads."""
    pb = d / "saved_model.pb"
    b = bytearray(pb.read_bytes())
    b[bytes(b).index(tf.__version__.encode())] ^= 0x01  # "2" -> "3": still UTF-8
    pb.write_bytes(bytes(b))


def unknown_op(d):
    """A graph that parses but names an op TensorFlow does not have; no fingerprint.pb to catch it first
    (as an export by a TensorFlow older than fingerprints)."""
    (d / "fingerprint.pb").unlink()
    pb = d / "saved_model.pb"
    pb.write_bytes(pb.read_bytes().replace(b"\x06MatMul", b"\x06MatMuk"))


DAMAGES = {
    "no variables folder": (lambda d: shutil.rmtree(d / "variables"), "no variables/ folder"),
    "no variables.index": (lambda d: (d / "variables" / "variables.index").unlink(), "no variables/variables.index"),
    "no data file": (lambda d: data_file(d).unlink(), "no variables/variables.data-* file"),
    "truncated saved_model.pb": (lambda d: truncate(d / "saved_model.pb"), "saved_model.pb does not parse"),
    "empty saved_model.pb": (lambda d: truncate(d / "saved_model.pb", 0), "saved_model.pb holds 0 graphs, not one"),
    "flipped bytes in saved_model.pb": (lambda d: flip(d / "saved_model.pb"), "saved_model.pb "),
    "a flipped bit that still parses": (flip_recorded_version, "saved_model.pb is not the file exported"),
    "flipped bytes in variables.data": (lambda d: flip(data_file(d)), "variables/variables.data-* damaged"),
    "truncated variables.data": (lambda d: truncate(data_file(d)), "variables/variables.data-* damaged or truncated"),
    "flipped bytes in variables.index": (lambda d: flip(d / "variables" / "variables.index", n=4),
                                         "variables/variables.index is not the file exported"),
    "damaged fingerprint.pb": (lambda d: flip(d / "fingerprint.pb", 0.3, 4), "fingerprint.pb unreadable"),
    "an op TensorFlow does not have": (unknown_op, "TensorFlow cannot load it (RuntimeError: Op type not registered"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_saved_model_is_refused_in_one_line(tmp_path, env, damage):
    d = tmp_path / "cogan"
    shutil.copytree(env["export"], d)
    spoil, what = DAMAGES[damage]
    spoil(d)
    with pytest.raises(DataError) as e:
        sampling.load_saved_model(str(d))
    message = str(e.value)
    assert message.startswith(f"{d}: damaged SavedModel: {what}") and message.endswith(f"; {AGAIN}"), message
    assert "\n" not in message


def test_an_export_without_fingerprint_still_loads(tmp_path, env):
    d = tmp_path / "cogan"
    shutil.copytree(env["export"], d)
    (d / "fingerprint.pb").unlink()  # as TensorFlow wrote SavedModels before fingerprints
    assert sampling.model_kind(sampling.load_saved_model(str(d))) == "cogan"


def test_cli_damaged_saved_model_one_line_no_traceback(tmp_path, env):
    d = tmp_path / "cogan"
    shutil.copytree(env["export"], d)
    flip(data_file(d))
    # As a user runs it: TensorFlow's own log level untouched, so its start-up lines would show too.
    r = subprocess.run([sys.executable, "-m", "cogan_tf.evaluate", "--saved_model", str(d), "--data_dir",
                        env["data_dir"]], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"PYTHONPATH": ROOT})
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {d}: damaged SavedModel: variables/variables.data-* "
                                                    "damaged or truncated ("), r.stderr
    assert lines[0].endswith(AGAIN)


# --- reports side by side, and the command line --------------------------------------------------------

def test_compare_shows_differences():
    a = {"model": "cogan", "n": 64, "domains": {"top": {"classifier_score": 8.0, "histogram": [0.5, 0.5]}},
         "pairs": {"pixel_agreement": 0.9}}
    b = {"model": "cogan", "n": 64, "domains": {"top": {"classifier_score": 9.5, "histogram": [0.25, 0.75]}},
         "pairs": {"pixel_agreement": 0.95}}
    text = reports.format_compare(a, b, "a.json", "b.json")
    line = next(x for x in text.splitlines() if x.startswith("domains.top.classifier_score"))
    assert line.split()[1:] == ["8.0000", "9.5000", "+1.5000"]
    assert any(x.startswith("domains.top.histogram.1") and x.endswith("+0.2500") for x in text.splitlines())
    assert any(x.startswith("pairs.pixel_agreement") and x.endswith("+0.0500") for x in text.splitlines())


def test_argv_folding_of_path_lists():
    argv = ["prog", "--grids", "t1.png", "b1.png", "t2.png", "b2.png", "--out", "r.json", "--compare", "a", "b"]
    assert cli.fold_list_args(argv, LIST_FLAGS) == ["prog", "--grids=t1.png,b1.png,t2.png,b2.png", "--out", "r.json",
                                       "--compare=a,b"]


def test_cli_refuses_bad_inputs_in_one_line(tmp_path):
    r = run_cli("--grids", "a.png", "b.png", "c.png")
    assert r.returncode == 2 and error_lines(r) == [
        "error: --grids takes pairs TOP.png BOT.png [TOP2.png BOT2.png ...]; got 3 paths"], r.stderr
    odd = str(tmp_path / "odd.png")
    images.save_png(odd, np.zeros((30, 56), np.uint8))
    r = run_cli("--grids", odd, odd, "--data_dir", str(tmp_path))
    assert r.returncode == 2 and error_lines(r) == [
        f"error: {odd}: 56x30 pixels is not a grid of 28x28 cells"], r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli()
    assert r.returncode == 2 and "nothing to evaluate" in r.stderr


def test_cli_refuses_grids_of_single_cells(tmp_path):
    top, bot = str(tmp_path / "top" / "one.png"), str(tmp_path / "bot" / "one.png")
    images.save_png(top, np.zeros((28, 28), np.uint8))
    images.save_png(bot, np.full((28, 28), 255, np.uint8))
    r = run_cli("--grids", top, bot, "--data_dir", str(tmp_path))
    assert r.returncode == 2 and error_lines(r) == [
        f"error: --grids {top} {bot}: 1 pair of 28x28 cells; the report needs at least 2 (an 8x8 grid holds 64)"], r.stderr
    assert "Traceback" not in r.stderr


def test_cli_grids_report_and_compare(tmp_path, env):
    t = templates()[np.arange(64) % 10]
    top = images.save_grid(str(tmp_path / "top" / "g.png"), t)
    bot = images.save_grid(str(tmp_path / "bot" / "g.png"), 1 - t)
    half = images.save_grid(str(tmp_path / "bot" / "h.png"), t)  # not inverted: pixel agreement 0
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    r = run_cli("--grids", top, bot, "--data_dir", env["data_dir"], "--out", a)
    assert r.returncode == 0, r.stderr
    assert "negative(G1(z)) vs G2(z)" in r.stdout and "binarised at >0.5" in r.stdout and "1.0000" in r.stdout
    scoring.run_report(sampling.samples_from_grids([top, half]), env["data_dir"], out=b, clf=env["clf"], log=quiet)
    with open(a) as f:
        ra = json.load(f)
    assert ra["n"] == 64 and ra["pairs"]["pixel_agreement"] == 1.0
    r = run_cli("--compare", a, b)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("pairs.pixel_agreement"))
    assert line.split()[1:] == ["1.0000", "0.0000", "-1.0000"]


@pytest.mark.parametrize("n", ["1", "1000001", "1000000000"])
def test_cli_refuses_a_sample_count_out_of_range_before_tensorflow(tmp_path, n):
    r = run_cli("--saved_model", str(tmp_path / "model"), "--num_samples", n, env=without_tensorflow(tmp_path))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: --num_samples={n}: give 2 to 1,000,000 (see --help)"], r.stderr


def test_cli_refuses_a_bad_out_before_any_work(tmp_path):
    shell = without_tensorflow(tmp_path)
    model = str(tmp_path / "model")  # never read: the refusal comes first
    for args, message in out_cases(tmp_path) + [
            (["--grid_dirs", str(tmp_path), "--plot", str(tmp_path)], f"--plot={tmp_path}: is a directory; "),
            (["--compare", "a.json", "b.json", "--out", str(tmp_path / "r.json")],
             "--out goes with --saved_model, --checkpoint_dir, --grids or --grid_dirs (--compare and "
             "--retrain_classifier alone write no report)")]:
        if "--grid_dirs" not in args and "--compare" not in args:
            args = ["--saved_model", model] + args
        r = run_cli(*args, env=shell)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert r.stderr.startswith(f"error: {message}"), (args, r.stderr)
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)  # not replaced by a file
    assert sorted(os.listdir(tmp_path)) == ["a_file", "fifo", "no_tensorflow"]


def test_a_report_that_cannot_be_written_is_one_line(tmp_path):
    """What the command line's check cannot see coming (a folder that changes, a disk that fills up)."""
    (tmp_path / "a_file").write_text("")
    with pytest.raises(DataError, match=f"^{tmp_path}/a_file/r.json: cannot write the report \\([^)]+\\)$"):
        reports.write_report(str(tmp_path / "a_file" / "r.json"), {"domains": {}})


@pytest.mark.parametrize("seed, said", [("-1", "must be 0 or more"),
                                        ("4294967296", "must be at most 4294967295 (2^32 - 1: K-means seeds are 32-bit)")])
def test_cli_refuses_a_seed_out_of_range_before_tensorflow(tmp_path, seed, said):
    r = run_cli("--saved_model", str(tmp_path / "model"), f"--seed={seed}", env=without_tensorflow(tmp_path))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: --seed={seed}: {said}"], r.stderr


# --- many samples: scored batch by batch, in memory independent of their number ---------------------------

def assert_same_report(a, b, rel=1e-9):
    fa, fb = reports.flatten(a), reports.flatten(b)
    assert fa.keys() == fb.keys()
    for k, v in fa.items():
        if isinstance(v, float):
            assert fb[k] == pytest.approx(v, rel=rel, abs=1e-12), k
        else:
            assert fb[k] == v, k


def test_scoring_in_batches_gives_the_numbers_of_one_batch(env):
    s = sampling.generate(sampling.load_saved_model(env["export"]), n=300, seed=5)  # a real (untrained) generator's pairs
    # More samples than features: the covariances (one domain: each matrix root costs seconds here); and a
    # grid's few pairs: agreement, labels and the Frechet distance of few samples.
    for model, arrays in (("vanilla", {"images": s.images["top"]}),
                          ("cogan", {k: v[:64] for k, v in s.images.items()})):
        one, many = (scoring.evaluate_samples(sampling.in_memory(model, arrays, "x", batch_size=b), env["clf"],
                                              env["ref"], real=False) for b in (300, 37))  # batches of 33 or 34, and of 32
        assert_same_report(one, many)


def test_a_model_drawn_batch_by_batch_gives_the_numbers_of_one_batch(tmp_path, env):
    """Batches of 13 draw the same z as one batch of all (and ClusterGAN's codes, which come after all the
    normals in the generator's stream, the same codes)."""
    for name, module, encode in (("v", FakeVanilla(), False), ("c", FakeClusterGan(), True)):
        loaded = tf.saved_model.load(save_module(module, str(tmp_path / name), encode))
        whole = sampling.generate(loaded, n=250, seed=3, batch_size=250)
        stream = sampling.sample_stream(loaded, n=250, seed=3, batch_size=13)
        batches = list(stream.draw())
        assert stream.images is None and max(len(b["images"]) for b in batches) == 13
        np.testing.assert_array_equal(np.concatenate([b["images"] for b in batches]), whole.images["images"])
        if encode:
            np.testing.assert_array_equal(np.concatenate([b["z_c"] for b in batches]), whole.z_c)
        assert_same_report(scoring.evaluate_samples(whole, env["clf"], env["ref"]),
                           scoring.evaluate_samples(stream, env["clf"], env["ref"]))


def test_the_memory_of_a_report_does_not_grow_with_the_samples(tmp_path, env):
    import tracemalloc

    path = save_module(FakeCogan(), str(tmp_path / "p"))

    def peak(n):
        tracemalloc.start()
        try:
            scoring.report_for_saved_model(path, env["data_dir"], n=n, clf=env["clf"], log=quiet)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(100)  # traces the classifier's and the generator's functions
    small, large = peak(1000), peak(2000)  # batches of 500 both: only their number differs
    # 1,000 more pairs are 2 x 1,000 x 784 float32 = 6.3 MB of images alone; read batch by batch, none of it stays.
    assert large < small + 2 * 2 ** 20, (small, large)


# --- two runs' grid directories, step by step (--grid_dirs) ---------------------------------------------

PUBLISHED = os.path.join(os.path.dirname(ROOT), "shared", "reference", "andrewliao11", "samples")


def write_pair(root, name, top, bot):
    images.save_grid(str(root / "top" / f"{name}.png"), top)
    images.save_grid(str(root / "bot" / f"{name}.png"), bot)


def digit_grid(shift=0):
    """64 template digits, cell i showing digit (i + shift) % 10."""
    return templates()[(np.arange(64) + shift) % 10]


def test_grid_step_from_name():

    assert gc.STEPS_PER_EPOCH == 70000 // 128 == 546
    assert gc.grid_step("train_00_0099") == 100
    assert gc.grid_step("train_01_0053") == 546 + 53 + 1
    assert gc.grid_step("train_24_0495") == 24 * 546 + 496
    assert gc.grid_step("train_02_0010", steps_per_epoch=100) == 211
    assert gc.grid_step("test_00") is None and gc.grid_step("train_00_0099.png") is None


def test_stretch_maps_each_grid_to_full_range():

    x = np.linspace(0.2, 0.6, 64 * 28 * 28, dtype=np.float32).reshape(64, 28, 28, 1)
    y = gc.stretch(x)
    assert y.min() == 0.0 and y.max() == 1.0
    np.testing.assert_allclose(y, (x - 0.2) / 0.4, atol=0.5 / 255 + 1e-6)  # linear, then rounded to bytes
    np.testing.assert_array_equal(gc.stretch(y), y)  # a stretched grid stays as it is
    # A constant grid: bytescale takes max - min as 1, so it comes out black, as the original wrote it.
    np.testing.assert_array_equal(gc.stretch(np.full((64, 28, 28, 1), 0.3, np.float32)), 0.0)


@pytest.fixture
def grid_dirs(tmp_path):
    """RUN: three perfect pairs (bot = 1 - top) plus one name only it holds (and a top without its bot).
    REFERENCE: the same three names, perfect / not inverted / inverse of other digits, plus its own name."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    t = digit_grid()
    for name in ("train_00_0099", "train_01_0053", "train_02_0007", "train_03_0061"):
        write_pair(run, name, t, 1 - t)
    images.save_grid(str(run / "top" / "train_04_0015.png"), t)  # no bot/train_04_0015.png: not a pair
    write_pair(ref, "train_00_0099", t, 1 - t)
    write_pair(ref, "train_01_0053", t, t)  # not inverted: 1 - bot disagrees with top everywhere
    write_pair(ref, "train_02_0007", t, 1 - digit_grid(shift=5))  # coupled to the wrong digit
    write_pair(ref, "train_05_0069", t, 1 - t)
    return str(run), str(ref)


def test_grid_dirs_scores_common_names_by_step(tmp_path, env, grid_dirs):
    from PIL import Image

    run, ref = grid_dirs
    out, plot = str(tmp_path / "o" / "report.json"), str(tmp_path / "o" / "curves.png")
    lines = []
    report = gc.run(gc.read_grid_dirs(run, ref), env["data_dir"], out=out, plot=plot, clf=env["clf"],
                    log=lines.append)
    g = report["grids"]
    assert [x["name"] for x in g] == ["train_00_0099", "train_01_0053", "train_02_0007"]
    assert [x["step"] for x in g] == [100, 600, 2 * 546 + 8]
    assert report["only_in_run"] == ["train_03_0061"] and report["only_in_reference"] == ["train_05_0069"]
    assert report["run"]["pairs"] == report["reference"]["pairs"] == 4
    for x in g:
        assert x["run"]["pixel_agreement"] == 1.0 and x["run"]["label_agreement"] == 1.0
        assert x["run"]["top"]["effective_classes"] == pytest.approx(10, rel=0.05)  # 64 cells of 10 digits
    assert g[0]["reference"]["pixel_agreement"] == 1.0 and g[0]["reference"]["label_agreement"] == 1.0
    assert g[1]["reference"]["pixel_agreement"] == 0.0
    assert g[2]["reference"]["label_agreement"] < 0.1 and 0.0 < g[2]["reference"]["pixel_agreement"] < 1.0
    assert report["mean"]["reference"]["pixel_agreement"] == pytest.approx(
        np.mean([x["reference"]["pixel_agreement"] for x in g]))
    for side in ("run", "reference"):
        for d in ("top", "bot"):
            assert np.isfinite(g[0][side][d]["frechet_distance"]) and len(g[0][side][d]["histogram"]) == 10

    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(report))
    table = "\n".join(lines)
    row = next(x for x in table.splitlines() if " train_01_0053 " in x).split()
    assert row[:4] == ["600", "train_01_0053", "1.000", "0.000"]  # pixel agreement: run, reference
    assert row[4:6] == [f"{g[1][side]['label_agreement']:.3f}" for side in ("run", "reference")]
    assert row[12:14] == [f"{g[1][side]['bot']['effective_classes']:.3f}" for side in ("run", "reference")]
    assert row[-2:] == [f"{g[1][side]['ink']['bot']:.3f}" for side in ("run", "reference")]
    assert "train_03_0061" in table and "train_05_0069" in table  # named as not scored
    assert "train_04_0015" not in table
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.size == (2000, 800)  # 2x4 panels: the ink is the sixth
        assert np.asarray(im.convert("L")).std() > 10  # drawn on, not blank


def test_grid_dirs_stretch_scores_a_dim_run_like_a_stretched_one(tmp_path, env):

    t = digit_grid()
    write_pair(tmp_path / "dim", "train_00_0099", 0.1 + 0.3 * t, 0.1 + 0.3 * (1 - t))  # written x 255: 26..102
    write_pair(tmp_path / "full", "train_00_0099", t, 1 - t)
    report = gc.compare_grid_dirs(gc.read_grid_dirs(str(tmp_path / "dim"), str(tmp_path / "full")), env["clf"],
                                  env["ref"])
    dim, full = report["grids"][0]["run"], report["grids"][0]["reference"]
    assert report["stretched"] is True
    assert dim["pixel_agreement"] == full["pixel_agreement"] == 1.0  # unstretched, no pixel would pass 0.5
    assert dim["top"]["classifier_score"] == pytest.approx(full["top"]["classifier_score"], rel=1e-3)


def test_grid_dirs_refusals(tmp_path):

    a, b = tmp_path / "a", tmp_path / "b"
    write_pair(a, "train_00_0099", digit_grid(), 1 - digit_grid())
    with pytest.raises(UsageError, match=r"^REFERENCE .*/nope: no such directory; andrewliao11's published grids: "
                                         r"`python download.py andrewliao11` puts them in data/andrewliao11/samples"):
        gc.read_grid_dirs(str(a), str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"^RUN .*/empty: no top/\*\.png or bot/\*\.png grids here"):
        gc.read_grid_dirs(str(tmp_path / "empty"), str(a))
    write_pair(b, "g1", digit_grid(), 1 - digit_grid())
    write_pair(b, "g2", digit_grid(), 1 - digit_grid())
    with pytest.raises(UsageError) as e:
        gc.read_grid_dirs(str(a), str(b))
    assert str(e.value) == (f"no grid name in common: RUN {a} holds 1 pair (train_00_0099); "
                            f"REFERENCE {b} holds 2 pairs (g1, g2)")
    with pytest.raises(UsageError, match="--plot: no grid name of the form train_EE_IIII"):
        write_pair(a, "g1", digit_grid(), 1 - digit_grid())
        gc.check_plot(gc.read_grid_dirs(str(a), str(b)))
    broken = b / "bot" / "train_00_0099.png"
    write_pair(b, "train_00_0099", digit_grid(), 1 - digit_grid())
    broken.write_bytes(b"not a png")
    with pytest.raises(images.GridError, match=f"^{broken}: not a readable image"):
        gc.read_grid_dirs(str(a), str(b))


def test_cli_grid_dirs(tmp_path, env):
    run, ref = tmp_path / "run", tmp_path / "ref"
    t = digit_grid()
    for root, names in ((run, ("train_00_0099", "train_02_0007")), (ref, ("train_02_0007", "train_03_0061"))):
        for name in names:
            write_pair(root, name, t, 1 - t)
    run, ref = str(run), str(ref)
    out, plot = str(tmp_path / "r.json"), str(tmp_path / "c.png")
    r = run_cli("--grid_dirs", run, ref, "--data_dir", env["data_dir"], "--out", out, "--plot", plot,
                "--steps_per_epoch", "100", timeout=600)  # TensorFlow and the classifier start in the subprocess
    assert r.returncode == 0, r.stderr
    assert any(line.split()[:4] == ["208", "train_02_0007", "1.000", "1.000"] for line in r.stdout.splitlines()), \
        r.stdout
    with open(out) as f:
        report = json.load(f)
    assert [g["step"] for g in report["grids"]] == [208] and report["steps_per_epoch"] == 100
    assert report["only_in_run"] == ["train_00_0099"] and report["only_in_reference"] == ["train_03_0061"]
    assert os.path.getsize(plot) > 0
    hint = ("; andrewliao11's published grids: `python download.py andrewliao11` puts them in "
            f"data/andrewliao11/samples (or clone them: {published.CLONE})")
    for args, message in (
            (["--grid_dirs", run, ref, ref], "error: --grid_dirs takes one or two directories, RUN_SAMPLES "
                                            "[REFERENCE_SAMPLES]; got 3"),
            (["--grid_dirs", run, "--data_dir", str(tmp_path / "d")],  # the reference defaults to the published grids
             f"error: REFERENCE {tmp_path}/d/andrewliao11/samples: no such directory{hint}"),
            (["--grid_dirs", run, str(tmp_path / "nope")], f"error: REFERENCE {tmp_path}/nope: no such directory{hint}"),
            (["--grids", "a.png", "b.png", "--plot", plot], "error: --plot goes with --grid_dirs RUN_SAMPLES "
                                                             "REFERENCE_SAMPLES"),
            (["--grid_dirs", run, ref, "--steps_per_epoch", "0"], "error: --steps_per_epoch=0: must be at least 1")):
        r = run_cli(*args)
        assert r.returncode == 2 and error_lines(r) == [message], r.stderr


def test_cli_refuses_grids_it_cannot_read_faithfully_before_tensorflow(tmp_path):
    """A 16-bit grid (read as 8-bit it was clipped to near white), a grid of 2 cells among grids of 64 (scored
    and tabled as "2 pairs each"), a PNG too large to be a grid (a decompression-bomb traceback, or minutes
    and gigabytes): one line naming the file, before TensorFlow starts."""
    from PIL import Image
    from tests.test_images import png_of_zeros

    run, ref = tmp_path / "run", tmp_path / "ref"
    t = digit_grid()
    for name in ("train_00_0099", "train_01_0053"):
        write_pair(ref, name, t, 1 - t)
    write_pair(run, "train_00_0099", t, 1 - t)
    small = [str(run / side / "train_01_0053.png") for side in ("top", "bot")]
    for p in small:
        images.save_png(p, np.zeros((28, 56), np.uint8))
    g16 = str(tmp_path / "g16" / "top.png")
    os.makedirs(os.path.dirname(g16))
    Image.fromarray(np.full((224, 224), 32768, np.uint16)).save(g16)
    huge = png_of_zeros(tmp_path / "huge.png", 14000, 14000)
    shell = without_tensorflow(tmp_path)
    for args, message in (
            (["--grid_dirs", str(run), str(ref)], f"{small[0]}: 56x28 pixels (1x2 = 2 cells), where 6 of the 8 grids "
                                                 "are 224x224 pixels (8x8 = 64 cells): --grid_dirs compares grids of "
                                                 "one size"),
            (["--grids", g16, str(ref / "bot" / "train_00_0099.png")],
             f"{g16}: 16-bit greyscale: grids are read as 8-bit greyscale, and 16 bits would be clipped; save it "
             "with 8 bits per channel"),
            (["--grids", str(ref / "top" / "train_00_0099.png"), huge],
             f"{huge}: 14000x14000 pixels (500x500 = 250000 cells): not a grid of samples (at most 10,000 cells "
             "are read; an 8x8 grid is 224x224 pixels)")):
        r = run_cli(*args, "--data_dir", str(tmp_path / "data"), env=shell)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: {message}"], (args, r.stderr)


def test_cli_no_output_replaces_an_input(tmp_path):
    """--out or --plot onto an input grid (or into a grid folder, a SavedModel, a checkpoint or a dataset
    folder, or onto each other) is refused before anything is read or written."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    t = digit_grid()
    write_pair(run, "train_00_0099", t, 1 - t)
    write_pair(ref, "train_00_0099", t, 1 - t)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "saved_model.pb").write_bytes(b"model")
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    os.symlink(run / "top" / "train_00_0099.png", tmp_path / "link.png")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    top, bot = str(run / "top" / "train_00_0099.png"), str(run / "bot" / "train_00_0099.png")
    hint = "an output may not replace an input: give another path"
    grid_dirs = ["--grid_dirs", str(run), str(ref)]
    shell = without_tensorflow(tmp_path)
    for args, message in (
            (grid_dirs + ["--out", top, "--plot", bot], f"--out={top}: is in the input folder {run}/top; {hint}"),
            (grid_dirs + ["--plot", bot], f"--plot={bot}: is in the input folder {run}/bot; {hint}"),
            (grid_dirs + ["--plot", str(ref / "top" / "new.png")],
             f"--plot={ref}/top/new.png: is in the input folder {ref}/top; {hint}"),
            (["--grids", top, bot, "--out", str(tmp_path / "link.png")],
             f"--out={tmp_path}/link.png: is the input {top}; {hint}"),
            (["--saved_model", str(tmp_path / "model"), "--out", str(tmp_path / "model" / "saved_model.pb")],
             f"--out={tmp_path}/model/saved_model.pb: is in the input folder {tmp_path}/model; {hint}"),
            (["--checkpoint_dir", str(run), "--out", str(run / "r.json")],
             f"--out={run}/r.json: is in the input folder {run}; {hint}"),
            (["--grids", top, bot, "--data_dir", str(tmp_path / "data"), "--out",
              str(tmp_path / "data" / "mnist" / "r.json")],
             f"--out={tmp_path}/data/mnist/r.json: is in the input folder {tmp_path}/data/mnist; {hint}"),
            (grid_dirs + ["--out", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.json")],
             f"--plot={tmp_path}/r.json: is --out too; give each its own path")):
        r = run_cli(*args, env=shell)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: {message}"], (args, r.stderr)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "no_tensorflow" not in str(p)} == before


def test_grid_dirs_on_the_published_grids(tmp_path, env):
    """andrewliao11's published grids (shared/, beside the repository; not shipped with the project) as
    REFERENCE: they are RGB with equal channels and each spans 0..255; read and scored by name and step."""
    if not os.path.isdir(PUBLISHED):
        pytest.skip(f"{PUBLISHED}: andrewliao11's published grids are not beside this repository")

    t = digit_grid()
    for name in ("train_00_0099", "train_24_0495"):
        write_pair(tmp_path / "run", name, t, 1 - t)
    dirs = gc.read_grid_dirs(str(tmp_path / "run"), PUBLISHED)
    assert dirs.names == ["train_00_0099", "train_24_0495"] and len(dirs.reference_names) == 136
    for name in dirs.names:
        for d in ("top", "bot"):
            raw = images.read_grid(os.path.join(PUBLISHED, d, f"{name}.png"))  # RGB, read as L
            assert raw.shape == (64, 28, 28, 1) and raw.min() == 0.0 and raw.max() == 1.0
            np.testing.assert_array_equal(dirs.pairs["reference"][name].images[d], raw)  # stretching: no change
    report = gc.compare_grid_dirs(dirs, env["clf"], env["ref"])
    assert [g["step"] for g in report["grids"]] == [100, 13600]
    assert len(report["only_in_reference"]) == 134
    first, last = (g["reference"]["pixel_agreement"] for g in report["grids"])
    # By the last epoch the published pairs are coupled (the bottom image is the top one inverted);
    # at step 100 both are textures.
    assert last > 0.9 and last > first
