"""cogan_tf/export.py: the three models' SavedModel exports share one contract (a generator of images in
[0, 1], float32 (batch, 28, 28, 1), behind explicit signatures, with the marker naming the model, its dataset
and its run), written atomically, replacing only an earlier export. (Each model's own signatures and a load
in a process without cogan_tf: tests/test_cogan.py, test_vanilla.py, test_clustergan.py; damaged exports
refused in one line: tests/test_evaluate.py.)"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import config as C, export, gan as gan_lib, outputs, runner
from cogan_tf.errors import UsageError
from tests.conftest import fake_images, train_config

# model -> (its model config, its arrays, the serving signature's inputs and outputs)
MODELS = {
    "cogan": (C.CoganConfig(), 2, {"z": 100}, ("bot", "top")),
    "vanilla": (C.VanillaConfig(hidden=16), 1, {"z": 128}, ("images",)),
    "clustergan": (C.ClusterGanConfig(), 1, {"z_c": 10, "z_n": 30}, ("images",)),
}


@pytest.mark.parametrize("model", list(MODELS))
def test_each_model_exports_its_generator_with_the_marker(tmp_path, model):
    model_cfg, n_arrays, inputs, outputs_ = MODELS[model]
    cfg = train_config(tmp_path, model=model, batch_size=8)
    gan = runner.make_gan(model_cfg, cfg, arrays=fake_images(16) * n_arrays)
    keras.utils.set_random_seed(0)
    gan_lib.build_gan(gan)
    path = gan.export(str(tmp_path / "export"))
    assert path == str(tmp_path / "export" / model)
    marker = json.loads((tmp_path / "export" / model / outputs.EXPORT_MARKER).read_text())
    assert marker == {"exported_by": "cogan_tf", "model": model, "dataset": "mnist",
                      "run": os.path.abspath(os.path.join(cfg.checkpoint_dir, gan.checkpoint_subdir()))}
    serve = export.load(path).signatures["serving_default"]
    assert {k: s.shape.as_list() for k, s in serve.structured_input_signature[1].items()} == {
        k: [None, n] for k, n in inputs.items()}
    rng = np.random.default_rng(0)
    feed = {k: tf.constant(rng.standard_normal((64, n)).astype(np.float32)) for k, n in inputs.items()}
    out = serve(**feed)
    assert tuple(sorted(out)) == outputs_
    for v in out.values():
        assert v.shape == (64, 28, 28, 1) and v.dtype == tf.float32
        assert float(tf.reduce_min(v)) >= 0 and float(tf.reduce_max(v)) <= 1
    gan.export(str(tmp_path / "export"))  # again: an earlier export is replaced, nothing left beside it
    assert sorted(os.listdir(tmp_path / "export")) == [f".{model}.lock", model]


def test_save_module_refuses_a_foreign_folder_and_replaces_an_earlier_export(tmp_path):
    import tensorflow as tf
    from cogan_tf import export

    module = tf.Module()
    module.v = tf.Variable(1.0)
    serve = tf.function(lambda x: x * module.v, input_signature=[tf.TensorSpec([None], tf.float32)])
    target = tmp_path / "export" / "cogan"
    target.mkdir(parents=True)
    (target / "run.log").write_text("keep me")
    with pytest.raises(UsageError, match=r"holds files that are not an earlier export .*\(run\.log\)"):
        export.save_module(module, {"serving_default": serve.get_concrete_function()}, str(target))
    assert os.listdir(target) == ["run.log"]
    os.remove(target / "run.log")
    old_umask = os.umask(0o022)
    try:
        export.save_module(module, {"serving_default": serve.get_concrete_function()}, str(target))
        module.v.assign(2.0)
        export.save_module(module, {"serving_default": serve.get_concrete_function()}, str(target))
    finally:
        os.umask(old_umask)
    assert outputs.EXPORT_MARKER in os.listdir(target)
    # The folder has the umask's mode (it was 0700, mkdtemp's).
    assert os.stat(target).st_mode & 0o777 == 0o755
    assert float(tf.saved_model.load(str(target)).signatures["serving_default"](tf.constant([3.0]))["output_0"][0]) == 6
    assert sorted(os.listdir(tmp_path / "export")) == [".cogan.lock", "cogan"]  # no leftovers
