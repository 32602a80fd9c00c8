"""Atomic file output: nothing this project writes is ever left half-written; whether a file or a
folder can be written, or would replace an input, checked before the work that writes it; and a JSON
file read back, or refused in one line.

Every writer puts its bytes under a temporary name in the destination's own directory (so the final
rename stays on one filesystem and is atomic), and renames it into place only once it is complete.
An interrupted process leaves at most a ``.tmp-*`` file behind, never a file that looks finished.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from typing import Iterator, List, Optional, Sequence

from cogan_tf.errors import DataError


@contextlib.contextmanager
def atomic_path(path: str, is_dir: bool = False) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    On an exception the temporary file (or directory, with ``is_dir``) is removed and ``path`` is left
    as it was. An existing ``path`` is replaced only after the new content is complete.
    """
    given, path = path, os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(path)
    if is_dir:
        tmp = tempfile.mkdtemp(prefix=f".tmp-{base}-", dir=parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{base}-", dir=parent)
        os.close(fd)
    try:
        yield tmp
        if is_dir:
            old = None
            if os.path.exists(path):
                # A directory cannot be replaced by rename in one step: move the old one aside first.
                old = tempfile.mkdtemp(prefix=f".old-{base}-", dir=parent)
                os.rmdir(old)
                os.rename(path, old)
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp made it 0700: the user's umask instead
            os.rename(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except BaseException as e:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and getattr(e, "filename", None) in (None, tmp):
            e.filename = given  # a failed write names the file the user knows, not its temporary name
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def unwritable_file(path: str) -> Optional[str]:
    """Why ``path`` cannot be written as a file by :func:`atomic_path`, or None; nothing is created: a
    probe file is made in the nearest existing folder above it and removed at once."""
    if os.path.isdir(path):
        return "is a directory"
    if path.endswith(("/", os.sep)):
        return "ends in /, so names a folder"
    if os.path.lexists(path) and not os.path.isfile(path):
        return "exists and is not a regular file"  # a device or socket would be replaced by the rename
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    try:
        _write_probe(existing)
    except OSError as e:
        return f"{existing} is not writable ({e.strerror or e})"
    return None


def is_input(path: str, inputs: Sequence[str]) -> Optional[str]:
    """Why writing ``path`` would write over what a command reads, or None. ``inputs`` are the files and
    folders it reads: ``path`` may be none of the files (also through a link), nor lie inside one of the
    folders."""
    real = os.path.realpath(path)
    for source in inputs:
        source_real = os.path.realpath(source)
        if os.path.isdir(source_real):
            if real == source_real or real.startswith(source_real.rstrip(os.sep) + os.sep):
                return f"is in the input folder {source}"
        elif real == source_real or (os.path.isfile(path) and os.path.isfile(source)
                                     and os.path.samefile(path, source)):
            return f"is the input {source}"
    return None


def _write_probe(folder: str) -> None:
    """Create and remove a file in ``folder``: the OSError says why it cannot be written."""
    fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
    os.close(fd)
    os.remove(probe)


def _missing_ancestors(path: str) -> List[str]:
    """The folders ``os.makedirs(path)`` would create, outermost first."""
    out = []
    path = os.path.normpath(path)
    while path and not os.path.lexists(path):
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return out[::-1]


def unwritable_dir(path: str) -> Optional[str]:
    """Why ``path`` cannot be used as an output folder, or None. A probe file is written into it (the
    folder created if needed) and removed, and so is every folder the probe created: checking leaves
    nothing on disk."""
    if os.path.islink(path) and not os.path.exists(path):
        try:
            os.stat(path)
        except OSError as e:
            if e.errno == errno.ELOOP:
                return "a symbolic link that loops"
        return f"a symbolic link to {os.readlink(path)}, which does not exist"
    created = _missing_ancestors(path)
    try:
        os.makedirs(path, exist_ok=True)
        _write_probe(path)
    except OSError as e:
        existing = os.path.dirname(created[0]) if created else path
        if os.path.exists(existing) and not os.path.isdir(existing):
            return f"{existing} is a file"
        if e.errno == errno.ENAMETOOLONG:
            return "a name in the path is too long"
        if e.errno == errno.ELOOP:
            return "a symbolic link in the path loops"
        return e.strerror or str(e)
    finally:
        for d in reversed(created):
            if os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    break
    return None


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary name, fsync, rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str, what: str):
    """The JSON value in ``path``; a missing file, a folder in its place, an unreadable, empty or malformed
    file is a one-line DataError naming ``path`` and ``what`` it should be (e.g. "a JSON report")."""
    if os.path.isdir(path):
        raise DataError(f"{path}: a folder, not {what}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; expected {what}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not raw.strip():
        raise DataError(f"{path}: an empty file, not {what}")
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as e:  # malformed JSON, or not UTF-8
        raise DataError(f"{path}: not {what} ({e})") from None
