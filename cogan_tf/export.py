"""SavedModel export of the generators (not the GAN wrapper), with explicit input signatures.

Every exported generator returns images in [0, 1] as float32 [batch, 28, 28, 1]; the modules hold only
the networks they need, so the SavedModel loads with plain TensorFlow (no cogan_tf import).
"""

from __future__ import annotations

import os
from typing import Callable, Dict

import tensorflow as tf

from cogan_tf import fileio
from cogan_tf.errors import DataError


def save_module(module: tf.Module, signatures: Dict[str, Callable], export_dir: str) -> str:
    """``tf.saved_model.save`` into a temporary directory, renamed into place when complete, so an
    interrupted export never leaves a SavedModel that fails to load."""
    with fileio.atomic_path(export_dir, is_dir=True) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
    return export_dir


def load(export_dir: str):
    """Load an exported SavedModel with a clear error when it is missing."""
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        raise DataError(f"{export_dir}: no SavedModel here (no saved_model.pb); export one with "
                        "`python main.py --is_train False` or train first")
    return tf.saved_model.load(export_dir)
