"""The run's record: config.json is checked entry by entry on read."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from cogan_tf import config as C
from cogan_tf import rundir
from cogan_tf.errors import DataError
from tests.conftest import ROOT

FIX = "correct it, or put the run's own config.json back"


def write_record(directory, model="cogan", model_cfg=None, edit=None, **train_fields):
    """config.json for ``model`` as training writes it, then ``edit`` (``{"seed": "abc"}``;
    ``{"model_config": {...}}`` edits fields of the model config) applied to its JSON; returns its path."""
    model_cfg = model_cfg or C.model_config(model)
    path = os.path.join(str(directory), rundir.CONFIG_FILE)
    os.makedirs(str(directory), exist_ok=True)
    rundir.save_run_config(path, model, model_cfg, C.train_config(model, **{"seed": 5, **train_fields}))
    saved = json.loads(open(path).read())
    for key, value in (edit or {}).items():
        if key == "model_config" and isinstance(value, dict):
            saved["model_config"].update(value)
        else:
            saved[key] = value
    with open(path, "w") as f:
        json.dump(saved, f)
    return path


# --- config.json checked entry by entry --------------------------------------------------------------------

@pytest.mark.parametrize("edit, said", [
    ({"learning_rate": "fast"}, '"learning_rate" is "fast", not a finite number'),
    ({"seed": "abc"}, '"seed" is "abc", not an integer >= 0 or null'),
    ({"seed": True}, '"seed" is true, not an integer >= 0 or null'),  # a bool is not an int
    ({"seed": 5.5}, '"seed" is 5.5, not an integer >= 0 or null'),
    ({"seed": -1}, '"seed" is -1, not an integer >= 0 or null'),
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
        rundir.RunRecord.read(str(tmp_path))
    assert str(e.value) == f"{path}: {said}; {FIX}"


# What every config.json has held since the first one.
@pytest.mark.parametrize("entry", ["model", "model_config", "seed", "dataset", "batch_size", "disjoint_domains",
                                   "train_size"])
def test_an_entry_every_config_json_has_is_required(tmp_path, entry):
    path = write_record(tmp_path)
    saved = json.loads(open(path).read())
    del saved[entry]
    open(path, "w").write(json.dumps(saved))
    with pytest.raises(DataError, match=f'^{re.escape(path)}: no "{entry}" entry; '):
        rundir.RunRecord.read(str(tmp_path))


def test_damaged_json_is_one_line_saying_what_to_do(tmp_path):
    path = tmp_path / rundir.CONFIG_FILE
    path.write_text("{not json")
    with pytest.raises(DataError) as e:
        rundir.RunRecord.read(str(tmp_path))
    assert re.fullmatch(rf"{re.escape(str(path))}: not a run's config.json \(.*\); {re.escape(FIX)}", str(e.value))


@pytest.mark.parametrize("model, recipe", [("cogan", None), ("vanilla", None), ("clustergan", None),
                                           ("clustergan", "paper")])
def test_every_field_of_the_config_classes_is_checked(tmp_path, model, recipe):
    """The fields come from the dataclasses: a field added to one is checked without a word here."""
    model_cfg = C.model_config(model, recipe)
    path = write_record(tmp_path, model, model_cfg, train_size=64, mixed_precision="mixed_bfloat16")
    record = rundir.RunRecord.read(str(tmp_path))  # what training writes reads back as written
    assert C.model_config_from_dict(model, record.model_config) == model_cfg
    assert record.config["train_size"] == 64 and record.config["mixed_precision"] == "mixed_bfloat16"
    fields = [f.name for f in dataclasses.fields(type(model_cfg))]
    for name in fields:
        write_record(tmp_path, model, model_cfg, edit={"model_config": {name: [1]}})
        with pytest.raises(DataError, match=rf'^{re.escape(path)}: model_config "{name}" is \[1\], not '):
            rundir.RunRecord.read(str(tmp_path))
    for name in rundir.RECORDED_FIELDS:
        write_record(tmp_path, model, model_cfg, edit={name: [1]})
        with pytest.raises(DataError, match=rf'^{re.escape(path)}: "{name}" is \[1\], not '):
            rundir.RunRecord.read(str(tmp_path))


def test_optional_fields_take_null_and_floats_take_integers(tmp_path):
    write_record(tmp_path, edit={"learning_rate": 1, "seed": None, "model_config": {"d_h0_filters": None,
                                                                                    "real_target": 1}})
    record = rundir.RunRecord.read(str(tmp_path))
    assert record.config["learning_rate"] == 1 and record.model_config["real_target"] == 1


# --- real processes --------------------------------------------------------------------------------------------

def program(cwd, args, module=None):
    """Run main.py (or ``python -m module``) with ``args`` in ``cwd``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # main.py imports the cogan_tf beside it
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user starts it: TensorFlow's start-up lines held back
    if module:
        env["PYTHONPATH"] = ROOT
    cmd = ["-m", module] if module else [os.path.join(ROOT, "main.py")]
    return subprocess.run([sys.executable, *cmd, *args], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=600)


def one_line_error(r):
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_evaluate_refuses_a_wrong_config_json_in_one_line(tmp_path):
    path = write_record(tmp_path / "ck" / "mnist_128_28", edit={"model_config": {"d_h0_filters": "abc"}})
    r = program(tmp_path, ["--checkpoint_dir", "ck", "--data_dir", "nodata"], module="cogan_tf.evaluate")
    assert one_line_error(r) == (f"error: {os.path.relpath(path, tmp_path)}: model_config \"d_h0_filters\" is "
                                 f"\"abc\", not an integer >= 0 or null; {FIX}")
