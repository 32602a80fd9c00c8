"""cogan_tf/checkpoints.py: the package reads a checkpoint in one place only (``newest_that_reads``), so that no
reader can bypass the fallback; and that one reader takes the newest checkpoint whose files read whole, naming each
one it passed over, before anything is taken from it. (The fallback at every entry point, in real processes:
tests/test_damaged_checkpoints.py; in whole runs: tests/test_no_run_lost.py.)"""

import ast
import os

import numpy as np
import tensorflow as tf

from cogan_tf import checkpoints
from tests.conftest import ROOT


def test_the_newest_checkpoint_that_reads_is_the_one_used(tmp_path):
    v = tf.Variable(np.arange(1000, dtype=np.float32))
    ckpt = tf.train.Checkpoint(v=v)
    older = ckpt.write(str(tmp_path / "m-2"))
    v.assign(v + 1.0)
    newest = ckpt.write(str(tmp_path / "m-3"))
    with open(newest + ".data-00000-of-00001", "r+b") as f:
        f.truncate(100)  # a write cut short: the newest checkpoint's data no longer reads
    used = []

    def use(contents):
        used.append(contents.path)
        return tf.train.load_variable(contents.path, "v/.ATTRIBUTES/VARIABLE_VALUE")

    path, value, failed = checkpoints.newest_that_reads([newest, older], use)
    assert path == older and value[0] == 0.0 and value[-1] == 999.0
    assert [p for p, _ in failed] == [newest] and all(why for _, why in failed)
    assert used == [older]  # the damaged one never reached ``use``: its files were read whole first
    # The record inside: none in a checkpoint of other objects.
    assert checkpoints.newest_that_reads([older], lambda c: c)[1] == checkpoints.Contents(older, None)
    # None that reads: no path, and why for each.
    with open(older + ".index", "r+b") as f:
        f.write(bytes(os.path.getsize(older + ".index")))
    path, value, failed = checkpoints.newest_that_reads([newest, older], use)
    assert (path, value) == (None, None) and [p for p, _ in failed] == [newest, older] and used == [older]


# What opens a checkpoint in TensorFlow: its readers, and the objects that restore or read one (a
# tf.train.Checkpoint's read() is caught by its construction; read() itself is every file's).
READERS = {"load_variable", "list_variables", "load_checkpoint", "latest_checkpoint", "get_checkpoint_state",
           "checkpoints_iterator", "CheckpointReader", "NewCheckpointReader", "Checkpoint", "CheckpointManager",
           "restore"}


def checkpoint_readers(path):
    """``(line, call)`` of each call in the module at ``path`` that could open a checkpoint: an attribute in
    READERS (``restore`` on anything but this package's ``train`` module), or ``tf.saved_model.load``, whose
    variables are a checkpoint too."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr, owner = node.func.attr, node.func.value
        if attr == "restore" and isinstance(owner, ast.Name) and owner.id == "train":
            continue  # train.restore: the loop's restore, through checkpoints.restore_newest
        if attr in READERS or (attr == "load" and isinstance(owner, ast.Attribute) and owner.attr == "saved_model"):
            found.append((node.lineno, ast.unparse(node.func)))
    return sorted(found)


def test_only_the_checkpoints_module_opens_a_checkpoint():
    allowed = {os.path.join("cogan_tf", "checkpoints.py"): None,
               # A SavedModel is loaded after export.load read its variables through checkpoints.newest_that_reads.
               os.path.join("cogan_tf", "export.py"): {"tf.saved_model.load"}}
    offenders = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "cogan_tf")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, ROOT)
            for line, call in checkpoint_readers(path):
                if rel in allowed and (allowed[rel] is None or call in allowed[rel]):
                    continue
                offenders.append(f"{rel}:{line}: {call}")
    assert offenders == [], offenders


def test_the_reader_check_finds_a_reader(tmp_path):
    # The check above, shown to catch what it looks for (a test that finds nothing must be able to find something).
    path = tmp_path / "m.py"
    path.write_text("import tensorflow as tf\n"
                    "def f(p, loop, gan):\n"
                    "    tf.train.load_variable(p, 'x')\n"
                    "    tf.train.Checkpoint(step=loop.step).restore(p)\n"
                    "    open(p).read()\n"
                    "    return tf.train.latest_checkpoint(p)\n")
    assert sorted(call for _, call in checkpoint_readers(path)) == [
        "tf.train.Checkpoint", "tf.train.Checkpoint(step=loop.step).restore", "tf.train.latest_checkpoint",
        "tf.train.load_variable"]
