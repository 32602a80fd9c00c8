"""The run's record: config.json is checked entry by entry on read, the same record travels inside
every checkpoint (a run resumed without config.json keeps its seed and data order), and what
config.json alone can refuse is refused before TensorFlow starts."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from cogan_tf import config as C
from cogan_tf import record as record_lib
from cogan_tf.errors import DataError, UsageError
from tests.conftest import ROOT, train_config, write_fake_dataset

FIX = "correct it, or delete it to resume from the record inside the run's checkpoints"


def write_record(directory, model="cogan", model_cfg=None, edit=None, **train_fields):
    """config.json for ``model`` as training writes it, then ``edit`` (``{"seed": "abc"}``;
    ``{"model_config": {...}}`` edits fields of the model config) applied to its JSON; returns its path."""
    model_cfg = model_cfg or C.model_config(model)
    path = os.path.join(str(directory), record_lib.CONFIG_FILE)
    os.makedirs(str(directory), exist_ok=True)
    record_lib.save_run_config(path, model, model_cfg, C.train_config(model, **{"seed": 5, **train_fields}))
    saved = json.loads(open(path).read())
    for key, value in (edit or {}).items():
        if key == "model_config" and isinstance(value, dict):
            saved["model_config"].update(value)
        else:
            saved[key] = value
    with open(path, "w") as f:
        json.dump(saved, f)
    return path


def test_record_of_a_directory(tmp_path):
    missing = record_lib.RunRecord.read(str(tmp_path / "none"))
    assert missing.config is None and missing.checkpoints() == [] and missing.model_config is None
    d = tmp_path / "run"
    d.mkdir()
    for name in ("A.model-3.index", "A.model-12.data-00000-of-00001", "B.model-7.index", "A.model-5_temp", "checkpoint"):
        (d / name).write_text("")
    write_record(d, "vanilla", C.VanillaConfig(hidden=64), seed=4, batch_size=8)
    r = record_lib.RunRecord.read(str(d))
    assert r.checkpoints() == [12, 7, 3] and r.checkpoints("A.model") == [12, 3]
    assert r.model_config == {"z_dim": 128, "hidden": 64, "dropout": 0.3, "leak": 0.2}
    assert r.config_path == str(d / "config.json")
    t = r.train_config(data_dir="data")
    assert (t.model, t.batch_size, t.seed, t.dataset, t.checkpoint_dir) == ("vanilla", 8, 4, "mnist", str(tmp_path))
    (d / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="not a run's config.json"):
        record_lib.RunRecord.read(str(d))


# --- config.json checked entry by entry --------------------------------------------------------------------

@pytest.mark.parametrize("edit, said", [
    ({"learning_rate": "fast"}, '"learning_rate" is "fast", not a finite number'),
    ({"seed": "abc"}, '"seed" is "abc", not an integer >= 0 or null'),
    ({"seed": True}, '"seed" is true, not an integer >= 0 or null'),  # a bool is not an int
    ({"seed": 5.5}, '"seed" is 5.5, not an integer >= 0 or null'),
    ({"seed": -1}, '"seed" is -1, not an integer >= 0 or null'),
    ({"seed": 2 ** 32}, '"seed" is 4294967296, not an integer from 0 to 4294967295 or null'),
    ({"batch_size": "128"}, '"batch_size" is "128", not an integer >= 0'),
    ({"disjoint_domains": 1}, '"disjoint_domains" is 1, not true or false'),
    ({"train_size": "inf"}, '"train_size" is "inf", not a finite number or null'),
    ({"mixed_precision": "float16"}, '"mixed_precision" is "float16", not one of mixed_float16, mixed_bfloat16 '
                                     'or null'),
    ({"model": "gan"}, '"model" is "gan", not one of cogan, vanilla, clustergan'),
    ({"model_config": {"d_h0_filters": "abc"}}, 'model_config "d_h0_filters" is "abc", not an integer >= 0 or null'),
    ({"model_config": {"loss_on_logits": "yes"}}, 'model_config "loss_on_logits" is "yes", not true or false'),
    ({"model_config": {"real_target": None}}, 'model_config "real_target" is null, not a finite number'),
    ({"model_config": {"bogus": 1}}, 'unknown model_config entry "bogus" (a cogan has no such field)'),
    ({"model_config": []}, '"model_config" is [], not an object'),
    ({"epoch": 3}, 'unknown entry "epoch"'),
    ({"seed": None, "colour": "red"}, 'unknown entry "colour"'),
])
def test_a_wrong_entry_is_one_line_naming_it_the_value_and_the_file(tmp_path, edit, said):
    path = write_record(tmp_path, edit=edit)
    with pytest.raises(DataError) as e:
        record_lib.RunRecord.read(str(tmp_path))
    assert str(e.value) == f"{path}: {said}; {FIX}"


@pytest.mark.parametrize("entry", ["model", "model_config", *record_lib.RECORDED_FIELDS])
def test_every_entry_is_required(tmp_path, entry):
    path = write_record(tmp_path)
    saved = json.loads(open(path).read())
    del saved[entry]
    open(path, "w").write(json.dumps(saved))
    with pytest.raises(DataError, match=f'^{re.escape(path)}: no "{entry}" entry; '):
        record_lib.RunRecord.read(str(tmp_path))


@pytest.mark.parametrize("model", C.MODELS)
def test_every_model_config_field_is_required(tmp_path, model):
    """No field takes a default on reading: what a checkpoint was trained with is what its record says."""
    for name in (f.name for f in dataclasses.fields(C.MODEL_CONFIGS[model])):
        path = write_record(tmp_path, model)
        saved = json.loads(open(path).read())
        del saved["model_config"][name]
        open(path, "w").write(json.dumps(saved))
        with pytest.raises(DataError, match=f'^{re.escape(path)}: no model_config entry "{name}"; '):
            record_lib.RunRecord.read(str(tmp_path))


def test_damaged_json_is_one_line_saying_what_to_do(tmp_path):
    path = tmp_path / record_lib.CONFIG_FILE
    path.write_text("{not json")
    with pytest.raises(DataError) as e:
        record_lib.RunRecord.read(str(tmp_path))
    assert re.fullmatch(rf"{re.escape(str(path))}: not a run's config.json \(.*\); {re.escape(FIX)}", str(e.value))


@pytest.mark.parametrize("model, recipe", [("cogan", None), ("vanilla", None), ("clustergan", None),
                                           ("clustergan", "paper"), ("cogan", "paper")])
def test_every_field_of_the_config_classes_is_checked(tmp_path, model, recipe):
    """The fields come from the dataclasses: a field added to one is checked without a word here."""
    model_cfg = C.model_config(model, recipe)
    path = write_record(tmp_path, model, model_cfg, train_size=64, mixed_precision="mixed_bfloat16")
    record = record_lib.RunRecord.read(str(tmp_path))  # what training writes reads back as written
    assert C.model_config_from_dict(model, record.model_config) == model_cfg
    assert record.config["train_size"] == 64 and record.config["mixed_precision"] == "mixed_bfloat16"
    fields = [f.name for f in dataclasses.fields(type(model_cfg))]
    for name in fields:
        write_record(tmp_path, model, model_cfg, edit={"model_config": {name: [1]}})
        with pytest.raises(DataError, match=rf'^{re.escape(path)}: model_config "{name}" is \[1\], not '):
            record_lib.RunRecord.read(str(tmp_path))
    for name in record_lib.RECORDED_FIELDS:
        write_record(tmp_path, model, model_cfg, edit={name: [1]})
        with pytest.raises(DataError, match=rf'^{re.escape(path)}: "{name}" is \[1\], not '):
            record_lib.RunRecord.read(str(tmp_path))


def test_optional_fields_take_null_and_floats_take_integers(tmp_path):
    write_record(tmp_path, edit={"learning_rate": 1, "seed": None, "model_config": {"d_h0_filters": None,
                                                                                    "real_target": 1}})
    record = record_lib.RunRecord.read(str(tmp_path))
    assert record.config["learning_rate"] == 1 and record.model_config["real_target"] == 1


# --- the record inside the checkpoint ------------------------------------------------------------------------

def fake_domains(n=32, seed=0):
    x = np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    return [x, 255 - x]


LOSS = re.compile(r"Epoch: .*, d_loss: (\S+), g_loss: (\S+)")


def run(tmp_path, max_steps, seed, is_train=True, **kw):
    """An in-process CoGAN run on fake domains: (gan, its log lines, its per-step losses)."""
    from cogan_tf import runner

    logs = []
    cfg = train_config(tmp_path, batch_size=8, epoch=100, log_every=1, max_steps=max_steps, seed=seed, **kw)
    gan = runner.run(C.CoganConfig(), cfg, is_train=is_train, arrays=fake_domains(), log=logs.append)
    return gan, logs, [m.groups() for m in map(LOSS.match, logs) if m]


def ckpt_dir(tmp_path):
    return tmp_path / "checkpoint" / "mnist_8_28"


def test_the_checkpoint_holds_the_record_and_a_resume_without_config_json_keeps_the_seed(tmp_path):
    """(That it repeats the same steps: test_main_resumes_seed_5_without_config_json_with_the_same_losses.)"""
    import tensorflow as tf

    from cogan_tf import checkpoints

    run(tmp_path, 0, seed=5)
    d = ckpt_dir(tmp_path)
    config = d / record_lib.CONFIG_FILE
    written = json.loads(config.read_text())
    # Readable without building anything.
    inside = tf.train.load_variable(str(d / "CoGAN.model-1"), checkpoints.RECORD_KEY)
    assert json.loads(inside) == written and written["seed"] == 5
    config.unlink()
    gan, logs, _ = run(tmp_path, 0, seed=None)
    assert gan.seed == 5
    assert (f" [*] {config} is missing: the record inside {d}/CoGAN.model-1 is used (seed 5); "
            "training writes config.json again") in logs
    assert json.loads(config.read_text()) == written


def test_where_config_json_and_the_checkpoint_disagree_the_checkpoint_wins(tmp_path):
    run(tmp_path, 0, seed=5)
    config = ckpt_dir(tmp_path) / record_lib.CONFIG_FILE
    written = json.loads(config.read_text())
    # Values that pass the checks made before the checkpoint is read (an edited architecture is refused there).
    config.write_text(json.dumps({**written, "seed": 7, "beta1": 0.25}))
    gan, logs, _ = run(tmp_path, 0, seed=None)
    assert gan.seed == 5
    assert [line for line in logs if "disagrees" in line] == [
        f" [!] {config} disagrees with the record inside {ckpt_dir(tmp_path)}/CoGAN.model-1: "
        'beta1 0.25 (checkpoint: 0.5), seed 7 (checkpoint: 5); the checkpoint\'s values are used; '
        "training writes config.json again"]
    assert json.loads(config.read_text()) == written
    # Evaluation reads the checkpoint's record too, and writes nothing.
    config.unlink()
    gan, logs, _ = run(tmp_path, None, seed=None, is_train=False)
    assert gan.seed == 5 and not config.exists()
    assert f" [*] {config} is missing: the record inside {ckpt_dir(tmp_path)}/CoGAN.model-1 is used (seed 5)" in logs


def test_a_checkpoint_without_a_record_inside_is_refused_in_one_line(tmp_path):
    """Every checkpoint main.py writes holds the run's record; one without it is not this program's."""
    import tensorflow as tf

    d = ckpt_dir(tmp_path)
    write_record(d, batch_size=8)
    tf.train.Checkpoint(step=tf.Variable(1, dtype=tf.int64)).write(str(d / "CoGAN.model-2"))
    for is_train in (True, False):
        with pytest.raises(UsageError) as e:
            run(tmp_path, None, seed=None, is_train=is_train)
        assert str(e.value) == (f"{d}/CoGAN.model-2: no run record inside (every checkpoint main.py writes holds "
                                "one): not a checkpoint of this program; move it away, or use a fresh --checkpoint_dir")


# --- real processes --------------------------------------------------------------------------------------------

def program(cwd, args, tensorflow=True, module=None):
    """Run main.py (or ``python -m module``) with ``args`` in ``cwd``. Without ``tensorflow``, importing
    TensorFlow or Keras fails: what it does must be done before TensorFlow starts."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # main.py imports the cogan_tf beside it
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user starts it: TensorFlow's start-up lines held back
    if module:
        env["PYTHONPATH"] = ROOT
    if not tensorflow:
        poison = os.path.join(str(cwd), "no_tensorflow")
        for name in ("tensorflow", "keras"):
            os.makedirs(os.path.join(poison, name), exist_ok=True)
            with open(os.path.join(poison, name, "__init__.py"), "w") as f:
                f.write(f"raise ImportError('{name} imported')\n")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [poison, env.get("PYTHONPATH")]))
    cmd = ["-m", module] if module else [os.path.join(ROOT, "main.py")]
    return subprocess.run([sys.executable, *cmd, *args], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=600)


def one_line_error(r):
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("args, edit, said", [
    (["--is_train", "True"], {"seed": "abc"}, '"seed" is "abc", not an integer >= 0 or null'),
    (["--is_train", "False"], {"model_config": {"bogus": 1}}, 'unknown model_config entry "bogus" (a cogan has no '
                                                               'such field)'),
], ids=["training", "evaluation"])
def test_main_refuses_a_wrong_config_json_before_tensorflow(tmp_path, args, edit, said):
    path = write_record(tmp_path / "ck" / "mnist_128_28", edit=edit)
    r = program(tmp_path, [*args, "--checkpoint_dir", "ck", "--data_dir", "nodata"], tensorflow=False)
    assert one_line_error(r) == f"error: {os.path.relpath(path, tmp_path)}: {said}; {FIX}"


def test_evaluate_refuses_a_wrong_config_json_in_one_line(tmp_path):
    path = write_record(tmp_path / "ck" / "mnist_128_28", edit={"model_config": {"d_h0_filters": "abc"}})
    r = program(tmp_path, ["--checkpoint_dir", "ck", "--data_dir", "nodata"], module="cogan_tf.evaluate")
    assert one_line_error(r) == (f"error: {os.path.relpath(path, tmp_path)}: model_config \"d_h0_filters\" is "
                                 f"\"abc\", not an integer >= 0 or null; {FIX}")


@pytest.mark.parametrize("args, record, said", [
    (["--corrected"], {}, "holds a checkpoint trained with h0_feeds_h1=False (here True, flag --h0_feeds_h1), "
                          "d_h0_filters=None (here 64, flag --d_h0_filters), bn_batch_stats_at_inference=True (here "
                          "False, flag --bn_moving_average), loss_on_logits=False (here True, flag --loss_on_logits), "
                          "bn_per_feature=False (here True, flag --bn_per_feature): pass the flags it was trained with "
                          "to resume it, or a fresh --checkpoint_dir"),
    (["--seed", "4"], {}, "holds a checkpoint made with seed=5, not 4: pass the same flags to resume it, or a fresh "
                          "--checkpoint_dir"),
    (["--disjoint_domains"], {}, "holds a checkpoint made with disjoint_domains=False, not True: pass the same flags "
                                 "to resume it, or a fresh --checkpoint_dir"),
    (["--mixed_precision"], {}, "holds a checkpoint trained in float32, not mixed_float16: resume it without "
                                "--mixed_precision, or use a fresh --checkpoint_dir"),
    (["--tf32"], {}, "holds a checkpoint trained without --tf32: resume it without --tf32, or use a fresh "
                     "--checkpoint_dir"),
    (["--deterministic"], {}, "holds a checkpoint trained without --deterministic: resume it without --deterministic, "
                              "or use a fresh --checkpoint_dir"),
    (["--adam", "keras"], {}, "holds a checkpoint trained with --adam tf1: resume it with --adam tf1, or use a fresh "
                              "--checkpoint_dir"),
    ([], {"model": "vanilla"}, "holds a checkpoint made with model='vanilla', not 'cogan': pass the same flags to "
                               "resume it, or a fresh --checkpoint_dir"),
    (["--is_train", "False"], {"model": "vanilla"}, "holds a checkpoint made with model='vanilla', not 'cogan': pass "
                                                    "the same flags to resume it, or a fresh --checkpoint_dir"),
], ids=["architecture", "seed", "data", "precision", "tf32", "deterministic", "adam", "model", "model-evaluation"])
def test_another_setups_checkpoint_is_refused_before_tensorflow(tmp_path, args, record, said):
    d = tmp_path / "ck" / "mnist_128_28"
    model = record.get("model", "cogan")
    write_record(d, model, edit={"model_config": {}})
    (d / "CoGAN.model-3.index").write_text("")  # a checkpoint to resume: refused before it is read
    r = program(tmp_path, [*args, "--checkpoint_dir", "ck", "--data_dir", "nodata"], tensorflow=False)
    assert one_line_error(r) == f"error: ck/mnist_128_28 {said}"


def test_a_good_resume_passes_the_checks_before_tensorflow(tmp_path):
    """The refusals before TensorFlow let a good resume through (TensorFlow is then needed)."""
    d = tmp_path / "ck" / "mnist_128_28"
    write_record(d)
    (d / "CoGAN.model-3.index").write_text("")
    r = program(tmp_path, ["--checkpoint_dir", "ck", "--data_dir", "nodata"], tensorflow=False)
    assert r.returncode == 1 and "ImportError: tensorflow imported" in r.stderr


@pytest.mark.slow
def test_main_resumes_seed_5_without_config_json_with_the_same_losses(tmp_path):
    """main.py --seed 5 for 4 steps, checkpoints after steps 1 and 4; then without config.json, with the
    checkpoint after step 1 only and no --seed: it resumes at step 1 with seed 5 and repeats steps 2..4."""
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=8)
    common = ["--batch_size", "8", "--train_size", "32", "--epoch", "100", "--checkpoint_dir", "ck", "--data_dir",
              data_dir, "--log_every", "1", "--save_every", "3", "--keep_checkpoints", "0"]
    r = program(tmp_path, [*common, "--seed", "5", "--max_steps", "4"])
    assert r.returncode == 0, r.stderr[-3000:]
    whole = LOSS.findall(r.stdout)
    assert len(whole) == 4
    d = tmp_path / "ck" / "mnist_8_28"
    for name in os.listdir(d):
        if name == "config.json" or name.startswith("CoGAN.model-5."):
            os.remove(d / name)
    r = program(tmp_path, [*common, "--max_steps", "4"])
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout.splitlines()
    assert " [*] ck/mnist_8_28/config.json is missing: the record inside ck/mnist_8_28/CoGAN.model-2 is used " \
           "(seed 5); training writes config.json again" in out
    assert " [*] Load SUCCESS: ck/mnist_8_28/CoGAN.model-2 (step 1)" in out
    assert LOSS.findall(r.stdout) == whole[1:]
    assert json.loads((d / "config.json").read_text())["seed"] == 5
