"""cogan_tf/evaluate/clustergan_curve.py: which checkpoints a ClusterGAN run's clustering curve scores, the
earlier rows it reuses, and the G+E count it reads from a checkpoint. (A whole curve over a real run, the
best copy included: tests/test_clustergan.py, the validation test.)"""

import json

import keras
import pytest
import tensorflow as tf

from cogan_tf import record as record_lib
from cogan_tf.errors import DataError
from cogan_tf.evaluate import clustergan_curve


def test_every_checkpoint_on_disk_oldest_first_then_the_best_copy(tmp_path):
    d = tmp_path / "clustergan_mnist_4_28"
    d.mkdir()
    for n in (2, 11, 5):
        (d / f"ClusterGAN.model-{n}.index").write_text("")
    (d / "best").mkdir()
    (d / "best" / "best.json").write_text(json.dumps({"best": {"checkpoint": "best/ClusterGAN.model-5"}}))
    record = record_lib.RunRecord.read(str(d))
    assert clustergan_curve.run_checkpoints(record) == [
        (f"{d}/ClusterGAN.model-2", "checkpoint"), (f"{d}/ClusterGAN.model-5", "checkpoint"),
        (f"{d}/ClusterGAN.model-11", "checkpoint"), (f"{d}/best/ClusterGAN.model-5", "best")]


def test_earlier_rows_are_reused_and_a_file_of_other_rows_is_refused(tmp_path):
    row = {"checkpoint": "ClusterGAN.model-2", "kind": "checkpoint", **{k: 0.5 for k in clustergan_curve.KEYS}}
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"rows": [row]}))
    assert clustergan_curve.old_rows(str(good)) == {("ClusterGAN.model-2", "checkpoint"): row}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": [{"checkpoint": "x"}]}))
    with pytest.raises(DataError, match="not a ClusterGAN clustering curve .*pass --recompute"):
        clustergan_curve.old_rows(str(bad))


def test_the_g_e_count_is_read_from_the_checkpoint(tmp_path):
    opt = keras.optimizers.Adam()
    opt.build([keras.Variable(1.0)])
    opt.iterations.assign(7)
    path = tf.train.Checkpoint(ge_optimizer=opt).write(str(tmp_path / "with"))
    assert clustergan_curve.g_iterations(path) == 7
    path = tf.train.Checkpoint(step=tf.Variable(3)).write(str(tmp_path / "without"))
    assert clustergan_curve.g_iterations(path) == -1  # no G+E optimizer in it
