"""check: thresholds on a deploy report pass and fail as they should; JUnit XML parses; bad input exits 2."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tinyml_ptq.cli import main
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.pipeline.check import check, parse_size


def _junit_cases(path) -> dict[str, str | None]:
    """testcase name -> failure message (None when it passed), parsed as a CI server would."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases)
    assert int(suite.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
    return {c.get("name"): (c.find("failure").get("message") if c.find("failure") is not None else None)
            for c in cases}


@pytest.mark.slow
def test_real_report_passes_loose_thresholds(digits_deployed, tmp_path, capsys):
    junit = tmp_path / "check.xml"
    code = main(["check", str(digits_deployed.report_json), "--max-accuracy-drop", "1", "--min-exact", "1",
                 "--max-flash", "1M", "--max-ram", "64K", "--max-latency", "2000000", "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("PASS") == 5 and "FAIL" not in out
    assert _junit_cases(junit) == {name: None for name in
                                   ("max-accuracy-drop", "min-exact", "max-flash", "max-ram", "max-latency")}


@pytest.mark.slow
def test_real_report_fails_tight_thresholds_with_measured_value_and_limit(digits_deployed, tmp_path, capsys):
    s = digits_deployed.report["summary"]
    junit = tmp_path / "check.xml"
    code = main(["check", str(digits_deployed.report_json), "--min-exact", "1", "--max-flash", "8K",
                 "--max-latency", "1000", "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))}
    assert lines["min-exact"].startswith("PASS")
    assert lines["max-flash"].startswith("FAIL") and f"{s['flash_bytes']:,} B, limit 8,192 B (8K)" in lines["max-flash"]
    assert lines["max-latency"].startswith("FAIL") and f"{s['latency_mean']:,.0f} instructions" in lines["max-latency"]
    assert "limit 1,000" in lines["max-latency"]
    cases = _junit_cases(junit)
    assert cases["min-exact"] is None
    assert f"{s['flash_bytes']:,} B" in cases["max-flash"] and "8,192 B" in cases["max-flash"]
    assert "limit 1,000" in cases["max-latency"]


@pytest.mark.slow
def test_limit_equal_to_the_measured_value_holds(digits_deployed):
    s = digits_deployed.report["summary"]
    at = check(digits_deployed.report_json, max_flash=s["flash_bytes"], max_ram=str(s["ram_bytes"]))
    assert at.passed
    below = check(digits_deployed.report_json, max_flash=s["flash_bytes"] - 1, max_ram=s["ram_bytes"] - 1)
    assert [c.name for c in below.failures] == ["max-flash", "max-ram"]


def _report(**summary) -> dict:
    base = {"accuracy_float": 0.9, "accuracy_int8": 0.88, "accuracy_device": 0.88, "exact": 0.75,
            "flash_bytes": 300_000, "ram_bytes": 20_000, "arena_bytes": 4_000, "latency_mean": 5e5,
            "latency_unit": "cycles", "samples": 8}
    return {"summary": {**base, **summary}}


def test_accuracy_drop_in_percentage_points():
    result = check(_report(), max_accuracy_drop=2.5)
    assert result.passed and result.checks[0].measured == pytest.approx(2.0)
    assert not check(_report(), max_accuracy_drop=1.5).passed


def test_exactness_below_the_minimum_fails():
    result = check(_report(), min_exact=0.9)
    assert not result.passed and "0.7500" in result.checks[0].message and ">= 0.9" in result.checks[0].message


def test_accuracy_threshold_without_labels_fails_rather_than_passing():
    result = check(_report(accuracy_float=None, accuracy_device=None), max_accuracy_drop=100)
    assert not result.passed and "not measured" in result.checks[0].message


@pytest.mark.parametrize("text, expected", [("262144", 262144), ("256K", 262144), ("256k", 262144),
                                            ("256KB", 262144), ("256KiB", 262144), ("1M", 1 << 20),
                                            ("1.5M", 3 << 19), ("2G", 2 << 30), ("100B", 100)])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "12Q", "-1K", "1MM", "K", "1 M B"])
def test_bad_sizes(text):
    with pytest.raises(UserError, match="cannot read"):
        parse_size(text)


def test_junit_written_for_a_failing_gate(tmp_path):
    junit = tmp_path / "sub" / "check.xml"
    result = check(_report(), max_flash="256K", max_ram="32K", junit=junit)
    assert not result.passed
    cases = _junit_cases(junit)
    assert cases["max-ram"] is None
    assert cases["max-flash"] == "300,000 B, limit 262,144 B (256K)"


@pytest.mark.parametrize("make_report, args, message", [
    (None, ["--max-flash", "1M"], "no such file"),
    ("{not json", ["--max-flash", "1M"], "not a readable JSON report"),
    ('{"quantize": {}}', ["--max-flash", "1M"], "not a deploy report"),
    ("REPORT", [], "give at least one threshold"),
    ("REPORT", ["--min-exact", "1.5"], "between 0 and 1"),
    ("REPORT", ["--max-ram", "lots"], "--max-ram: cannot read 'lots'"),
    ("REPORT", ["--max-accuracy-drop", "-1"], "0 or more"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, make_report, args, message):
    path = tmp_path / "report.json"
    if make_report is not None:
        path.write_text(json.dumps(_report()) if make_report == "REPORT" else make_report)
    junit = tmp_path / "check.xml"
    code = main(["check", str(path), *args, "--junit", str(junit)])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not junit.exists()
