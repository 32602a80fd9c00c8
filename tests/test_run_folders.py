"""A run's folders: where its outputs go when the user names some of them, what keeps one run's outputs from
replacing another's, and what a resume does when they cannot be written."""

import os
import resource
import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_fake_dataset

VANILLA = ["--model", "vanilla", "--batch_size", "8", "--train_size", "16", "--epoch", "1000", "--sample_every_epochs",
           "0", "--log_every", "0", "--data_dir", "data"]


def main_py(cwd, *args, file_size_limit=None):
    """main.py as a user runs it in ``cwd``; ``file_size_limit``: no file it writes may grow past this many bytes
    (EFBIG, as a full disk gives ENOSPC: Python ignores SIGXFSZ)."""
    def limit():
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=str(cwd), capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT}, preexec_fn=limit)


@pytest.fixture
def data_dir(tmp_path):
    return write_fake_dataset(tmp_path / "data", n_train=40, n_test=20)


# --- a resume that cannot write config.json ----------------------------------------------------------------------

def test_a_resume_that_cannot_write_its_record_stops_in_one_line(tmp_path, data_dir):
    r = main_py(tmp_path, *VANILLA, "--max_steps", "1")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "checkpoint" / "vanilla_mnist_8_28"
    files = lambda: {n: (run / n).read_bytes() for n in os.listdir(run) if n != ".lock"}  # noqa: E731 - the pid differs
    before = files()
    # config.json (some 360 bytes) is the first file a resume writes: it cannot be written.
    r = main_py(tmp_path, *VANILLA, "--max_steps", "2", "--learning_rate", "0.001", file_size_limit=200)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1] == (
        "error: could not write checkpoint/vanilla_mnist_8_28/config.json (File too large); free disk space, then run "
        "the same command (nothing was trained; the newest checkpoint, checkpoint/vanilla_mnist_8_28/"
        "VanillaGAN.model-2, is kept)")
    assert files() == before  # no temporary file left, nothing changed
