"""The folders a run writes into, and the rules that keep one run from destroying another's files.

- **Where a run writes** (:func:`run_folders`): the original's folders (checkpoint/, samples/, logs/,
  export/, evaluate/) for a user who names none; a run given its own --checkpoint_dir keeps its other
  outputs under it too, unless they are named.
- **Whose outputs a folder holds** (:func:`claim_outputs`): each run marks the folders it writes its
  grids, TensorBoard events and evaluation into, and an export records its run; a run about to replace
  another run's outputs says so in one line at its start.
- **Checked before TensorFlow starts** (:func:`check_output_dirs`): every output folder can be written
  (probed, and any folder the probe had to create removed again, so a refused run leaves nothing
  behind); no output folder lies inside the export's target or contains it (the export replaces that
  folder whole); and the export's target is absent, empty, or an earlier export
  of this project (:func:`export_target_problem`): the export replaces that folder, so anything else
  there is refused rather than deleted.
- **One run per checkpoint folder** (:class:`RunLock`): an OS file lock (``fcntl.flock``) on
  ``<checkpoint folder>/.lock``, which the kernel releases when the process ends however it ends,
  so a killed run never leaves a stale lock. A second run refuses in one line naming the holder's
  pid, or waits for it when asked to.
- **Leftovers of an interrupted export** (:func:`clean_export_leftovers`) are removed at the next
  start, under the export's own lock, so an export still being written by another run is never touched.

No TensorFlow here: a run's preparation (:func:`cogan_tf.run.prepare`) runs these checks before TensorFlow starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

from cogan_tf import fileio
from cogan_tf.record import run_checkpoint_dir
from cogan_tf.config import ModelConfig, TrainConfig
from cogan_tf.errors import UsageError

LOCK_FILE = ".lock"
# Written into every export: what tells an earlier export of this project from a user's own folder.
EXPORT_MARKER = "cogan_tf_export.json"


# Output folders (TrainConfig fields, main.py flags) that follow a named --checkpoint_dir.
RUN_FOLDERS = ("sample_dir", "log_dir", "export_dir", "evaluate_dir")


def run_folders(checkpoint_dir: str, given: Dict[str, Optional[str]]) -> Dict[str, str]:
    """The output folders of a run: each of RUN_FOLDERS as ``given`` (None: not given), else its default
    (``samples``, ``logs``, ``export``, ``evaluate``): beside the default ``checkpoint`` folder, as the
    original; under ``checkpoint_dir`` when the user named another one, so that naming a run's
    --checkpoint_dir is enough to keep all its outputs apart from other runs'."""
    default = TrainConfig()
    named = os.path.abspath(checkpoint_dir) != os.path.abspath(default.checkpoint_dir)
    return {flag: given.get(flag) if given.get(flag) is not None else
            (os.path.join(checkpoint_dir, getattr(default, flag)) if named else getattr(default, flag))
            for flag in RUN_FOLDERS}


# --- probing and nesting -------------------------------------------------------------------------

def _inside(inner: str, outer: str) -> bool:
    inner, outer = os.path.realpath(inner), os.path.realpath(outer)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def nesting_problem(dirs: Dict[str, str], exclusive: Dict[str, str],
                    entries: Optional[Dict[str, Sequence[str]]] = None) -> Optional[str]:
    """One line if a folder of ``exclusive`` (flag -> path: the export target, replaced whole) is,
    contains or lies inside any other folder of ``dirs``. ``entries``: flag -> the only entries the run
    makes in that folder (``top`` and ``bot`` in the CoGAN's grid folder): an exclusive folder may lie
    inside it beside them."""
    for flag, own in exclusive.items():
        for other_flag, other in dirs.items():
            if other_flag == flag:
                continue
            if other_flag in (entries or {}) and _inside(own, other) and not _inside(other, own):
                below = os.path.relpath(os.path.realpath(own), os.path.realpath(other)).split(os.sep)[0]
                if below not in entries[other_flag]:
                    continue
            if _inside(other, own) or _inside(own, other):
                how = "is" if os.path.realpath(own) == os.path.realpath(other) else (
                    "contains" if _inside(other, own) else "lies inside")
                return (f"--{flag}: {own} {how} {other} (--{other_flag}); the two must be separate folders, "
                        "neither inside the other")
    return None


def export_target(train_cfg: TrainConfig) -> str:
    """``<export_dir>/<model>``: the folder the export replaces."""
    return os.path.join(train_cfg.export_dir, train_cfg.model)


def tensorboard_dir(model_cfg: ModelConfig, train_cfg: TrainConfig) -> str:
    """One TensorBoard folder per run (model, dataset, batch size), as its checkpoint folder."""
    run = os.path.basename(run_checkpoint_dir(model_cfg, train_cfg))
    return os.path.join(train_cfg.log_dir, f"{train_cfg.model}_{run}")


def output_dirs(model_cfg: ModelConfig, train_cfg: TrainConfig, training: bool = True) -> Dict[str, str]:
    """Flag -> folder this run writes into: training writes checkpoints, grids, TensorBoard logs and the
    export; evaluation its grids and the export."""
    if training:
        return {"checkpoint_dir": run_checkpoint_dir(model_cfg, train_cfg), "sample_dir": train_cfg.sample_dir,
                "log_dir": tensorboard_dir(model_cfg, train_cfg), "export_dir": export_target(train_cfg)}
    return {"evaluate_dir": train_cfg.evaluate_dir, "export_dir": export_target(train_cfg)}


def check_output_dirs(model_cfg: ModelConfig, train_cfg: TrainConfig, training: bool = True) -> None:
    """Refuse, in one line and before any work, a run whose outputs cannot be written (a path under a
    regular file, a read-only disk, a dangling link), whose export would replace a folder that is not an
    earlier export, or whose output folders lie inside one another where one is replaced or cleaned
    wholesale. Nothing is left on disk by the check."""
    dirs = output_dirs(model_cfg, train_cfg, training)
    for flag, path in dirs.items():
        if flag == "export_dir":
            path = train_cfg.export_dir  # the target itself is made by the export's rename
        why = fileio.unwritable_dir(path)
        if why:
            raise UsageError(f"--{flag}={getattr(train_cfg, flag)}: cannot write into {path} ({why}); "
                             "pick another directory")
    if not training:
        dirs = {**dirs, "checkpoint_dir": run_checkpoint_dir(model_cfg, train_cfg)}  # must survive the export
    # Only the export replaces a folder whole; the others take files beside what is there (the quick
    # start keeps its checkpoints and its export inside its grid folder).
    made = model_entries(train_cfg.model)
    why = nesting_problem(dirs, {"export_dir": dirs["export_dir"]},
                          {"sample_dir": made, "evaluate_dir": made + (f"{train_cfg.model}_report.json",
                                                                       f"{train_cfg.model}_clustering.json")})
    if why:
        raise UsageError(why)
    why = export_target_problem(dirs["export_dir"])
    if why:
        raise UsageError(f"--export_dir={train_cfg.export_dir}: {why}; pick another --export_dir")


def model_entries(model: str) -> Tuple[str, ...]:
    """The folders a model's grids go to inside the grid (and evaluation) folder: the CoGAN's two domains,
    or the model's own folder."""
    return ("top", "bot") if model == "cogan" else (model,)


# --- whose outputs a folder holds ----------------------------------------------------------------

def claim_path(folder: str, model: str) -> str:
    """The file in ``folder`` naming the run whose ``model`` outputs it holds."""
    return os.path.join(folder, f".cogan_tf_run-{model}")


def _claimed(model_cfg: ModelConfig, train_cfg: TrainConfig, training: bool) -> Dict[str, str]:
    """Flag -> a folder this run writes its outputs into, beside other runs' (training: grids and
    TensorBoard events; evaluation: its grids and report)."""
    if training:
        return {"sample_dir": train_cfg.sample_dir, "log_dir": tensorboard_dir(model_cfg, train_cfg)}
    return {"evaluate_dir": train_cfg.evaluate_dir}


def _shown(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def claim_outputs(model_cfg: ModelConfig, train_cfg: TrainConfig, training: bool = True,
                  log: Callable[[str], None] = print) -> None:
    """Before a run writes its outputs: one line naming each of its output folders (and the export) that
    holds another run's outputs of the same model, which this run's will replace; then mark the folders as
    this run's. Folders no run has marked are taken without a word."""
    me = os.path.abspath(run_checkpoint_dir(model_cfg, train_cfg))
    model, replaced = train_cfg.model, []
    folders = _claimed(model_cfg, train_cfg, training)
    for flag, folder in folders.items():
        try:
            with open(claim_path(folder, model), encoding="utf-8") as f:
                owner = f.read().strip()
        except (OSError, UnicodeDecodeError):
            owner = ""
        if owner and os.path.realpath(owner) != os.path.realpath(me):
            replaced.append((flag, folder, owner))
    target = export_target(train_cfg)
    owner = (read_export_marker(target) or {}).get("run")
    if isinstance(owner, str) and os.path.realpath(owner) != os.path.realpath(me):
        replaced.append(("export_dir", target, owner))
    if replaced:
        names = ", ".join(f"{_shown(folder)} (of {_shown(owner)})" for _, folder, owner in replaced)
        flags = ", ".join(f"--{flag}" for flag, _, _ in replaced)
        log(f" [!] {names}: {'this run' if training else 'this evaluation'} replaces that run's {model} outputs "
            f"there; give it its own {flags}, or its own --checkpoint_dir (its other outputs then go under it), "
            "to keep both")
    for folder in folders.values():
        fileio.atomic_write_text(claim_path(folder, model), me + "\n")


# --- the export's target -------------------------------------------------------------------------

def export_target_problem(path: str) -> Optional[str]:
    """Why the export may not replace ``path``, or None: it may when ``path`` is absent, an empty folder,
    or an earlier export of this project (its marker file)."""
    if not os.path.lexists(path):
        return None
    if not os.path.isdir(path) or os.path.islink(path):
        return f"{path} exists and is not a folder"
    names = set(os.listdir(path))
    if not names or EXPORT_MARKER in names:
        return None
    shown = ", ".join(sorted(names)[:4]) + (", ..." if len(names) > 4 else "")
    return (f"{path} holds files that are not an earlier export of this project ({shown}), which the export "
            "would delete")


def export_marker(model: str, about: Optional[Dict[str, str]] = None) -> str:
    """The marker file's text: this project wrote the export, of ``model``; ``about``: what it was trained
    on (``dataset``) and the run it came from (``run``, its checkpoint folder)."""
    return json.dumps({"exported_by": "cogan_tf", "model": model, **(about or {})}) + "\n"


def read_export_marker(path: str) -> Optional[dict]:
    """The marker inside the export folder ``path`` (None: none, or unreadable: a SavedModel this project did
    not write)."""
    try:
        with open(os.path.join(path, EXPORT_MARKER), "rb") as f:
            marker = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


# --- one run per checkpoint folder ----------------------------------------------------------------

class RunLock:
    """An exclusive ``flock`` on ``<folder>/.lock`` holding the holder's pid, kept until :meth:`release`
    or the process's end. ``waited``: another run held it when asked for (``wait``), so what that run
    wrote since must be read again."""

    def __init__(self, folder: str, fd: int, waited: bool = False, made: Optional[str] = None):
        self.folder, self.fd, self.waited, self.made = folder, fd, waited, made

    @classmethod
    def acquire(cls, folder: str, flag: str = "checkpoint_dir", wait: bool = False,
                log: Callable[[str], None] = print) -> "RunLock":
        made, d = None, os.path.abspath(folder)  # made: the outermost folder this call creates, if any
        while not os.path.isdir(d):
            made, d = d, os.path.dirname(d)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, LOCK_FILE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        waited = False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                if not wait:
                    raise UsageError(f"{folder} is in use by another run (pid {holder}): wait for it to end, pass "
                                     f"--wait_for_lock to wait, or give this run another --{flag}") from None
                log(f" [*] waiting for pid {holder}, which is training in {folder}")
                fcntl.flock(fd, fcntl.LOCK_EX)
                waited = True
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(folder, fd, waited, made)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file releases the flock
            self.fd = None

    def abandon(self) -> None:
        """Release, and remove what taking the lock made (the lock file and the folders it created, while
        they hold nothing else): a run refused after taking its lock leaves nothing behind."""
        if self.made is not None and self.fd is not None:
            os.remove(os.path.join(self.folder, LOCK_FILE))  # in a folder made a moment ago, for this run
        self.release()
        folder = self.folder
        while self.made is not None:
            try:
                os.rmdir(folder)
            except OSError:
                break
            if os.path.abspath(folder) == os.path.abspath(self.made):
                break
            folder = os.path.dirname(folder)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"


def try_lock(path: str) -> Optional[int]:
    """A non-blocking exclusive flock on ``path`` (created if needed): its fd, or None if another
    process holds it. Close the fd to release."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def export_lock_path(target: str) -> str:
    """The lock file of an export target ``<export_dir>/<model>``: beside it, not inside (the folder is
    replaced)."""
    target = os.path.abspath(target)
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.lock")


@contextlib.contextmanager
def export_lock(target: str) -> Iterator[None]:
    """Hold the export target's lock (waiting for another export to it to finish)."""
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    fd = os.open(export_lock_path(target), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def clean_export_leftovers(target: str, log: Callable[[str], None] = print) -> None:
    """Remove what an export killed midway leaves beside ``target``: ``.tmp-<name>-*`` folders (an
    unfinished export) and ``.old-<name>-*`` (the previous export, moved aside for the swap; put back
    when the swap never happened). Skipped while another process exports to ``target``."""
    parent, base = os.path.split(os.path.abspath(target))
    if not os.path.isdir(parent):
        return
    names = [n for n in os.listdir(parent) if n.startswith((f".tmp-{base}-", f".old-{base}-"))]
    if not names:
        return
    fd = try_lock(export_lock_path(target))
    if fd is None:
        return
    try:
        for name in sorted(names):
            path = os.path.join(parent, name)
            if name.startswith(".old-") and not os.path.lexists(target) and os.path.isdir(path):
                os.rename(path, target)
                log(f" [*] {target}: put back the previous export, which an interrupted export had moved aside")
            elif os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
    finally:
        os.close(fd)
