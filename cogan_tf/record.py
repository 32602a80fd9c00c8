"""A run's record: where its checkpoints go, what its checkpoint folder holds, and what it was
trained with. No TensorFlow: what config.json alone can refuse is refused before TensorFlow starts.

:class:`RunRecord` reads the folder's config.json (checked entry by entry against the config
dataclasses) and lists its checkpoint files. The same record travels inside every checkpoint
(:func:`cogan_tf.checkpoints.embedded_record` reads it); config.json is its readable copy, and
:meth:`RunRecord.settled` settles the two. The seed a run trains with (:func:`resolved_seed`), whether
a resume may go on (:func:`check_setup`) and the architecture an evaluation rebuilds
(:func:`stored_model_config`) are read from the record here; :func:`cogan_tf.run.prepare` asks once.
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


_CHECKPOINT_FILE = re.compile(r"(.+)-(\d+)\.(?:index|data-\d+-of-\d+)")


def _numbers(names, prefix: Optional[str]) -> List[int]:
    pattern = re.compile((".+" if prefix is None else re.escape(prefix)) + r"-(\d+)\.(?:index|data-\d+-of-\d+)")
    return sorted({int(m.group(1)) for m in map(pattern.fullmatch, names) if m}, reverse=True)


# What config.json (and the record inside each checkpoint) holds beside "model_config": TrainConfig
# fields, under their own names. "train_size" is null for all images (inf).
RECORDED_FIELDS = ("model", "seed", "dataset", "batch_size", "disjoint_domains", "train_size", "mixed_precision",
                   "grid_scaling", *config_lib.OPTIMIZER_FIELDS, "val_size", *config_lib.ARITHMETIC_FIELDS)
_TRAIN_TYPES = {**config_lib.field_types(TrainConfig), "train_size": Optional[float]}


def run_config_payload(model: str, model_cfg: ModelConfig, train_cfg: TrainConfig) -> dict:
    """The run's record: the model config, what the data order depends on, the precision and the
    optimizer's hyperparameters."""
    payload = {k: getattr(train_cfg, k) for k in RECORDED_FIELDS}
    payload.update(model=model, model_config=dataclasses.asdict(model_cfg),
                   train_size=None if math.isinf(train_cfg.train_size) else train_cfg.train_size)
    return payload


def run_config_text(model: str, model_cfg: ModelConfig, train_cfg: TrainConfig) -> str:
    """The run's record as config.json's text (also what each checkpoint embeds)."""
    return json.dumps(run_config_payload(model, model_cfg, train_cfg), indent=2, sort_keys=True) + "\n"


def save_run_config(path: str, model: str, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """Write the run's record as JSON beside its checkpoints."""
    fileio.atomic_write_text(path, run_config_text(model, model_cfg, train_cfg))


# What to do about a damaged config.json: nothing is lost by deleting it, since every checkpoint holds the
# record too.
_FIX_CONFIG = "correct it, or delete it to resume from the record inside the run's checkpoints"


def _shown(value) -> str:
    """A recorded value as JSON, cut short: the line that names it stays one line."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_run_config(text, source: str, fix: str = _FIX_CONFIG) -> dict:
    """A run's record from its JSON ``text``, checked entry by entry against the config dataclasses'
    fields; anything else is a one-line DataError naming ``source``, the entry and its value."""
    try:
        saved = json.loads(text)
    except ValueError as e:
        saved = e
    if not isinstance(saved, dict):
        raise DataError(f"{source}: not a run's config.json ({saved}); {fix}")

    def bad(what):
        raise DataError(f"{source}: {what}; {fix}")

    for key in saved:
        if key != "model_config" and key not in RECORDED_FIELDS:
            bad(f"unknown entry {_shown(key)}")
    for key in ("model", "model_config", *RECORDED_FIELDS):
        if key not in saved:
            bad(f"no {json.dumps(key)} entry")
    for key, value in saved.items():
        problem = key != "model_config" and config_lib.value_problem(key, _TRAIN_TYPES[key], value)
        if problem:
            bad(f"{json.dumps(key)} is {_shown(value)}, not {problem}")
    model, fields = saved["model"], saved["model_config"]
    if not isinstance(fields, dict):
        bad(f'"model_config" is {_shown(fields)}, not an object')
    types = config_lib.field_types(config_lib.MODEL_CONFIGS[model])
    for key, value in fields.items():
        if key not in types:
            bad(f"unknown model_config entry {_shown(key)} (a {model} has no such field)")
        problem = config_lib.value_problem(key, types[key], value)
        if problem:
            bad(f"model_config {json.dumps(key)} is {_shown(value)}, not {problem}")
    for key in types:
        if key not in fields:
            bad(f"no model_config entry {_shown(key)}")
    return saved


def load_run_config(path: str) -> Optional[dict]:
    """The config.json at ``path`` (None if there is none), checked entry by entry
    (:func:`parse_run_config`); a damaged one is a one-line DataError."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a run's config.json ({e}); {_FIX_CONFIG}") from None
    return parse_run_config(text, path)


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

    def checkpoint_paths(self) -> List[str]:
        """The paths of the ``<prefix>-N`` checkpoints on disk (any prefix), newest first."""
        found = {m.group(1, 2) for m in map(_CHECKPOINT_FILE.fullmatch, self.names) if m}
        return [os.path.join(self.directory, f"{p}-{n}") for p, n in sorted(found, key=lambda x: -int(x[1]))]

    def settled(self, path: str, embedded: Optional[dict], training: bool = True) -> Tuple["RunRecord", str]:
        """This record settled with ``embedded``, the record inside checkpoint ``path`` (None: it holds
        none), and the line to log ("" if nothing to say). The checkpoint's record is what its weights
        were trained with: without config.json it is the run's record; where config.json says otherwise,
        the checkpoint's value is used."""
        if embedded is None:
            return self, ""
        rewritten = "; training writes config.json again" if training else ""
        if self.config is None:
            return (dataclasses.replace(self, config=embedded),
                    f" [*] {self.config_path} is missing: the record inside {path} is used (seed {embedded['seed']})"
                    + rewritten)
        merged, differ = dict(self.config), []
        if embedded["model"] != self.config["model"]:  # another model's fields: none compares
            merged, differ = dict(embedded), [f"model {json.dumps(self.config['model'])} (checkpoint: "
                                              f"{json.dumps(embedded['model'])})"]
        for key, value in self.config.items() if not differ else ():
            theirs = embedded[key]
            if key == "model_config":
                differ += [f"{key}.{k} {json.dumps(v)} (checkpoint: {json.dumps(theirs[k])})"
                           for k, v in value.items() if theirs[k] != v]
            elif theirs != value:
                differ.append(f"{key} {json.dumps(value)} (checkpoint: {json.dumps(theirs)})")
            merged[key] = theirs
        if not differ:
            return self, ""
        return (dataclasses.replace(self, config=merged),
                f" [!] {self.config_path} disagrees with the record inside {path}: {', '.join(differ)}; the "
                f"checkpoint's values are used" + rewritten)

    @property
    def config_path(self) -> str:
        return os.path.join(self.directory, CONFIG_FILE)

    @property
    def model_config(self) -> Optional[dict]:
        """The recorded model config as a dict (None: no config.json)."""
        return self.config["model_config"] if self.config else None

    def train_config(self, data_dir: str) -> TrainConfig:
        """The recorded run as a TrainConfig (what the data order and the directory depend on), for
        rebuilding its GAN from the checkpoint alone."""
        saved = self.config
        return TrainConfig(
            model=saved["model"], dataset=saved["dataset"], data_dir=data_dir, batch_size=saved["batch_size"],
            seed=saved["seed"], disjoint_domains=saved["disjoint_domains"],
            train_size=math.inf if saved["train_size"] is None else saved["train_size"], val_size=saved["val_size"],
            checkpoint_dir=os.path.dirname(os.path.abspath(self.directory)))


def _precision_flags(policy: Optional[str]) -> str:
    """How main.py is told to train in ``policy`` (a TrainConfig.mixed_precision value)."""
    if policy is None:
        return "without --mixed_precision"
    dtype = {v: k for k, v in config_lib.MIXED_PRECISION.items()}.get(policy, policy)
    return f"with --mixed_precision --mixed_precision_dtype {dtype}"


def check_setup(record: RunRecord, model: str, model_cfg: ModelConfig, train_cfg: TrainConfig,
                training: bool = True) -> None:
    """Refuse to resume the checkpoints in ``record`` with another model, architecture, seed or data
    setup, or (``training``) another precision: a float16 run's optimizers carry a loss scale, and
    switching the arithmetic midway would make the resumed run neither of the two. Evaluation checks
    the model and architecture only (evaluation rebuilds the architecture the record holds).
    ``train_cfg.seed`` is the resolved seed (None: 0)."""
    saved = record.config
    if saved is None or not record.checkpoints():
        return
    where = record.directory
    if saved["model"] != model:
        raise UsageError(f"{where} holds a checkpoint made with model={saved['model']!r}, not {model!r}: pass the "
                         "same flags to resume it, or a fresh --checkpoint_dir")
    theirs, mine = saved["model_config"], dataclasses.asdict(model_cfg)
    diff = [k for k, v in mine.items() if theirs[k] != v]
    if diff:
        flag_of = config_lib.FIELD_FLAGS.get(model, {})
        said = ", ".join(f"{k}={theirs[k]!r} (here {mine[k]!r}" + (f", flag {flag_of[k]}" if k in flag_of else "")
                         + ")" for k in diff)
        raise UsageError(f"{where} holds a checkpoint trained with {said}: pass the flags it was trained with to "
                         "resume it, or a fresh --checkpoint_dir")
    if not training:
        return
    setup = {"seed": 0 if train_cfg.seed is None else train_cfg.seed, "dataset": train_cfg.dataset,
             "batch_size": train_cfg.batch_size, "disjoint_domains": train_cfg.disjoint_domains,
             "train_size": None if math.isinf(train_cfg.train_size) else train_cfg.train_size,
             "val_size": train_cfg.val_size}  # the held-out images are not trained on: another data order
    for key, value in setup.items():
        if saved[key] != value:
            raise UsageError(f"{where} holds a checkpoint made with {key}={saved[key]!r}, not {value!r}: pass the "
                             "same flags to resume it, or a fresh --checkpoint_dir")
    theirs, ours = saved["mixed_precision"], train_cfg.mixed_precision
    if theirs != ours:
        raise UsageError(f"{where} holds a checkpoint trained in {theirs or 'float32'}, not {ours or 'float32'}: "
                         f"resume it {_precision_flags(theirs)}, or use a fresh --checkpoint_dir")
    # TF32, op determinism and Adam's arithmetic decide the arithmetic too.
    for key in config_lib.ARITHMETIC_FIELDS:
        if saved[key] != getattr(train_cfg, key):
            theirs = saved[key]
            flag = f"with --{key} {theirs}" if isinstance(theirs, str) else f"{'with' if theirs else 'without'} --{key}"
            raise UsageError(f"{where} holds a checkpoint trained {flag}: resume it {flag}, or use a fresh "
                             "--checkpoint_dir")


def resolved_seed(train_cfg: TrainConfig, record: RunRecord) -> TrainConfig:
    """No --seed: the recorded seed (the data order depends on it), else 0."""
    if train_cfg.seed is not None:
        return train_cfg
    saved = record.config
    return dataclasses.replace(train_cfg, seed=saved["seed"] if saved and saved["seed"] is not None else 0)


def stored_model_config(model_cfg: ModelConfig, train_cfg: TrainConfig, record: RunRecord, explicit=None,
                        log=print) -> ModelConfig:
    """Evaluation's model config: the one the run's record holds (the given one if there is none).
    ``explicit`` maps the fields a flag set (``{"d_h0_filters": "--d_h0_filters=4"}``); a flag that
    conflicts with the record gets one line saying the recorded values are used."""
    ckpt_dir, saved = record.directory, record.config
    if not saved or saved["model"] != train_cfg.model:
        return model_cfg
    stored = config_lib.model_config_from_dict(train_cfg.model, saved["model_config"])
    conflicts = {}  # flag -> the recorded values it disagrees with (--corrected sets several fields)
    for field, flag in (explicit or {}).items():
        if hasattr(stored, field) and getattr(model_cfg, field) != getattr(stored, field):
            conflicts.setdefault(flag, []).append(f"{field}={getattr(stored, field)!r}")
    for flag, recorded in conflicts.items():
        log(f" [!] {flag} ignored: {ckpt_dir} was trained with {', '.join(recorded)}, which evaluation uses")
    return stored


def find_run(checkpoint_dir: str, model: Optional[str] = None) -> RunRecord:
    """The run in ``checkpoint_dir`` itself or one subdirectory of it (``checkpoint/mnist_128_28``),
    narrowed by ``model`` when several exist."""
    if not os.path.isdir(checkpoint_dir):
        raise DataError(f"{checkpoint_dir}: no such checkpoint directory")
    candidates = [checkpoint_dir] + [os.path.join(checkpoint_dir, d) for d in sorted(os.listdir(checkpoint_dir))]
    found = []
    for d in candidates:
        record = RunRecord.read(d) if os.path.isdir(d) else None
        if record is not None and record.config is not None and (model is None or record.config["model"] == model):
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
                and saved["model"] == train_cfg.model and saved["dataset"] == train_cfg.dataset
                and os.path.abspath(run_checkpoint_dir(model_cfg, dataclasses.replace(
                    train_cfg, batch_size=saved["batch_size"]))) == os.path.abspath(d)):
            out.append((d, saved["batch_size"]))
    return out
