"""A run's directory: RunRecord reads config.json and the checkpoint listing once, and a run reads
config.json once."""

import dataclasses
import json
import os

import pytest

from cogan_tf import config as C, rundir, runner
from cogan_tf.errors import DataError
from tests.conftest import fake_images, quiet, train_config


def test_record_of_a_directory(tmp_path):
    missing = rundir.RunRecord.read(str(tmp_path / "none"))
    assert missing.config is None and missing.checkpoints() == [] and missing.model_config is None
    d = tmp_path / "run"
    d.mkdir()
    for name in ("A.model-3.index", "A.model-12.data-00000-of-00001", "B.model-7.index", "A.model-5_temp", "checkpoint"):
        (d / name).write_text("")
    (d / "config.json").write_text(json.dumps({"model": "vanilla", "model_config": {"hidden": 64}, "seed": 4,
                                               "dataset": "mnist", "batch_size": 8, "disjoint_domains": False,
                                               "train_size": None}))
    r = rundir.RunRecord.read(str(d))
    assert r.checkpoints() == [12, 7, 3] and r.checkpoints("A.model") == [12, 3]
    assert r.model_config == {"hidden": 64} and r.config_path == str(d / "config.json")
    t = r.train_config(data_dir="data")
    assert (t.model, t.batch_size, t.seed, t.dataset, t.checkpoint_dir) == ("vanilla", 8, 4, "mnist", str(tmp_path))
    (d / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="not a run's config.json"):
        rundir.RunRecord.read(str(d))


def test_a_run_reads_its_config_json_once(tmp_path, monkeypatch):
    reads = []
    real = rundir.load_run_config

    def counting(path):
        if os.path.exists(path):
            reads.append(path)
        return real(path)

    monkeypatch.setattr(rundir, "load_run_config", counting)
    cfg = train_config(tmp_path, model="vanilla", batch_size=8)
    x = fake_images(16)
    runner.run(C.VanillaConfig(), dataclasses.replace(cfg, max_steps=1), arrays=x, log=quiet)
    assert reads == []  # a fresh run: nothing to read
    runner.run(C.VanillaConfig(), dataclasses.replace(cfg, max_steps=2), arrays=x, log=quiet)
    assert len(reads) == 1  # resumed: config.json read once for seed, inherited fields, checks and hyperparameters
    reads.clear()
    runner.run(C.VanillaConfig(), cfg, is_train=False, arrays=x, log=quiet)
    assert len(reads) == 1  # evaluated: once

