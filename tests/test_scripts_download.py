"""cogan_tf/scripts/download.py (``python download.py``), the program that fetches the datasets: the names to fetch
given as plain arguments, every name and flag checked before anything is fetched, and a bad one refused in one
line. How the files are fetched and verified: test_download.py, test_download_sources.py, test_published.py."""

import pytest

from cogan_tf import published
from tests.conftest import download_py


@pytest.mark.parametrize("args, message", [
    (["cifar"], "error: unknown dataset 'cifar': choose from mnist, fashion_mnist, andrewliao11"),
    ([], "error: name the datasets to fetch, e.g. python download.py mnist (choose from mnist, fashion_mnist, "
         "andrewliao11)"),
    (["mnist", "--source", "/no/such/dir"], "error: --source /no/such/dir: no such file or directory"),
    # every name is checked before anything is fetched, the grids' name among the choices
    (["../x"], "error: unknown dataset '../x': choose from mnist, fashion_mnist, andrewliao11"),
    (["andrewliao11", "cifar"], "error: unknown dataset 'cifar': choose from mnist, fashion_mnist, andrewliao11"),
    *[(["mnist", "--timeout", t], f"error: --timeout={v}: give the seconds to wait, more than 0 and at most 3600")
      for t, v in (("inf", "inf"), ("1e300", "1e+300"), ("nan", "nan"), ("0", "0.0"), ("-1", "-1.0"))],
    *[(["andrewliao11", f"--andrewliao11_url={u}"], f"error: --andrewliao11_url={u!r}: give the URL of the samples/ "
       f"folder, starting with https://, http://, file:// and ending in / [{published.BASE_URL}]")
      for u in ("", "file://", "ftp://example.org/", "file:///tmp/samples")],
])
def test_script_usage_errors(tmp_path, args, message):
    r = download_py(*args, "--data_dir", str(tmp_path / "data"))
    assert r.returncode == 2 and r.stderr.strip() == message, r.stderr
