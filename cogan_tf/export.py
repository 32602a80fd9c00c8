"""SavedModel export of the generators (not the GAN wrapper), with explicit input signatures.

Every exported generator returns images in [0, 1] as float32 [batch, 28, 28, 1]; the modules hold only
the networks they need, so the SavedModel loads with plain TensorFlow (no cogan_tf import).
"""

from __future__ import annotations

import os
from typing import Callable, Dict

import tensorflow as tf

from cogan_tf import fileio, outputs
from cogan_tf.errors import DataError, UsageError


def save_module(module: tf.Module, signatures: Dict[str, Callable], export_dir: str) -> str:
    """``tf.saved_model.save`` into a temporary folder, renamed into place when complete, so an
    interrupted export never leaves a SavedModel that fails to load. Only an earlier export of this
    project (or nothing) at ``export_dir`` is replaced (:func:`cogan_tf.outputs.export_target_problem`);
    the export holds the target's lock while it writes, so a second run's start never cleans it away."""
    why = outputs.export_target_problem(export_dir)
    if why:
        raise UsageError(f"{why}; move it away or pick another --export_dir")
    with outputs.export_lock(export_dir), fileio.atomic_path(export_dir, is_dir=True) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        with open(os.path.join(tmp, outputs.EXPORT_MARKER), "w") as f:
            f.write(outputs.export_marker(os.path.basename(export_dir)))
    return export_dir


def load(export_dir: str):
    """Load an exported SavedModel with a clear error when it is missing."""
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        raise DataError(f"{export_dir}: no SavedModel here (no saved_model.pb); export one with "
                        "`python main.py --is_train False` or train first")
    return tf.saved_model.load(export_dir)
