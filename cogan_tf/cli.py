"""What the three entry scripts and the tools share: original-style boolean flags, outputs checked
before the work, and one-line errors.

The original was driven as ``python main.py --is_train True``; absl's boolean flags would leave the
``True`` behind as a stray argument, so ``--flag True/False`` is folded into ``--flag=True/False``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Callable, List, Optional, Sequence, Tuple

from absl import app, flags, logging

from cogan_tf import fileio
from cogan_tf.errors import DataError, GridError, RunStopped, UsageError

# TensorFlow's C++ start-up chatter (CUDA probing on a machine without a GPU, oneDNN notices) hides the
# program's own lines: quiet unless the user sets TF_CPP_MIN_LOG_LEVEL.
QUIET_TENSORFLOW = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ errors during a run still show


@contextlib.contextmanager
def _native_stderr_held():
    """Hold what C and C++ code writes to file descriptor 2 (TensorFlow logs its first lines there before
    its log level is read); replay it if the block fails, so a real error is never hidden."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def start_tensorflow():
    """Import TensorFlow and probe its devices, without its C++ start-up lines unless the user set
    TF_CPP_MIN_LOG_LEVEL; returns the module."""
    if not QUIET_TENSORFLOW or "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    with _native_stderr_held():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe, which logs on a machine without a GPU
    return tf

_BOOL_WORDS = {"true", "false", "1", "0", "yes", "no", "t", "f"}


def bad_bool_value(argv: Sequence[str], flag_values=flags.FLAGS):
    """``--is_train maybe``: the one-line refusal of a word after a boolean flag that is not a truth
    value (absl would call it an unexpected argument), else None."""
    for arg, nxt in zip(argv, argv[1:]):
        name = arg[2:] if arg.startswith("--") and "=" not in arg else None
        fl = flag_values[name] if name and name in flag_values else None
        if fl is not None and fl.boolean and not nxt.startswith("-") and nxt.lower() not in _BOOL_WORDS:
            return f"{arg} {nxt}: expected True or False"
    return None


def fold_bool_args(argv: Sequence[str], flag_values=flags.FLAGS) -> List[str]:
    """Turn ``--name True`` into ``--name=True`` for boolean flags (the original's spelling)."""
    out: List[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg[2:] if arg.startswith("--") and "=" not in arg else None
        fl = flag_values[name] if name and name in flag_values else None
        if fl is not None and fl.boolean and i + 1 < len(argv) and argv[i + 1].lower() in _BOOL_WORDS:
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def fold_list_args(argv: Sequence[str], list_flags: Sequence[str]) -> List[str]:
    """``--grids A B C D`` -> ``--grids=A,B,C,D`` for each flag in ``list_flags``: several paths after one
    flag, for absl's comma-separated list flags."""
    out: List[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg[2:] if arg.startswith("--") and "=" not in arg else None
        if name in list_flags:
            j = i + 1
            while j < len(argv) and not argv[j].startswith("--"):
                j += 1
            out.append(f"--{name}={','.join(argv[i + 1:j])}")
            i = j
            continue
        out.append(arg)
        i += 1
    return out


def check_outputs(outputs: Sequence[Tuple[str, Optional[str]]], inputs: Sequence[str] = ()) -> None:
    """Each ``(flag, path)`` of ``outputs`` (a None path skipped), before the work that writes it: a
    non-empty path of a file that can be written, none of ``inputs`` nor in an input folder
    (``fileio.is_input``), and no two the same file; else a one-line UsageError naming the flag."""
    given = [(flag, path) for flag, path in outputs if path is not None]
    for i, (flag, path) in enumerate(given):
        if not path:  # would be skipped as "not given", silently
            raise UsageError(f"{flag}='': give a file path, or leave the flag out")
        why = fileio.unwritable_file(path)
        if why:
            raise UsageError(f"{flag}={path}: {why}; give a file path in a writable folder")
        why = fileio.is_input(path, inputs)
        if why:
            raise UsageError(f"{flag}={path}: {why}; an output may not replace an input: give another path")
        for other_flag, other in given[:i]:
            if fileio.is_input(path, [other]):
                raise UsageError(f"{flag}={path}: is {other_flag} too; give each its own path")


def _parse_flags(argv: List[str]) -> List[str]:
    """absl's flag parsing, its refusal (an unknown flag, a value that is not a number...) one line, exit 2, as
    the program's own refusals (absl's prints two lines and exits 1)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {' '.join(str(e).split())} (see --help)", file=sys.stderr)
        sys.exit(2)


def run(main: Callable[[List[str]], int], known_errors=(), list_flags: Sequence[str] = (),
        plain_args: bool = False) -> None:
    """absl's app.run with original-style booleans; a known error becomes one line on stderr, exit 2;
    a stopped run (:class:`RunStopped`) one line with its own status (a stop the user asked for is not
    an ``error:``); Ctrl-C outside a training loop one line, exit 130.

    ``list_flags``: list flags that take several values after one flag (:func:`fold_list_args`).
    ``plain_args``: the program takes plain arguments (``main`` gets them after ``argv[0]`` and checks
    them); without it a plain argument is refused, and so is a word after a boolean flag."""
    errors = (UsageError, DataError, GridError) + tuple(known_errors)

    def wrapped(argv):
        # TensorFlow logs through absl at INFO (checkpoint sharding, SavedModel fingerprints); those lines
        # would interleave with the original's per-step output.
        logging.set_verbosity(logging.WARNING)
        if len(argv) > 1 and not plain_args:
            print(f"error: unexpected arguments {' '.join(argv[1:])!r} (see --help)", file=sys.stderr)
            return 2
        try:
            return main(argv)
        except errors as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except RunStopped as e:
            print(f"{'' if e.requested else 'error: '}{e}", file=sys.stderr)
            if e.requested:
                # Everything is saved and flushed: skip the interpreter's teardown of TensorFlow's objects,
                # which took up to a minute on a loaded machine after the line above.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(e.status)
            return e.status
        except KeyboardInterrupt:
            print("error: interrupted (Ctrl-C)", file=sys.stderr)
            return 130

    argv = fold_list_args(sys.argv, list_flags) if list_flags else list(sys.argv)
    bad = None if plain_args else bad_bool_value(argv[1:])  # with plain arguments, the word may be one
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        sys.exit(2)
    app.run(wrapped, argv=fold_bool_args(argv), flags_parser=_parse_flags)
