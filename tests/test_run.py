"""cogan_tf/run.py: a run decided once. prepare() checks the folders, reads the record, refuses another
setup, takes the lock, settles the record with the checkpoint's own, names the checkpoint to resume and
resolves the seed; the loop takes the Run and checks none of it again. (Refusals in one line of a real
main.py, before TensorFlow starts: tests/test_record.py, tests/test_outputs.py.)"""

import dataclasses

import pytest

from cogan_tf import config as C, outputs, record as record_lib, run as run_lib, runner, train
from cogan_tf.errors import UsageError
from tests.conftest import fake_images, quiet, train_config

CFG = C.VanillaConfig(hidden=16)


def cfg(tmp_path, **kw):
    return train_config(tmp_path, model="vanilla", batch_size=8, **kw)


def test_a_new_run_holds_its_lock_until_closed(tmp_path):
    run = run_lib.prepare(CFG, cfg(tmp_path, seed=None), log=quiet)
    try:
        assert run.training and run.chief and run.resume is None and run.record.config is None
        assert run.train_cfg.seed == 0 and run.model_cfg == CFG  # no --seed and nothing recorded: 0
        assert run.directory == str(tmp_path / "checkpoint" / "vanilla_mnist_8_28")
        with pytest.raises(UsageError, match="is in use by another run"):
            run_lib.prepare(CFG, cfg(tmp_path), log=quiet)  # one lock, taken once: no registry lets it through
    finally:
        run.close()
    run_lib.prepare(CFG, cfg(tmp_path), log=quiet).close()  # released


def test_check_only_takes_nothing_and_writes_nothing(tmp_path):
    assert run_lib.prepare(CFG, cfg(tmp_path), check_only=True, log=quiet) is None
    assert list(tmp_path.iterdir()) == []


def test_a_resume_names_its_checkpoint_and_takes_the_recorded_seed(tmp_path):
    runner.run(CFG, cfg(tmp_path, seed=7, max_steps=1), arrays=fake_images(16), log=quiet)
    with run_lib.prepare(CFG, cfg(tmp_path, seed=None), log=quiet) as run:
        assert run.train_cfg.seed == 7 and run.record.config["seed"] == 7
        assert run.resume == f"{run.directory}/VanillaGAN.model-2"
    with pytest.raises(UsageError, match="made with seed=7, not 8"):
        run_lib.prepare(CFG, cfg(tmp_path, seed=8), log=quiet)


def test_an_evaluation_takes_no_lock_and_the_recorded_architecture(tmp_path):
    runner.run(CFG, cfg(tmp_path, max_steps=1), arrays=fake_images(16), log=quiet)
    lines = []
    with run_lib.prepare(C.VanillaConfig(hidden=32), cfg(tmp_path), training=False,
                         explicit={"hidden": "--hidden_size=32"}, log=lines.append) as run:
        assert run.lock is None and not run.training and run.model_cfg == CFG
        assert lines == [f" [!] --hidden_size=32 ignored: {run.directory} was trained with hidden=16, which "
                         "evaluation uses"]
        with run_lib.prepare(CFG, cfg(tmp_path), training=False, log=quiet):  # evaluations do not exclude each other
            pass


def test_the_loop_checks_nothing_again(tmp_path, monkeypatch):
    """Folders, record, lock and seed are decided by prepare(); once it returned, fit() and the
    evaluation read none of them again."""
    runner.run(CFG, cfg(tmp_path, max_steps=1), arrays=fake_images(16), log=quiet)
    for training, steps in ((True, 2), (False, None)):
        run = run_lib.prepare(CFG, cfg(tmp_path, max_steps=steps), training=training, log=quiet)
        gan = runner.make_gan(run.model_cfg, run.train_cfg, arrays=fake_images(16))

        def again(*_, **__):
            raise AssertionError("checked again after prepare()")

        with monkeypatch.context() as m:
            for owner, name in ((outputs, "check_output_dirs"), (record_lib.RunRecord, "read"),
                                (outputs.RunLock, "acquire"), (record_lib, "resolved_seed"),
                                (record_lib, "check_setup"), (record_lib, "load_run_config")):
                m.setattr(owner, name, again)
            loop = (train.fit if training else train.report)(gan, run, log=quiet)
        run.close()
        assert int(loop.step.numpy()) == 2  # trained one more step, then evaluated there


def test_existing_rebuilds_a_run_from_its_record_alone(tmp_path):
    runner.run(CFG, cfg(tmp_path, seed=4, max_steps=1), arrays=fake_images(16), log=quiet)
    found = record_lib.find_run(str(tmp_path / "checkpoint"), "vanilla")
    run = run_lib.existing(found, data_dir="data", log=quiet)
    assert run.model_cfg == CFG and run.train_cfg.seed == 4 and run.train_cfg.batch_size == 8
    assert run.resume == f"{found.directory}/VanillaGAN.model-2" and run.lock is None
    assert dataclasses.replace(run.train_cfg, data_dir="data").checkpoint_dir == str(tmp_path / "checkpoint")
