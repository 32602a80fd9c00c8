"""A run's folders: where its outputs go when the user names some of them, what keeps one run's outputs from
replacing another's, and what a resume does when they cannot be written."""

import os
import resource
import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_fake_dataset

VANILLA = ["--model", "vanilla", "--epoch", "1000", "--sample_every_epochs", "0", "--log_every", "0", "--data_dir",
           "data"]
SMALL = ["--batch_size", "8", "--train_size", "16"]


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
    r = main_py(tmp_path, *VANILLA, *SMALL, "--max_steps", "1")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "checkpoint" / "vanilla_mnist_8_28"
    files = lambda: {n: (run / n).read_bytes() for n in os.listdir(run) if n != ".lock"}  # noqa: E731 - the pid differs
    before = files()
    # config.json (some 360 bytes) is the first file a resume writes: it cannot be written.
    r = main_py(tmp_path, *VANILLA, *SMALL, "--max_steps", "2", "--learning_rate", "0.001", file_size_limit=200)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1] == (
        "error: could not write checkpoint/vanilla_mnist_8_28/config.json (File too large); free disk space, then run "
        "the same command (nothing was trained; the newest checkpoint, checkpoint/vanilla_mnist_8_28/"
        "VanillaGAN.model-2, is kept)")
    assert files() == before  # no temporary file left, nothing changed


# --- where a run writes ----------------------------------------------------------------------------------------

def test_the_folders_of_a_run_follow_a_named_checkpoint_dir():
    from cogan_tf import outputs

    none = dict.fromkeys(outputs.RUN_FOLDERS)
    original = {"sample_dir": "samples", "log_dir": "logs", "export_dir": "export", "evaluate_dir": "evaluate"}
    assert outputs.run_folders("checkpoint", none) == original  # a user who names nothing: the original's folders
    assert outputs.run_folders("./checkpoint", none) == original
    assert outputs.run_folders("quick", {**none, "sample_dir": "quick"}) == {
        "sample_dir": "quick", "log_dir": "quick/logs", "export_dir": "quick/export", "evaluate_dir": "quick/evaluate"}
    assert outputs.run_folders("checkpoint", {**none, "export_dir": "mine"})["export_dir"] == "mine"


COGAN = ["--batch_size", "8", "--train_size", "16", "--max_steps", "1", "--log_every", "0", "--data_dir", "data"]


def test_the_quick_start_is_kept_apart_from_the_full_run(tmp_path, data_dir):
    r = main_py(tmp_path, *COGAN)  # the full run, every folder at its default
    assert r.returncode == 0, r.stderr[-3000:]
    export, board = tmp_path / "export" / "cogan", tmp_path / "logs" / "cogan_mnist_8_28"
    exported, events = (export / "saved_model.pb").stat().st_mtime_ns, sorted(os.listdir(board))
    # The quick start's folders (--corrected: a new architecture, so a run of its own), then its evaluation.
    for more in ((), ("--is_train", "False", "--noreport")):
        r = main_py(tmp_path, *COGAN, "--corrected", "--checkpoint_dir", "quick", "--sample_dir", "quick", *more)
        assert r.returncode == 0, r.stderr[-3000:]
        assert " [!] " not in r.stdout  # it replaces nothing of the full run's
    assert (export / "saved_model.pb").stat().st_mtime_ns == exported and sorted(os.listdir(board)) == events
    quick = tmp_path / "quick"
    assert (quick / "export" / "cogan" / "saved_model.pb").is_file()
    assert [n for n in os.listdir(quick / "logs" / "cogan_mnist_8_28") if "tfevents" in n]
    assert (quick / "evaluate" / "top" / "test_00.png").is_file()
    assert not (tmp_path / "evaluate").exists()


def test_a_run_that_replaces_another_runs_outputs_says_so(tmp_path, data_dir):
    def line(r):
        assert r.returncode == 0, r.stderr[-3000:]
        said = [x for x in r.stdout.splitlines() if "replaces that run's" in x]
        return said[0] if said else None

    first = SMALL
    assert line(main_py(tmp_path, *VANILLA, *first, "--max_steps", "1")) is None
    # Another batch size is another run, in the same default grid folder and export.
    other = ["--batch_size", "4", "--train_size", "16"]
    assert line(main_py(tmp_path, *VANILLA, *other, "--max_steps", "1")) == (
        " [!] samples (of checkpoint/vanilla_mnist_8_28), export/vanilla (of checkpoint/vanilla_mnist_8_28): this run "
        "replaces that run's vanilla outputs there; give it its own --sample_dir, --export_dir, or its own "
        "--checkpoint_dir (its other outputs then go under it), to keep both")
    assert line(main_py(tmp_path, *VANILLA, *first, "--is_train", "False", "--noreport")) == (
        " [!] export/vanilla (of checkpoint/vanilla_mnist_4_28): this evaluation replaces that run's vanilla outputs "
        "there; give it its own --export_dir, or its own --checkpoint_dir (its other outputs then go under it), to "
        "keep both")
    # (The quick start's test shows a run replacing only its own outputs saying nothing.)
