"""The folders a run writes into: the export replaces only an earlier export, nested output folders and
a checkpoint folder in use are refused before TensorFlow starts, a killed lock holder leaves no stale
lock, an interrupted export's leftovers are cleaned, and refusals leave nothing on disk."""

import os
import signal
import subprocess
import sys
import time

import pytest

from cogan_tf import outputs
from cogan_tf.errors import UsageError
from tests.conftest import ROOT, write_fake_dataset


def main_py(cwd, *args, timeout=120):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # main.py imports the cogan_tf beside it
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=timeout)


def tree(root):
    """Every path under ``root``, relative, sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root) for n in dirs + files]
    return sorted(out)


def refused_before_tensorflow(cwd, *args):
    """Run main.py and return its one error line; it must exit 2 before TensorFlow starts."""
    r = main_py(cwd, *args)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and "tensorflow" not in r.stdout.lower()
    return lines[0]


# --- the export replaces only an earlier export ------------------------------------------------------------

def test_export_into_the_run_s_own_checkpoint_folder_is_refused(tmp_path):
    # --checkpoint_dir out/cogan --export_dir out: the export's target out/cogan holds the run's checkpoints.
    ck = tmp_path / "out" / "cogan" / "mnist_128_28"
    ck.mkdir(parents=True)
    (ck / "CoGAN.model-3.index").write_text("x")
    before = tree(tmp_path)
    line = refused_before_tensorflow(tmp_path, "--checkpoint_dir", "out/cogan", "--export_dir", "out")
    assert line == ("error: --export_dir: out/cogan contains out/cogan/mnist_128_28 (--checkpoint_dir); the two "
                    "must be separate folders, neither inside the other")
    assert tree(tmp_path) == before


def test_a_user_s_own_folder_at_the_export_target_is_refused_not_deleted(tmp_path):
    mine = tmp_path / "work" / "cogan"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    line = refused_before_tensorflow(tmp_path, "--export_dir", "work", "--data_dir", "nodata")
    assert line == ("error: --export_dir=work: work/cogan holds files that are not an earlier export of this "
                    "project (notes.txt), which the export would delete; pick another --export_dir")
    assert (mine / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "checkpoint").exists() and not (tmp_path / "samples").exists()


@pytest.mark.parametrize("args, message", [
    (("--sample_dir", "export/cogan/grids"), "--export_dir: export/cogan contains export/cogan/grids (--sample_dir)"),
    (("--export_dir", "checkpoint/mnist_128_28"),
     "--export_dir: checkpoint/mnist_128_28/cogan lies inside checkpoint/mnist_128_28 (--checkpoint_dir)"),
    (("--log_dir", "export/cogan"), "--export_dir: export/cogan contains export/cogan/cogan_mnist_128_28 (--log_dir)"),
], ids=["samples inside export", "export inside checkpoint", "logs inside export"])
def test_nested_output_folders_are_refused(tmp_path, args, message):
    line = refused_before_tensorflow(tmp_path, *args, "--data_dir", "nodata")
    assert line.startswith(f"error: {message}"), line
    assert tree(tmp_path) == []


def test_the_quick_start_s_checkpoints_inside_its_grid_folder_are_allowed(tmp_path):
    from cogan_tf import config as C

    cfg = C.train_config("cogan", checkpoint_dir=str(tmp_path / "quick"), sample_dir=str(tmp_path / "quick"),
                         log_dir=str(tmp_path / "logs"), export_dir=str(tmp_path / "export"))
    outputs.check_output_dirs(C.CoganConfig(), cfg)
    assert os.listdir(tmp_path) == []


def test_which_folders_the_export_may_replace(tmp_path):
    assert outputs.export_target_problem(str(tmp_path / "absent")) is None
    (tmp_path / "empty").mkdir()
    assert outputs.export_target_problem(str(tmp_path / "empty")) is None
    marked = tmp_path / "marked"
    (marked / "variables").mkdir(parents=True)
    (marked / "saved_model.pb").write_text("")
    (marked / outputs.EXPORT_MARKER).write_text(outputs.export_marker("cogan"))
    assert outputs.export_target_problem(str(marked)) is None
    plain = tmp_path / "plain"  # a SavedModel without the marker: not this project's export, refused
    (plain / "variables").mkdir(parents=True)
    for name in ("saved_model.pb", "fingerprint.pb"):
        (plain / name).write_text("")
    assert outputs.export_target_problem(str(plain)) == (
        f"{plain} holds files that are not an earlier export of this project (fingerprint.pb, saved_model.pb, "
        "variables), which the export would delete")
    (tmp_path / "afile").write_text("x")
    assert outputs.export_target_problem(str(tmp_path / "afile")).endswith("exists and is not a folder")


# --- one run per checkpoint folder -----------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
sys.path.insert(0, {root!r})
from cogan_tf import outputs
outputs.RunLock.acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""


def hold_lock(folder):
    """A real process holding the run lock on ``folder``; returns it once the lock is taken."""
    p = subprocess.Popen([sys.executable, "-c", HOLD_LOCK.format(root=ROOT), str(folder)], stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_a_second_run_on_a_locked_checkpoint_folder_is_refused_until_the_holder_dies(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=8)
    ck = tmp_path / "ck" / "mnist_16_28"
    ck.mkdir(parents=True)
    (ck / "CoGAN.model-9_temp").mkdir()  # the holder's save in progress: not debris to a refused run
    holder = hold_lock(ck)
    try:
        args = ("--batch_size", "16", "--train_size", "32", "--checkpoint_dir", "ck", "--data_dir", data_dir,
                "--max_steps", "1", "--log_every", "0")
        line = refused_before_tensorflow(tmp_path, *args)
        assert line == (f"error: ck/mnist_16_28 is in use by another run (pid {holder.pid}): wait for it to end, "
                        "pass --wait_for_lock to wait, or give this run another --checkpoint_dir")
        assert (ck / "CoGAN.model-9_temp").is_dir()
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed holder: the kernel drops its lock
        holder.wait()
    # What an export killed midway leaves (SIGKILL, or a second signal): cleaned at the next start. (The export of
    # a run given its own --checkpoint_dir goes under it.)
    (tmp_path / "ck" / "export" / ".tmp-cogan-a1b2").mkdir(parents=True)
    (tmp_path / "ck" / "export" / ".old-cogan-c3d4").mkdir()
    r = main_py(tmp_path, *args, timeout=300)
    assert r.returncode == 0, r.stderr
    assert not (ck / "CoGAN.model-9_temp").exists()  # debris cleaned, now under this run's lock
    assert sorted(os.listdir(tmp_path / "ck" / "export")) == [".cogan.lock", "cogan"]
    assert (ck / "CoGAN.model-2.index").is_file()


def test_wait_for_lock_waits_with_a_line_then_takes_it(tmp_path):
    folder = tmp_path / "run"
    holder = hold_lock(folder)
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); from cogan_tf import outputs; "
            f"lock = outputs.RunLock.acquire({str(folder)!r}, wait=True); print('got it', lock.waited, flush=True)")
    waiter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert waiter.stdout.readline().strip() == f"[*] waiting for pid {holder.pid}, which is training in {folder}"
        time.sleep(0.5)
        assert waiter.poll() is None  # still waiting
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert waiter.stdout.readline().strip() == "got it True"  # the run then reads its folder again
    assert waiter.wait(timeout=30) == 0
    assert (folder / outputs.LOCK_FILE).read_text().strip() == str(waiter.pid)


def test_a_held_lock_refuses_a_second_taker_until_released(tmp_path):
    """No registry of held locks: a second run in the same process is refused as one in another process."""
    a = outputs.RunLock.acquire(str(tmp_path))
    try:
        assert not a.waited
        with pytest.raises(UsageError, match=f"is in use by another run \\(pid {os.getpid()}\\)"):
            outputs.RunLock.acquire(str(tmp_path))
        assert outputs.try_lock(str(tmp_path / outputs.LOCK_FILE)) is None  # held against others
    finally:
        a.release()
    a.release()  # a second release does nothing
    outputs.RunLock.acquire(str(tmp_path)).release()


def test_an_abandoned_lock_removes_only_the_folders_taking_it_made(tmp_path):
    """A run refused after taking its lock (a device TensorFlow does not have) leaves nothing behind."""
    outputs.RunLock.acquire(str(tmp_path / "new" / "run")).abandon()
    assert os.listdir(tmp_path) == []
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text("{}")
    outputs.RunLock.acquire(str(tmp_path / "old")).abandon()
    assert sorted(os.listdir(tmp_path / "old")) == [outputs.LOCK_FILE, "config.json"]


# --- an interrupted export's leftovers --------------------------------------------------------------------

def test_leftovers_of_a_killed_export_are_cleaned_and_a_moved_aside_export_put_back(tmp_path):
    export_dir = tmp_path / "export"
    (export_dir / ".tmp-cogan-abc" / "variables").mkdir(parents=True)  # an unfinished export
    (export_dir / ".old-cogan-def").mkdir()  # the previous export, moved aside; the swap never happened
    (export_dir / ".old-cogan-def" / "saved_model.pb").write_text("previous")
    (export_dir / ".tmp-vanilla-x").mkdir()  # another model's: not this target's
    logs = []
    outputs.clean_export_leftovers(str(export_dir / "cogan"), logs.append)
    assert sorted(os.listdir(export_dir)) == [".cogan.lock", ".tmp-vanilla-x", "cogan"]
    assert (export_dir / "cogan" / "saved_model.pb").read_text() == "previous"
    assert logs == [f" [*] {export_dir / 'cogan'}: put back the previous export, which an interrupted export had "
                    "moved aside"]
    # With the target in place, a moved-aside copy is only a leftover.
    (export_dir / ".old-cogan-ghi").mkdir()
    outputs.clean_export_leftovers(str(export_dir / "cogan"), logs.append)
    assert sorted(os.listdir(export_dir)) == [".cogan.lock", ".tmp-vanilla-x", "cogan"]


def test_leftovers_are_not_touched_while_another_process_exports(tmp_path):
    target = tmp_path / "export" / "cogan"
    (tmp_path / "export" / ".tmp-cogan-inprogress").mkdir(parents=True)
    code = (f"import sys, time; sys.path.insert(0, {ROOT!r}); from cogan_tf import outputs\n"
            f"with outputs.export_lock({str(target)!r}):\n    print('exporting', flush=True); time.sleep(600)")
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "exporting"
        outputs.clean_export_leftovers(str(target))
        assert (tmp_path / "export" / ".tmp-cogan-inprogress").is_dir()
    finally:
        other.kill()
        other.wait()


# --- refusals leave nothing behind; precise one-line messages ----------------------------------------------


@pytest.mark.parametrize("args, message", [
    (("--train_size", "nan"), "--train_size=nan: must be a number of images (or inf: all of them)"),
    (("--is_train", "maybe"), "--is_train maybe: expected True or False"),
    (("--learning_rate", "inf"), "--learning_rate=inf: must be a positive number"),
    (("--sample_dir", "dangling"), "--sample_dir=dangling: cannot write into dangling (a symbolic link to nowhere, "
                                   "which does not exist); pick another directory"),
    (("--sample_dir", "loop"), "--sample_dir=loop: cannot write into loop (a symbolic link that loops); pick another "
                               "directory"),
    (("--log_dir", "/".join(["x" * 200] * 16 + ["y" * 300])), None),
])
def test_precise_one_line_refusals_that_leave_nothing(tmp_path, args, message):
    os.symlink("nowhere", str(tmp_path / "dangling"))
    os.symlink("loop", str(tmp_path / "loop"))
    line = refused_before_tensorflow(tmp_path, *args, "--data_dir", "nodata")
    if message is None:
        assert line.startswith("error: --log_dir=xxx") and line.endswith("(a name in the path is too long); pick "
                                                                          "another directory"), line
    else:
        assert line == f"error: {message}"
    assert sorted(os.listdir(tmp_path)) == ["dangling", "loop"]


def test_evaluation_without_a_checkpoint_leaves_no_empty_folders(tmp_path):
    r = main_py(tmp_path, "--is_train", "False", "--data_dir", "nodata", timeout=300)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: no checkpoint in "), r.stderr
    assert os.listdir(tmp_path) == []
