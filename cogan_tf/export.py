"""SavedModel export of the generators (not the GAN wrapper), with explicit input signatures.

Every exported generator returns images in [0, 1] as float32 [batch, 28, 28, 1]; the modules hold only
the networks they need, so the SavedModel loads with plain TensorFlow (no cogan_tf import).
"""

from __future__ import annotations

import os
import re
from typing import Callable, Dict, Optional

import tensorflow as tf

from cogan_tf import checkpoints, fileio, outputs
from cogan_tf.errors import DataError, UsageError


def save_module(module: tf.Module, signatures: Dict[str, Callable], export_dir: str,
                about: Optional[Dict[str, str]] = None) -> str:
    """``tf.saved_model.save`` into a temporary folder, renamed into place when complete, so an
    interrupted export never leaves a SavedModel that fails to load. Only an earlier export of this
    project (or nothing) at ``export_dir`` is replaced (:func:`cogan_tf.outputs.export_target_problem`);
    the export holds the target's lock while it writes, so a second run's start never cleans it away.
    ``about`` goes into the marker file (:func:`cogan_tf.outputs.export_marker`): the dataset trained on,
    which evaluation scores against, and the run exported."""
    why = outputs.export_target_problem(export_dir)
    if why:
        raise UsageError(f"{why}; move it away or pick another --export_dir")
    with outputs.export_lock(export_dir), fileio.atomic_path(export_dir, is_dir=True) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        with open(os.path.join(tmp, outputs.EXPORT_MARKER), "w") as f:
            f.write(outputs.export_marker(os.path.basename(export_dir), about))
    return export_dir


def load(export_dir: str):
    """Load an exported SavedModel; a missing or damaged one is refused in one line (:class:`DataError`)
    naming the folder, what is wrong and how to export it again, never with TensorFlow's traceback."""
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        raise DataError(f"{export_dir}: no SavedModel here (no saved_model.pb); export one with "
                        "`python main.py --is_train False` or train first")
    problem = (_missing_file(export_dir) or _unparsable_graph(export_dir) or _fingerprint_mismatch(export_dir)
               or _unreadable_variables(export_dir))
    if problem is None:
        try:
            return tf.saved_model.load(export_dir)
        except Exception as e:  # noqa: BLE001 - a damaged graph fails in the loader with any of a dozen types
            problem = f"TensorFlow cannot load it ({type(e).__name__}: {_first_line(e)})"
    raise DataError(f"{export_dir}: damaged SavedModel: {problem}; export it again from its checkpoint with "
                    "`python main.py --is_train False --checkpoint_dir DIR` (and --model as trained)")


# What TensorFlow's SavedModel holds besides saved_model.pb: TensorFlow writes both files for every module,
# with variables or without.
_INDEX = os.path.join("variables", "variables.index")
_SHARD = re.compile(r"^variables\.data-(\d{5})-of-(\d{5})$")


def _missing_file(export_dir: str) -> Optional[str]:
    variables = os.path.join(export_dir, "variables")
    if not os.path.isdir(variables):
        return "no variables/ folder"
    if not os.path.isfile(os.path.join(export_dir, _INDEX)):
        return f"no {_INDEX}"
    shards = [m for m in map(_SHARD.match, os.listdir(variables)) if m]
    if not shards:
        return "no variables/variables.data-* file"
    total = int(shards[0].group(2))
    have = {int(m.group(1)) for m in shards if int(m.group(2)) == total}
    lost = [i for i in range(total) if i not in have]
    return f"no variables/variables.data-{lost[0]:05d}-of-{total:05d}" if lost else None


def _unparsable_graph(export_dir: str) -> Optional[str]:
    """saved_model.pb parsed in Python first: TensorFlow's C++ fingerprinting crashes the process on a file
    that parses to no graph (an empty one)."""
    from tensorflow.core.protobuf import saved_model_pb2

    try:
        with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
            graphs = len(saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and OSError alike
        return f"saved_model.pb does not parse ({_first_line(e)})"
    return None if graphs == 1 else f"saved_model.pb holds {graphs} graphs, not one"


def _fingerprint_mismatch(export_dir: str) -> Optional[str]:
    """fingerprint.pb (written by TensorFlow at export) holds checksums of saved_model.pb and of
    variables.index: a flipped byte that still parses would otherwise load as a different graph."""
    path = os.path.join(export_dir, "fingerprint.pb")
    if not os.path.isfile(path):
        return None  # exported by a TensorFlow older than fingerprints: nothing to check against
    try:
        from tensorflow.core.protobuf import fingerprint_pb2
        from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting
    except ImportError:  # TensorFlow moved its internals: the loader's own checks remain
        return None
    try:
        with open(path, "rb") as f:
            stored = fingerprint_pb2.FingerprintDef.FromString(f.read())
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and OSError alike
        return f"fingerprint.pb unreadable ({_first_line(e)})"
    try:
        now = fingerprint_pb2.FingerprintDef.FromString(fingerprinting.CreateFingerprintDef(export_dir))
    except Exception as e:  # noqa: BLE001 - FingerprintException: saved_model.pb does not parse
        return f"saved_model.pb unreadable ({_first_line(e)})"
    for field, name in (("saved_model_checksum", "saved_model.pb"), ("checkpoint_hash", _INDEX)):
        if getattr(stored, field) and getattr(stored, field) != getattr(now, field):
            return f"{name} is not the file exported (its checksum differs from the one in fingerprint.pb)"
    return None


def _unreadable_variables(export_dir: str) -> Optional[str]:
    """Every variable read once (:func:`cogan_tf.checkpoints.newest_that_reads`, each checked against its
    stored CRC32C), so a damaged or truncated data file is named here rather than failing inside the
    loader's restore."""
    _, _, failed = checkpoints.newest_that_reads([os.path.join(export_dir, "variables", "variables")], lambda c: c)
    return f"variables/variables.data-* damaged or truncated ({failed[0][1]})" if failed else None


def _first_line(e: BaseException) -> str:
    """An error's message without TensorFlow's ``{{function_node ...}}`` prefix, on one line."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(e)).strip()
    return (text.splitlines() or [type(e).__name__])[0][:300]
