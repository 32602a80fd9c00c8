"""A run's directories on disk: where its checkpoints go, what the checkpoint directory holds, and
the directories it writes into. No TensorFlow: main.py checks directories before TensorFlow starts.

"What is in this checkpoint directory" is answered here once: :class:`RunRecord` reads its
config.json and lists its checkpoint files, once per run, and the resolving, refusing and rebuilding
(:mod:`cogan_tf.checkpoints`, :mod:`cogan_tf.runner`, :mod:`cogan_tf.evaluate`) read the record.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from typing import List, Optional, Tuple

from cogan_tf import config as config_lib, fileio
from cogan_tf.config import ModelConfig, TrainConfig
from cogan_tf.errors import DataError, UsageError

CONFIG_FILE = "config.json"


def checkpoint_subdir(model: str, dataset: str, batch_size: int, output_size: int = 28) -> str:
    """The run's directory under --checkpoint_dir: the original's ``mnist_128_28`` for the CoGAN,
    ``<model>_mnist_512_28`` for the others."""
    if model == "cogan":
        return f"{dataset}_{batch_size}_{output_size}"
    return f"{model}_{dataset}_{batch_size}_{output_size}"


def run_checkpoint_dir(model_cfg: ModelConfig, train_cfg: TrainConfig) -> str:
    return os.path.join(train_cfg.checkpoint_dir, checkpoint_subdir(
        train_cfg.model, train_cfg.dataset, train_cfg.batch_size, getattr(model_cfg, "output_size", 28)))


def checkpoint_numbers(ckpt_dir: str, prefix: Optional[str] = None) -> List[int]:
    """The N of every ``<prefix>-N`` checkpoint (any prefix if None) with a file (index or data) in
    ``ckpt_dir``, newest (largest) first. What is on disk, not what the ``checkpoint`` state file says."""
    return _numbers(os.listdir(ckpt_dir) if os.path.isdir(ckpt_dir) else [], prefix)


def _numbers(names, prefix: Optional[str]) -> List[int]:
    pattern = re.compile((".+" if prefix is None else re.escape(prefix)) + r"-(\d+)\.(?:index|data-\d+-of-\d+)")
    return sorted({int(m.group(1)) for m in map(pattern.fullmatch, names) if m}, reverse=True)


def save_run_config(path: str, model: str, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """Write the model config (and what the data order depends on, and the optimizer's
    hyperparameters) as JSON beside a checkpoint."""
    payload = {
        "model": model,
        "model_config": dataclasses.asdict(model_cfg),
        "seed": train_cfg.seed,
        "dataset": train_cfg.dataset,
        "batch_size": train_cfg.batch_size,
        "disjoint_domains": train_cfg.disjoint_domains,
        "train_size": None if math.isinf(train_cfg.train_size) else train_cfg.train_size,
        "mixed_precision": train_cfg.mixed_precision,
        "grid_scaling": train_cfg.grid_scaling,
        **{k: getattr(train_cfg, k) for k in config_lib.OPTIMIZER_FIELDS},
        "val_size": train_cfg.val_size,
    }
    fileio.atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def load_run_config(path: str) -> Optional[dict]:
    """The config.json at ``path`` (None if there is none); a damaged one is a one-line DataError."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        saved = e
    if not isinstance(saved, dict):
        raise DataError(f"{path}: not a run's config.json ({saved}); put the right one back, or delete it "
                        "(the next training run writes it again)")
    return saved


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What a run's checkpoint directory holds, read once: its config.json (``config``, None when
    there is none) and the names of its entries (``names``, empty when there is no directory)."""

    directory: str
    config: Optional[dict]
    names: Tuple[str, ...]

    @classmethod
    def read(cls, directory: str) -> "RunRecord":
        names = tuple(sorted(os.listdir(directory))) if os.path.isdir(directory) else ()
        return cls(directory, load_run_config(os.path.join(directory, CONFIG_FILE)), names)

    def checkpoints(self, prefix: Optional[str] = None) -> List[int]:
        """The numbers of the ``<prefix>-N`` checkpoints on disk (any prefix if None), newest first."""
        return _numbers(self.names, prefix)

    @property
    def config_path(self) -> str:
        return os.path.join(self.directory, CONFIG_FILE)

    @property
    def model_config(self) -> Optional[dict]:
        """The recorded model config as a dict (None: no config.json, or one without it)."""
        theirs = self.config.get("model_config") if self.config else None
        return theirs if isinstance(theirs, dict) else None

    def train_config(self, data_dir: str) -> TrainConfig:
        """The recorded run as a TrainConfig (what the data order and the directory depend on), for
        rebuilding its GAN from the checkpoint alone."""
        saved = self.config or {}
        train_size = saved.get("train_size")
        return TrainConfig(
            model=saved["model"], dataset=saved.get("dataset", "mnist"), data_dir=data_dir,
            batch_size=saved.get("batch_size", 128), seed=saved.get("seed"),
            disjoint_domains=saved.get("disjoint_domains", False),
            train_size=math.inf if train_size is None else train_size, val_size=saved.get("val_size", 0),
            checkpoint_dir=os.path.dirname(os.path.abspath(self.directory)))


def find_run(checkpoint_dir: str, model: Optional[str] = None) -> RunRecord:
    """The run in ``checkpoint_dir`` itself or one subdirectory of it (``checkpoint/mnist_128_28``),
    narrowed by ``model`` when several exist."""
    if not os.path.isdir(checkpoint_dir):
        raise DataError(f"{checkpoint_dir}: no such checkpoint directory")
    candidates = [checkpoint_dir] + [os.path.join(checkpoint_dir, d) for d in sorted(os.listdir(checkpoint_dir))]
    found = []
    for d in candidates:
        record = RunRecord.read(d) if os.path.isdir(d) else None
        if record is not None and record.config is not None and (model is None or record.config.get("model") == model):
            found.append(record)
    if not found:
        what = f" for --model {model}" if model else ""
        raise DataError(f"{checkpoint_dir}: no config.json{what} here or in a subdirectory; every checkpoint "
                        "written by main.py has one (or evaluate its --saved_model export instead)")
    if len(found) > 1:
        raise UsageError(f"{checkpoint_dir} holds several checkpoints ({', '.join(r.directory for r in found)}): "
                         "point --checkpoint_dir at one, or pass --model")
    return found[0]


def other_runs(model_cfg: ModelConfig, train_cfg: TrainConfig) -> list:
    """``(directory, batch_size)`` of the other runs of the same model and dataset under
    --checkpoint_dir (another --batch_size gives another directory), for a one-line hint."""
    mine = run_checkpoint_dir(model_cfg, train_cfg)
    root = train_cfg.checkpoint_dir
    out = []
    if not os.path.isdir(root):
        return out
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        try:
            saved = load_run_config(os.path.join(d, CONFIG_FILE))
        except (OSError, ValueError):
            continue
        if (os.path.abspath(d) != os.path.abspath(mine) and isinstance(saved, dict)
                and saved.get("model") == train_cfg.model and saved.get("dataset") == train_cfg.dataset
                and os.path.abspath(run_checkpoint_dir(model_cfg, dataclasses.replace(
                    train_cfg, batch_size=saved.get("batch_size")))) == os.path.abspath(d)):
            out.append((d, saved.get("batch_size")))
    return out
