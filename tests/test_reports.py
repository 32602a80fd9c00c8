"""cogan_tf/evaluate/reports.py, the report as text and JSON: two reports side by side with their differences,
and a report that cannot be written refused in one line naming the file."""

import pytest

from cogan_tf.errors import DataError
from cogan_tf.evaluate import reports


def test_compare_shows_differences():
    a = {"model": "cogan", "n": 64, "domains": {"top": {"classifier_score": 8.0, "histogram": [0.5, 0.5]}},
         "pairs": {"pixel_agreement": 0.9}}
    b = {"model": "cogan", "n": 64, "domains": {"top": {"classifier_score": 9.5, "histogram": [0.25, 0.75]}},
         "pairs": {"pixel_agreement": 0.95}}
    text = reports.format_compare(a, b, "a.json", "b.json")
    line = next(x for x in text.splitlines() if x.startswith("domains.top.classifier_score"))
    assert line.split()[1:] == ["8.0000", "9.5000", "+1.5000"]
    assert any(x.startswith("domains.top.histogram.1") and x.endswith("+0.2500") for x in text.splitlines())
    assert any(x.startswith("pairs.pixel_agreement") and x.endswith("+0.0500") for x in text.splitlines())


def test_a_report_that_cannot_be_written_is_one_line(tmp_path):
    """What the command line's check cannot see coming (a folder that changes, a disk that fills up)."""
    (tmp_path / "a_file").write_text("")
    with pytest.raises(DataError, match=f"^{tmp_path}/a_file/r.json: cannot write the report \\([^)]+\\)$"):
        reports.write_report(str(tmp_path / "a_file" / "r.json"), {"domains": {}})
