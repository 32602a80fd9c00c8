"""SavedModel export of the three models' generators (not the GAN wrapper), with explicit input
signatures (:func:`export_cogan`, :func:`export_vanilla`, :func:`export_clustergan`), written atomically
(:func:`save_module`), and loading one back with its damage named in one line (:func:`load`).

Every exported generator returns images in [0, 1] as float32 [batch, 28, 28, 1]; the modules hold only
the networks they need, so the SavedModel loads with plain TensorFlow (no cogan_tf import).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Callable, Dict, Optional

import tensorflow as tf

from cogan_tf import checkpoints, fileio, outputs, pairs
from cogan_tf.config import ClusterGanConfig
from cogan_tf.data import IMAGE_SHAPE
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


# --- the three models' exports ------------------------------------------------------------------

class _Serving(tf.Module):
    """What an export holds: the networks it serves, as attributes."""

    def __init__(self, **networks):
        super().__init__()
        for name, network in networks.items():
            setattr(self, name, network)


@contextlib.contextmanager
def moving_average_batchnorm(model):
    """Trace ``model`` with its BatchNorms on their moving averages at inference (the usual Keras mode)."""
    bns = [layer for layer in model._flatten_layers() if hasattr(layer, "batch_stats_at_inference")]
    old = [b.batch_stats_at_inference for b in bns]
    for b in bns:
        b.batch_stats_at_inference = False
    try:
        yield
    finally:
        for b, o in zip(bns, old):
            b.batch_stats_at_inference = o


def export_cogan(generator, z_dim: int, path: str, pair: str = pairs.DEFAULT_PAIR, z_uniform: bool = False,
                 about: Optional[Dict[str, str]] = None) -> str:
    """SavedModel: ``serving_default(z: float32 [batch, z_dim]) -> {"top", "bot"}: [batch, 28, 28, 1]``.

    The module's ``pair`` (a string variable) is the pair of domains it was trained on (cogan_tf/pairs.py):
    ``python -m cogan_tf.evaluate`` scores the export with that pair's transform. Its ``z_uniform`` (a boolean
    variable) says how the generator was trained: z ~ N(0, 1) (False, the original) or z ~ U(-1, 1) (True,
    the paper's network, ``--recipe paper``).

    ``serving_default`` uses the BatchNorm mode of the model config: by default the statistics of the
    batch given (as the original's sampler, which is what the published grids show, so results depend
    on the whole batch: pass batches of 64 or more). ``moving_average`` is the same generator with
    BatchNorm on its moving averages, for single images (not what the original ever produced).
    """
    module = _Serving(generator=generator)
    module.pair = tf.Variable(pair, trainable=False, name="pair")
    module.z_uniform = tf.Variable(z_uniform, trainable=False, name="z_uniform")
    spec = tf.TensorSpec([None, z_dim], tf.float32, name="z")

    def serve(z):
        top, bot = generator(z, training=False)
        return {"top": top, "bot": bot}

    default = tf.function(serve, input_signature=[spec]).get_concrete_function()
    with moving_average_batchnorm(generator):
        moving = tf.function(serve, input_signature=[spec]).get_concrete_function()
    module.serve = default
    module.serve_moving_average = moving
    return save_module(module, {"serving_default": default, "moving_average": moving}, path, about)


def export_vanilla(generator, z_dim: int, path: str, about: Optional[Dict[str, str]] = None) -> str:
    """SavedModel: ``serving_default(z: float32 [batch, z_dim]) -> {"images": [batch, 28, 28, 1]}``.

    The generator's tanh output in [-1, 1] is mapped to [0, 1] by (x + 1) / 2, so every exported
    generator of this project returns images in [0, 1]. (The original's grids instead clamp the
    tanh output to [0, 1], turning everything below 0 black.)
    """
    module = _Serving(generator=generator)

    @tf.function(input_signature=[tf.TensorSpec([None, z_dim], tf.float32, name="z")])
    def serve(z):
        return {"images": (generator(z, training=False) + 1.0) / 2.0}

    module.serve = serve
    return save_module(module, {"serving_default": serve.get_concrete_function()}, path, about)


def export_clustergan(generator, encoder, cfg: ClusterGanConfig, path: str,
                      about: Optional[Dict[str, str]] = None) -> str:
    """SavedModel with two signatures, both in inference mode (BatchNorm moving averages):

    - ``serving_default(z_n: [batch, z_dim], z_c: [batch, n_classes] one-hot) -> {"images"}``,
      images [batch, 28, 28, 1] in [0, 1];
    - ``encode(images: [batch, 28, 28, 1] float in [0, 1]) -> {"z_n", "class_probs"}``; the cluster
      of an image is the argmax of ``class_probs``.

    The module's ``zn_sigma`` (a scalar variable) is the standard deviation of the z_n the generator was
    trained on (1.0, or the paper's 0.1 with ``--zn_sigma``): draw z_n ~ N(0, zn_sigma^2). Its
    ``kmeans_on_zn`` (a boolean variable) says whether K-means clustering takes [z_n, class_probs] or, for a
    model trained without a z_n loss (beta_n 0, the paper's Fashion-MNIST setting), ``class_probs`` alone. The paper's
    networks (``--recipe paper``) normalise G with each call's batch statistics, as their authors' code
    samples: pass batches (they trained on 64), not one z at a time.
    """
    module = _Serving(generator=generator, encoder=encoder)
    module.zn_sigma = tf.Variable(float(cfg.zn_sigma), trainable=False, name="zn_sigma")
    # Trained without a z_n loss (beta_n 0), E's z_n carries nothing: its K-means clusters the softmax alone.
    module.kmeans_on_zn = tf.Variable(cfg.betan != 0, trainable=False, name="kmeans_on_zn")

    @tf.function(input_signature=[tf.TensorSpec([None, cfg.z_dim], tf.float32, name="z_n"),
                                  tf.TensorSpec([None, cfg.n_classes], tf.float32, name="z_c")])
    def serve(z_n, z_c):
        return {"images": generator(tf.concat([z_n, z_c], axis=1), training=False)}

    @tf.function(input_signature=[tf.TensorSpec([None] + list(IMAGE_SHAPE), tf.float32, name="images")])
    def encode(images_):
        z_n, logits = encoder(images_, training=False)
        return {"z_n": z_n, "class_probs": tf.nn.softmax(logits)}

    module.serve = serve
    module.encode = encode
    return save_module(module, {"serving_default": serve.get_concrete_function(),
                                           "encode": encode.get_concrete_function()}, path, about)


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
