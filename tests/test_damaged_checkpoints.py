"""Damaged checkpoints at every entry point: training, ``--is_train False`` and ``python -m cogan_tf.evaluate
--checkpoint_dir`` each fall back past a truncated, zeroed or deleted newest checkpoint file (data, index) to the
newest one that restores, cope with a damaged ``checkpoint`` state file, and refuse in one line when no checkpoint
restores; a ClusterGAN whose best/ checkpoint is lost evaluates its latest. (That the package reads checkpoints in
one place only, so that a new reader cannot bypass the fallback: tests/test_checkpoints.py.)"""

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_fake_dataset

RUN = os.path.join("ck", "vanilla_mnist_8_28")
PREFIX = "VanillaGAN.model"
TRAIN = ["--model", "vanilla", "--batch_size", "8", "--train_size", "16", "--epoch", "1000", "--save_every", "1",
         "--sample_every_epochs", "0", "--log_every", "0", "--checkpoint_dir", "ck", "--data_dir", "data"]


def program(cwd, *args, module=None):
    """A real process of main.py (or ``python -m module``) in ``cwd``, importing this tree's cogan_tf."""
    cmd = [sys.executable, "-m", module] if module else [sys.executable, os.path.join(ROOT, "main.py")]
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(cmd + list(args), cwd=str(cwd), env=env, capture_output=True, text=True, timeout=600)


# Each entry point as a user runs it on the run in ``ck``: its arguments.
ENTRY_POINTS = {
    "training": TRAIN + ["--max_steps", "2"],
    "is_train False": TRAIN + ["--is_train", "False", "--noreport"],
    "evaluate": ["--checkpoint_dir", "ck", "--data_dir", "data", "--num_samples", "2"],
}


def run_entry(cwd, entry):
    return program(cwd, *ENTRY_POINTS[entry], module="cogan_tf.evaluate" if entry == "evaluate" else None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A vanilla run trained by main.py: VanillaGAN.model-2 (after step 1) and -3 (after step 2), the state file
    naming -3. Each test works on its own copy (``run_copy``)."""
    root = tmp_path_factory.mktemp("trained")
    write_fake_dataset(root / "data", n_train=40, n_test=20)
    r = program(root, *TRAIN, "--max_steps", "2")
    assert r.returncode == 0, r.stderr
    assert sorted(n for n in os.listdir(root / RUN) if n.endswith(".index")) == [f"{PREFIX}-2.index",
                                                                                 f"{PREFIX}-3.index"]
    return root


@pytest.fixture
def run_copy(trained, tmp_path):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True, symlinks=True)
    return tmp_path


def damage(path, how):
    """Truncate (to 100 bytes: the tiny vanilla checkpoint holds the run's record in its first few hundred), zero
    (every byte, same size) or delete ``path``."""
    if how == "delete":
        os.remove(path)
        return
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        if how == "truncate":
            f.truncate(min(100, size // 2))
        else:
            f.write(bytes(size))


FILES = {"data": f"{PREFIX}-3.data-00000-of-00001", "index": f"{PREFIX}-3.index", "state": "checkpoint"}


def one_line_lines(r):
    """stdout's lines, after checking the process ended well and printed no traceback."""
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.splitlines()


def loaded(lines, name, step):
    """Whether ``lines`` say checkpoint ``name`` of the run was restored at ``step`` (evaluate names the run by its
    absolute path)."""
    return any(line.startswith(" [*] Load SUCCESS: ") and line.endswith(f"{RUN}/{name} (step {step})")
               for line in lines)


def check_fell_back(r, file):
    lines = one_line_lines(r)
    if file == "state":  # the newest checkpoint is intact: it is restored, and the state file named
        assert any(line.startswith(" [!] ") and f"{RUN}/checkpoint is " in line and line.endswith(
            f": restored {PREFIX}-3, the newest checkpoint on disk") for line in lines), lines
        assert loaded(lines, f"{PREFIX}-3", 2), lines
        return
    warning = [line for line in lines if line.startswith(f" [!] {PREFIX}-3 does not restore (")]
    assert len(warning) == 1 and warning[0].endswith(
        f"): falling back to {PREFIX}-2, the newest checkpoint that does"), lines
    assert loaded(lines, f"{PREFIX}-2", 1), lines


# The damage that once got past the fallback: the newest data file truncated short of the run's record, which was
# read before the fallback ran. The rest of the matrix repeats the same fallback at more cost.
CASE = [("data", "truncate")]
MATRIX = [(f, h) for f in FILES for h in ("truncate", "zero", "delete")]


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("file, how", [pytest.param(f, h, marks=[] if (f, h) in CASE else [pytest.mark.slow])
                                       for f, h in MATRIX])
def test_a_damaged_newest_checkpoint_falls_back_at_every_entry_point(run_copy, entry, file, how):
    damage(run_copy / RUN / FILES[file], how)
    r = run_entry(run_copy, entry)
    check_fell_back(r, file)
    if entry == "training":  # it trained on from there: a good newest checkpoint again, named by the state file
        assert (run_copy / RUN / "checkpoint").read_text().splitlines()[0] == f'model_checkpoint_path: "{PREFIX}-3"'
        assert os.path.getsize(run_copy / RUN / FILES["data"]) > 1000 and (run_copy / RUN / FILES["index"]).is_file()


@pytest.mark.parametrize("entry", ["training", pytest.param("is_train False", marks=pytest.mark.slow),
                                   pytest.param("evaluate", marks=pytest.mark.slow)])
def test_no_checkpoint_that_restores_is_refused_in_one_line(run_copy, entry):
    for n in (2, 3):
        damage(run_copy / RUN / f"{PREFIX}-{n}.data-00000-of-00001", "truncate")
    before = sorted(os.listdir(run_copy / RUN))
    r = run_entry(run_copy, entry)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: {RUN}: 2 checkpoints ({PREFIX}-3 ... -2) but none "
                                                        "restores ("), r.stderr
    assert r.stderr.strip().endswith("): move them away to start afresh, or pass another --checkpoint_dir")
    assert sorted(os.listdir(run_copy / RUN)) == before  # nothing trained over them


# --- a ClusterGAN's best/ checkpoint lost, its best.json kept ------------------------------------------------------

CLUSTER = ["--model", "clustergan", "--dataset", "mnist", "--batch_size", "8", "--train_size", "24", "--val_size", "10", "--epoch", "1000",
           "--save_every", "1", "--sample_every_epochs", "0", "--log_every", "0", "--checkpoint_dir", "ck",
           "--data_dir", "data"]
CLUSTER_RUN = os.path.join("ck", "clustergan_mnist_8_28")


@pytest.fixture(scope="module")
def cluster_trained(tmp_path_factory):
    """A ClusterGAN run with --val_size trained by main.py: ClusterGAN.model-2 and -3, and best/ with best.json."""
    root = tmp_path_factory.mktemp("cluster")
    write_fake_dataset(root / "data", n_train=40, n_test=20)
    r = program(root, *CLUSTER, "--max_steps", "2")
    assert r.returncode == 0, r.stderr
    return root


@pytest.mark.parametrize("entry", ["is_train False", "evaluate"])
def test_a_lost_best_checkpoint_evaluates_the_latest(cluster_trained, tmp_path, entry):
    shutil.copytree(cluster_trained, tmp_path, dirs_exist_ok=True)
    best = tmp_path / CLUSTER_RUN / "best"
    lost = [n for n in os.listdir(best) if n.startswith("ClusterGAN.model-")]
    assert lost and (best / "best.json").is_file()
    for n in lost:
        os.remove(best / n)
    if entry == "evaluate":
        r = program(tmp_path, "--checkpoint_dir", "ck", "--data_dir", "data", "--num_samples", "2",
                    module="cogan_tf.evaluate")
    else:
        r = program(tmp_path, *CLUSTER, "--is_train", "False", "--noreport")
    lines = one_line_lines(r)
    said = [line for line in lines if line.startswith(" [!] the best checkpoint by validation, ")]
    assert len(said) == 1 and said[0].endswith(
        f"{CLUSTER_RUN}/ClusterGAN.model-3 (step 2), instead"), lines
    assert f"{CLUSTER_RUN}/best/ClusterGAN.model-" in said[0] and ": checkpoint does not restore (" in said[0]
    assert ": evaluating the latest, " in said[0]
