"""No run lost: checkpoint fallback, failed writes, non-finite losses, resumed hyperparameters,
stops by signal, output directories checked up front, evaluation from config.json."""

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from cogan_tf import config as C
from cogan_tf import runner, stops
from cogan_tf.errors import RunStopped, UsageError
from tests.conftest import ROOT, restore as restore_gan, train_config, write_fake_dataset

FAITHFUL = C.CoganConfig()


def fake_domains(n=32, seed=0):
    x = np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    return [x, 255 - x]


def cfg(tmp_path, **kw):
    return train_config(tmp_path, **{**dict(batch_size=8, epoch=100, save_every=0), **kw})


def run(tmp_path, max_steps=None, is_train=True, model_cfg=FAITHFUL, **kw):
    """One in-process run; returns (gan, its log lines)."""
    logs = []
    gan = runner.run(model_cfg, cfg(tmp_path, max_steps=max_steps, **kw), is_train=is_train, arrays=fake_domains(),
                     log=logs.append)
    return gan, logs


def ckpt_dir(tmp_path, batch=8):
    return tmp_path / "checkpoint" / f"mnist_{batch}_28"


def numbers(tmp_path, batch=8):
    """The N of the CoGAN.model-N.index files on disk, newest first."""
    names = os.listdir(ckpt_dir(tmp_path, batch))
    return sorted((int(m.group(1)) for m in map(re.compile(r"CoGAN\.model-(\d+)\.index").fullmatch, names) if m),
                  reverse=True)


def recorded(tmp_path):
    """The checkpoint the `checkpoint` state file names."""
    first = (ckpt_dir(tmp_path) / "checkpoint").read_text().splitlines()[0]
    return re.fullmatch(r'model_checkpoint_path: "(.*)"', first).group(1)


def restore(tmp_path, **kw):
    """Build the GAN and restore its newest intact checkpoint as evaluation does, without writing grids
    or an export: the log lines."""
    logs = []
    restore_gan(runner.make_gan(FAITHFUL, cfg(tmp_path, **kw), arrays=fake_domains()), logs.append)
    return logs


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A run's outputs with CoGAN.model-3 (after step 2) and CoGAN.model-5 (after step 4), the state file
    naming -5; each test works on its own copy (``two_checkpoints``)."""
    root = tmp_path_factory.mktemp("made")
    run(root, max_steps=2)
    run(root, max_steps=4)
    assert numbers(root) == [5, 3]
    return root


@pytest.fixture
def two_checkpoints(made, tmp_path):
    shutil.copytree(made, tmp_path, dirs_exist_ok=True)
    return tmp_path


# --- 1. a lost or unreadable `checkpoint` state file ----------------------------------------------------

def test_lost_or_unreadable_state_file_falls_back_to_the_newest_checkpoint(two_checkpoints):
    tmp_path = two_checkpoints
    path = ckpt_dir(tmp_path) / "checkpoint"
    path.unlink()
    assert restore(tmp_path) == [f" [!] {path} is missing: restored CoGAN.model-5, the newest checkpoint on disk",
                                 f" [*] Load SUCCESS: {ckpt_dir(tmp_path)}/CoGAN.model-5 (step 4)"]
    assert not path.exists()  # evaluation writes nothing
    path.write_text("garbage\n")
    _, logs = run(tmp_path, max_steps=5)
    assert f" [!] {path} is unreadable: restored CoGAN.model-5, the newest checkpoint on disk" in logs
    assert any("Load SUCCESS" in line and "(step 4)" in line for line in logs)
    assert numbers(tmp_path) == [6, 5, 3]  # nothing from scratch wrote over CoGAN.model-3
    assert recorded(tmp_path) == "CoGAN.model-6"


def test_checkpoint_files_none_of_which_restores_are_refused(two_checkpoints):
    tmp_path = two_checkpoints
    d = ckpt_dir(tmp_path)
    for n in (3, 5):
        with open(d / f"CoGAN.model-{n}.data-00000-of-00001", "r+b") as f:
            f.truncate(1000)
    before = sorted(os.listdir(d))
    for is_train in (True, False):
        with pytest.raises(UsageError, match=rf"^{d}: 2 checkpoints \(CoGAN.model-5 ... -3\) but none restores "
                                             r"\(.*\): move them away to start afresh, or pass another "
                                             r"--checkpoint_dir$"):
            run(tmp_path, max_steps=6, is_train=is_train)
    assert sorted(os.listdir(d)) == before  # never trained over them


# --- 2. a damaged newest checkpoint ---------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncate data", "delete index"])
def test_damaged_newest_checkpoint_falls_back_in_training_and_evaluation(two_checkpoints, damage):
    tmp_path = two_checkpoints
    d = ckpt_dir(tmp_path)
    if damage == "truncate data":
        with open(d / "CoGAN.model-5.data-00000-of-00001", "r+b") as f:
            f.truncate(os.path.getsize(f.name) // 2)
    else:
        (d / "CoGAN.model-5.index").unlink()
    # Evaluation, then training (to step 2, where the older checkpoint is: no step, no new checkpoint).
    for is_train in (False, True):
        logs = restore(tmp_path) if not is_train else run(tmp_path, max_steps=2)[1]
        warning = [line for line in logs if line.startswith(" [!] CoGAN.model-5 does not restore (")]
        assert len(warning) == 1, logs
        assert warning[0].endswith("): falling back to CoGAN.model-3, the newest checkpoint that does"), logs
        assert f" [*] Load SUCCESS: {d}/CoGAN.model-3 (step 2)" in logs
        # Training (only) rewrites the state file to name the checkpoint it restored.
        assert recorded(tmp_path) == ("CoGAN.model-3" if is_train else "CoGAN.model-5")


def test_failed_checkpoint_write_leaves_no_debris(two_checkpoints):
    tmp_path = two_checkpoints
    d = ckpt_dir(tmp_path)
    (d / "CoGAN.model-9_temp").mkdir()  # what a save killed midway leaves
    before = sorted(os.listdir(d))
    # A real write error: files larger than 4 MB fail (EFBIG; Python ignores SIGXFSZ), as on a full disk.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, hard))
    try:
        with pytest.raises(RunStopped, match=rf"^could not write the checkpoint {d}/CoGAN.model-6 \(.*\); nothing "
                                             rf"half-written is left and the newest checkpoint, {d}/CoGAN.model-5, "
                                             "is the last good one: free disk space"):
            run(tmp_path, max_steps=5)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    after = sorted(os.listdir(d))
    assert not [f for f in after if "_temp" in f or "tempstate" in f or f.startswith("CoGAN.model-6")], after
    assert set(after) <= set(before)
    assert recorded(tmp_path) == "CoGAN.model-5"
    # The next attempt is not blocked.
    _, logs = run(tmp_path, max_steps=5)
    assert any("Load SUCCESS" in line and "(step 4)" in line for line in logs)
    assert numbers(tmp_path) == [6, 5, 3]


# --- 3. non-finite training -----------------------------------------------------------------------------

def test_non_finite_loss_stops_without_saving_or_exporting(two_checkpoints):
    tmp_path = two_checkpoints
    export = tmp_path / "export" / "cogan" / "saved_model.pb"
    mtime = os.path.getmtime(export)
    with pytest.raises(RunStopped, match=r"^step \d+: non-finite (loss|weights) \(.*\); stopped without saving: the "
                                         rf"newest checkpoint, {ckpt_dir(tmp_path)}/CoGAN.model-5, is the last good "
                                         r"one; lower --learning_rate$"):
        run(tmp_path, max_steps=40, learning_rate=1e30)
    assert numbers(tmp_path) == [5, 3]
    assert recorded(tmp_path) == "CoGAN.model-5"
    assert os.path.getmtime(export) == mtime  # no NaN export


# --- 4. resumed hyperparameters, another batch size --------------------------------------------------------

def test_resume_applies_new_optimizer_hyperparameters(two_checkpoints):
    tmp_path = two_checkpoints
    config_path = ckpt_dir(tmp_path) / "config.json"
    saved = json.loads(config_path.read_text())
    assert (saved["learning_rate"], saved["beta1"], saved["beta2"]) == (2e-4, 0.5, 0.999)
    # Restored at step 4 with max_steps 4: the optimizers as the next step would use them.
    gan, logs = run(tmp_path, max_steps=4, learning_rate=0.1, beta1=0.9)
    assert [line for line in logs if "->" in line] == [
        " [*] learning_rate 0.0002 -> 0.1 (resuming with the value given)",
        " [*] beta1 0.5 -> 0.9 (resuming with the value given)"]
    for opt in (gan.g_opt, gan.d_opt):
        assert float(opt.learning_rate.numpy()) == pytest.approx(0.1)
        assert opt.beta_1 == 0.9
    saved = json.loads(config_path.read_text())
    assert (saved["learning_rate"], saved["beta1"], saved["beta2"]) == (0.1, 0.9, 0.999)


def test_another_batch_size_says_it_starts_a_new_run(two_checkpoints):
    tmp_path = two_checkpoints
    _, logs = run(tmp_path, max_steps=0, batch_size=4)
    hint = (f"{ckpt_dir(tmp_path)} holds a cogan run with batch_size 8: pass --batch_size 8 for it")
    assert f" [!] new run in {ckpt_dir(tmp_path, 4)}, whose export will replace {tmp_path}/export/cogan; {hint}" in logs
    with pytest.raises(UsageError) as e:
        run(tmp_path, is_train=False, batch_size=16)
    assert str(e.value) == (f"no checkpoint in {ckpt_dir(tmp_path, 16)}: {ckpt_dir(tmp_path, 4)} holds a cogan run "
                            f"with batch_size 4: pass --batch_size 4 for it; {hint}")


# --- 5. stops by signal, output directories ------------------------------------------------------------------

def test_stop_signals_remember_the_first_and_default_the_second():
    # A real signal to this process: the handler only records it, and puts the default back, so a second
    # one would end the process at once (not sent here: it would end pytest).
    previous = signal.getsignal(signal.SIGINT)
    with stops.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        err = stop.stopped(7, "ck/CoGAN.model-8")
    assert signal.getsignal(signal.SIGINT) is previous
    assert err.status == 128 + signal.SIGTERM
    assert str(err) == "stopped by SIGTERM after step 7: saved ck/CoGAN.model-8; run the same command to resume"


def main_py(tmp_path, *args, **popen):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # main.py imports the cogan_tf beside it
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_the_current_step_and_exits_in_one_line(tmp_path, signum):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=8)
    p = main_py(tmp_path, "--batch_size", "16", "--train_size", "32", "--epoch", "1000", "--checkpoint_dir", "ck",
                "--log_every", "1", "--data_dir", data_dir)
    for line in p.stdout:
        if line.startswith("Epoch:"):
            p.send_signal(signum)
            break
    out, err = p.communicate(timeout=300)
    assert p.returncode == 128 + signum, err
    lines = err.strip().splitlines()
    # A stop the user asked for is reported as such, not as an error.
    assert "Traceback" not in err and not [x for x in lines if x.startswith("error:")]
    m = re.fullmatch(rf"stopped by {signal.Signals(signum).name} after step (\d+): saved "
                     r"ck/mnist_16_28/CoGAN.model-(\d+); run the same command to resume", lines[-1])
    assert m and int(m.group(2)) == int(m.group(1)) + 1, lines[-1]
    step = int(m.group(1))
    state = (tmp_path / "ck" / "mnist_16_28" / "checkpoint").read_text().splitlines()[0]
    assert state == f'model_checkpoint_path: "CoGAN.model-{step + 1}"'
    # It resumes: the same command with one more step.
    p = main_py(tmp_path, "--batch_size", "16", "--train_size", "32", "--epoch", "1000", "--checkpoint_dir", "ck",
                "--log_every", "1", "--data_dir", data_dir, "--max_steps", str(step + 1))
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert f" [*] Load SUCCESS: ck/mnist_16_28/CoGAN.model-{step + 1} (step {step})" in out.splitlines()
    assert os.path.isfile(tmp_path / "ck" / "mnist_16_28" / f"CoGAN.model-{step + 2}.index")


@pytest.mark.parametrize("flag, is_train", [("checkpoint_dir", "True"), ("sample_dir", "True"), ("log_dir", "True"),
                                            ("export_dir", "True"), ("evaluate_dir", "False"), ("export_dir", "False")])
def test_unwritable_output_directory_refused_before_tensorflow(tmp_path, flag, is_train):
    (tmp_path / "afile").write_text("x")
    p = main_py(tmp_path, "--is_train", is_train, f"--{flag}", "afile/sub", "--data_dir", str(tmp_path / "nodata"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2
    where = {"checkpoint_dir": "afile/sub/mnist_128_28", "log_dir": "afile/sub/cogan_mnist_128_28"}.get(flag, "afile/sub")
    assert err.strip().splitlines() == [
        f"error: --{flag}=afile/sub: cannot write into {where} (afile is a file); pick another directory"], err


# --- 7. evaluation restores what config.json says ------------------------------------------------------------

def test_evaluation_uses_the_recorded_config_not_training_flags(tmp_path):
    trained = C.CoganConfig(d_h0_filters=8)
    run(tmp_path, max_steps=0, model_cfg=trained, train_size=24, seed=5)
    # Other training-only settings (--train_size, --learning_rate, --epoch), no --seed, and the architecture
    # flags at their defaults: evaluated with the recorded architecture and seed, without a word.
    gan, logs = run(tmp_path, is_train=False, learning_rate=0.1, epoch=3, seed=None)
    assert gan.model_cfg == trained and gan.seed == 5
    assert any("Load SUCCESS" in line and "(step 0)" in line for line in logs)
    assert not [line for line in logs if "ignored" in line]
    # Architecture flags given explicitly that disagree: one line per flag, the recorded values used;
    # another --seed draws other evaluation z and blocks nothing.
    asked = C.CoganConfig(d_h0_filters=4, loss_on_logits=True, bn_per_feature=True, h0_feeds_h1=True)
    explicit = {"d_h0_filters": "--d_h0_filters=4", "loss_on_logits": "--corrected=True",
                "bn_per_feature": "--corrected=True", "h0_feeds_h1": "--corrected=True"}
    logs = []
    gan = runner.run(asked, cfg(tmp_path, seed=9), is_train=False, arrays=fake_domains(), log=logs.append,
                     explicit=explicit)
    assert gan.model_cfg == trained and gan.seed == 9
    assert [line for line in logs if "ignored" in line] == [
        f" [!] --d_h0_filters=4 ignored: {ckpt_dir(tmp_path)} was trained with d_h0_filters=8, which evaluation uses",
        f" [!] --corrected=True ignored: {ckpt_dir(tmp_path)} was trained with loss_on_logits=False, "
        "bn_per_feature=False, h0_feeds_h1=False, which evaluation uses"]


@pytest.mark.slow
def test_main_evaluates_a_clustergan_trained_with_train_size(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=20)
    common = ["--model", "clustergan", "--dataset", "mnist", "--batch_size", "16", "--data_dir", data_dir,
              "--sample_every_epochs", "0"]
    p = main_py(tmp_path, "--is_train", "True", "--epoch", "1", "--train_size", "32", *common)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    p = main_py(tmp_path, "--is_train", "False", "--zn_sigma", "0.5", "--noreport", *common)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert (" [!] --zn_sigma=0.5 ignored: checkpoint/clustergan_mnist_16_28 was trained with zn_sigma=1.0, which "
            "evaluation uses") in out.splitlines()


# --- 8. a grid that cannot be written: a checkpoint first, then one line ---------------------------------------

def test_grid_write_failure_checkpoints_first(tmp_path):
    def log(line):
        if line.startswith("Epoch: [ 0] [   1/   4]"):  # step 2; the next step's grid (counter 4) fails
            shutil.rmtree(tmp_path / "samples")  # the run's own folder (it marks it as its own at the start) ...
            (tmp_path / "samples").write_text("not a folder")  # ... becomes a file

    with pytest.raises(RunStopped) as e:
        runner.run(FAITHFUL, cfg(tmp_path, log_every=1, sample_every=3, max_steps=4), arrays=fake_domains(), log=log)
    assert str(e.value) == (f"step 3: could not write {tmp_path}/samples/top (Not a directory); fix the folder, then "
                            f"run the same command to resume (saved {ckpt_dir(tmp_path)}/CoGAN.model-4)")
    assert numbers(tmp_path) == [4]


@pytest.mark.slow
def test_grid_write_failure_saves_the_step_then_stops_in_one_line(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=8)
    args = ("--batch_size", "16", "--train_size", "32", "--epoch", "1000", "--checkpoint_dir", "ck", "--log_every",
            "1", "--data_dir", data_dir, "--save_every", "0")
    p = main_py(tmp_path, *args)
    for line in p.stdout:
        if line.startswith("Epoch:"):
            shutil.rmtree(tmp_path / "ck" / "samples")  # the grids of a run given its own --checkpoint_dir
            (tmp_path / "ck" / "samples").write_text("not a folder")  # the grid at step 100 cannot be written
            break
    out, err = p.communicate(timeout=300)
    assert p.returncode == 1, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert re.fullmatch(r"error: step 100: could not write \S*/samples/top \(Not a directory\); fix the folder, then run the "
                        r"same command to resume \(saved ck/mnist_16_28/CoGAN.model-101\)", lines[-1]), lines[-1]
    assert (tmp_path / "ck" / "mnist_16_28" / "CoGAN.model-101.index").is_file()


# --- 9. --save_every N saves every N steps for every N ------------------------------------------------------

@pytest.mark.parametrize("every, saved", [(1, [7, 6, 5, 4, 3, 2]), (2, [7, 6, 4, 2]), (3, [7, 5, 2]), (500, [7, 2])])
def test_save_every_n_for_every_n(tmp_path, every, saved):
    # Counters 2..7 for steps 1..6 (counter = step + 1, the original's); the original's phase (% 500 == 2)
    # kept; the last step (counter 7) is always saved.
    run(tmp_path, max_steps=6, save_every=every, keep_checkpoints=None)
    assert numbers(tmp_path) == saved


@pytest.mark.slow
def test_save_every_two_in_a_real_run(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=8)
    p = main_py(tmp_path, "--batch_size", "16", "--train_size", "32", "--checkpoint_dir", "ck", "--log_every", "0",
                "--data_dir", data_dir, "--save_every", "2", "--keep_checkpoints", "0", "--max_steps", "5")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    names = os.listdir(tmp_path / "ck" / "mnist_16_28")
    assert sorted(int(n.split("-")[1].split(".")[0]) for n in names if n.endswith(".index")) == [2, 4, 6]


# --- 10. an epoch's records survive a stop in its last step and a mid-epoch resume --------------------------

def _stop_at(step_line):
    """A ``log`` that sends this process a real SIGINT when the per-step line of ``step_line`` is printed."""
    def log(line):
        if line.startswith(step_line):
            os.kill(os.getpid(), signal.SIGINT)
    return log


@pytest.mark.parametrize("model", ["vanilla", pytest.param("clustergan", marks=pytest.mark.slow)])
def test_epoch_records_survive_a_stop_in_the_last_step_and_a_mid_epoch_resume(tmp_path, model):
    from tests.conftest import fake_images

    model_cfg = C.model_config(model)
    kw = dict(model=model, batch_size=8, epoch=3, log_every=1, sample_every_epochs=1, train_size=24)
    x = fake_images(24)  # 3 steps per epoch

    def go(root, log):
        return runner.run(model_cfg, train_config(root, **kw), arrays=x, log=log)

    go(tmp_path / "full", lambda *_: None)
    full = json.loads((tmp_path / "full" / "samples" / model / "losses.json").read_text())["epochs"]
    # Stopped by SIGINT in epoch 0's last step: the epoch's grid and record are there.
    with pytest.raises(RunStopped, match="stopped by SIGINT after step 3"):
        go(tmp_path / "b", _stop_at("Epoch: [ 0] [   2/   3]"))
    out = tmp_path / "b" / "samples" / model
    assert sorted(json.loads((out / "losses.json").read_text())["epochs"]) == ["0"]
    assert (out / "img_0.png").is_file()
    # Stopped mid-epoch 1 (after its first step), then resumed to the end: epoch 1's mean covers its 3 steps.
    with pytest.raises(RunStopped, match="stopped by SIGINT after step 4"):
        go(tmp_path / "b", _stop_at("Epoch: [ 1] [   0/   3]"))
    go(tmp_path / "b", lambda *_: None)
    resumed = json.loads((out / "losses.json").read_text())["epochs"]
    assert sorted(resumed) == ["0", "1", "2"]
    key = "g_loss" if model == "vanilla" else "ge_loss"
    for epoch in ("1", "2"):
        assert resumed[epoch][key] == pytest.approx(full[epoch][key], rel=1e-4), epoch
    assert sorted(os.listdir(out)) == sorted(os.listdir(tmp_path / "full" / "samples" / model))


# --- 11. the export cannot be written: the checkpoint is safe, one line ---------------------------------------

def test_unwritable_export_at_the_end_says_the_checkpoint_is_safe(tmp_path):
    def log(line):
        if line.startswith("Epoch: [ 0] [   2/   4]"):  # the last step: the export comes next
            (tmp_path / "export").write_text("not a folder")

    with pytest.raises(RunStopped) as e:
        runner.run(FAITHFUL, cfg(tmp_path, log_every=1, max_steps=3), arrays=fake_domains(), log=log)
    d = ckpt_dir(tmp_path)
    assert str(e.value) == (f"could not write the SavedModel {tmp_path}/export/cogan (File exists); the checkpoint "
                            f"{d}/CoGAN.model-4 is safe: export it with `python main.py --is_train False` and this "
                            "run's flags")
    assert not e.value.requested and numbers(tmp_path) == [4]


# --- 14. a signal during the export ---------------------------------------------------------------------------

def test_a_signal_during_the_export_lets_it_finish_then_says_so(tmp_path, monkeypatch):
    from cogan_tf.cogan import CoGAN

    exporting = CoGAN.export

    def export(self, export_dir):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the SavedModel is written
        return exporting(self, export_dir)

    monkeypatch.setattr(CoGAN, "export", export)
    with pytest.raises(RunStopped) as e:
        run(tmp_path, max_steps=2)
    assert e.value.requested and e.value.status == 128 + signal.SIGTERM
    target = tmp_path / "export" / "cogan"
    assert str(e.value) == (f"stopped by SIGTERM during the export, which was let finish: the training is complete, "
                            f"saved {ckpt_dir(tmp_path)}/CoGAN.model-3, exported {target}")
    assert (target / "saved_model.pb").is_file()
    assert [n for n in os.listdir(tmp_path / "export") if n.startswith(".tmp-") or n.startswith(".old-")] == []
