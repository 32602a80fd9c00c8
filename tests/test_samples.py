"""cogan_tf/evaluate/samples.py, what the evaluation scores: samples drawn batch by batch from an exported
SavedModel of any of the three kinds (told apart by its signatures; the same z in batches as in one; a generator
of other shapes or a pair it does not know refused in one line), from images in memory, or from 8x8 grid PNGs
(pairs TOP.png BOT.png, read back as the port wrote them); a missing or damaged SavedModel refused in one line
naming the folder and what is wrong."""

import shutil

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import images, record as record_lib
from cogan_tf.errors import DataError, UsageError
from cogan_tf.evaluate import image_metrics, samples as sampling, scoring
from tests.conftest import AGAIN, assert_same_report, data_file, flip
from tests.fake_generators import FakeClusterGan, FakeVanilla, save_module


@pytest.fixture
def env(evaluation_env):
    """The classifier and the CoGAN run's checkpoint and export that the evaluation is tested on (conftest)."""
    return evaluation_env


def test_batches_have_no_tiny_remainder():
    batches = list(sampling._batches(1001, 500))
    assert [b.stop - b.start for b in batches] == [334, 334, 333]
    assert [b.start for b in batches] == [0, 334, 668] and batches[-1].stop == 1001
    assert [(b.start, b.stop) for b in sampling._batches(64, 500)] == [(0, 64)]


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


def test_model_kind_from_signatures(tmp_path, env):
    assert sampling.model_kind(sampling.load_saved_model(env["export"])) == "cogan"
    assert sampling.model_kind(tf.saved_model.load(save_module(FakeVanilla(), str(tmp_path / "v")))) == "vanilla"
    loaded = tf.saved_model.load(save_module(FakeClusterGan(), str(tmp_path / "c"), True))
    assert sampling.model_kind(loaded) == "clustergan"


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


def test_missing_model_and_checkpoint_errors(tmp_path):
    with pytest.raises(DataError, match="no SavedModel here"):
        sampling.load_saved_model(str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="no such checkpoint directory"):
        record_lib.find_run(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no config.json"):
        record_lib.find_run(str(tmp_path / "empty"))


# --- damaged SavedModels: one line naming the folder and what is wrong -------------------------------------

def truncate(path, keep=0.5):
    path.write_bytes(path.read_bytes()[:int(path.stat().st_size * keep)])


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


def test_an_export_records_a_pair_or_is_of_the_negatives(tmp_path):
    import tensorflow as tf

    from cogan_tf.evaluate import samples as sampling
    from cogan_tf.errors import UsageError
    from tests.fake_generators import FakeCogan, save_module

    plain = save_module(FakeCogan(), str(tmp_path / "plain"))
    assert sampling.sample_stream(tf.saved_model.load(plain), n=4).pair == "negative"  # exports without the record
    odd = FakeCogan()
    odd.pair = tf.Variable("blur", trainable=False)
    path = save_module(odd, str(tmp_path / "odd"))
    with pytest.raises(UsageError) as e:
        sampling.sample_stream(tf.saved_model.load(path), n=4, source=path)
    assert str(e.value) == f"{path}: records the pair 'blur', none of negative, edge, rotate"
