"""The CI gate: thresholds on a deploy report.json, with an optional JUnit XML file.

Every threshold given is one check; the result passes when all of them hold. A
threshold whose quantity the report does not contain (accuracy without class
labels) fails rather than passing silently. Sizes accept bytes or K/M/G
suffixes in binary units: `256K` = 262,144 bytes, `1M` = 1,048,576 bytes.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ..core import json_files
from ..core.errors import UserError
from ..core.fileio import check_writable, write_text_atomic

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?\s*", re.IGNORECASE)
_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@dataclass
class ThresholdCheck:
    name: str  # the option, e.g. "max-flash"
    measured: float | None  # None: not in the report
    limit: float
    passed: bool
    message: str  # measured value, the limit, and what it means


@dataclass
class CheckResult:
    report: str
    checks: list[ThresholdCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[ThresholdCheck]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        lines = [f"{'PASS' if c.passed else 'FAIL'}  {c.name:<18} {c.message}" for c in self.checks]
        lines.append(f"{len(self.checks) - len(self.failures)} of {len(self.checks)} thresholds hold"
                     + ("" if self.passed else f"; {len(self.failures)} failed"))
        return "\n".join(lines)


def parse_size(text: str | int, what: str = "size") -> int:
    """Bytes from `262144`, `256K`, `256KB`, `256KiB`, `1M`, `1.5M` (binary units)."""
    if isinstance(text, int):
        return text
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise UserError(f"{what}: cannot read {text!r} as a size; give bytes or a K/M/G suffix, e.g. 256K or 1M")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower() if m.group(2) else None])


def check(report: str | os.PathLike | dict, *, max_accuracy_drop: float | None = None,
          min_exact: float | None = None, max_flash: int | str | None = None, max_ram: int | str | None = None,
          max_latency: float | None = None, junit: str | os.PathLike | None = None) -> CheckResult:
    """Check REPORT (a deploy report.json, or its dict) against every threshold given.

    max_accuracy_drop: percentage points the on-device top-1 may lose against the float model.
    min_exact: fraction of device outputs byte-identical to the TFLM reference.
    max_flash, max_ram: bytes (or sizes like "256K"). max_latency: mean per inference, in the
    device's tick unit (instructions under QEMU, cycles on hardware).
    """
    thresholds = {"max-accuracy-drop": max_accuracy_drop, "min-exact": min_exact, "max-flash": max_flash,
                  "max-ram": max_ram, "max-latency": max_latency}
    if all(v is None for v in thresholds.values()):
        raise UserError("give at least one threshold: --max-accuracy-drop, --min-exact, --max-flash, "
                        "--max-ram or --max-latency")
    check_writable(junit, "--junit")
    name, data = _load(report)
    summary = data["summary"]
    result = CheckResult(name)

    if max_accuracy_drop is not None:
        if max_accuracy_drop < 0:
            raise UserError("--max-accuracy-drop must be 0 or more percentage points")
        f, d = summary.get("accuracy_float"), summary.get("accuracy_device")
        if f is None or d is None:
            result.checks.append(ThresholdCheck(
                "max-accuracy-drop", None, max_accuracy_drop, False,
                f"not measured: the report has no top-1 accuracy (the eval data has no class labels); "
                f"limit {max_accuracy_drop:g} pts"))
        else:
            drop = round(100 * (f - d), 6)
            result.checks.append(ThresholdCheck(
                "max-accuracy-drop", drop, max_accuracy_drop, drop <= max_accuracy_drop,
                f"{drop:.2f} pts (float {100 * f:.2f} % -> device {100 * d:.2f} %), limit {max_accuracy_drop:g} pts"))
    if min_exact is not None:
        if not 0 <= min_exact <= 1:
            raise UserError("--min-exact is a fraction between 0 and 1 (e.g. 1.0: every output identical)")
        exact = summary["exact"]
        result.checks.append(ThresholdCheck(
            "min-exact", exact, min_exact, exact >= min_exact,
            f"{exact:.4f} of outputs identical to the TFLM reference, limit >= {min_exact:g}"))
    for option, key, value in (("max-flash", "flash_bytes", max_flash), ("max-ram", "ram_bytes", max_ram)):
        if value is None:
            continue
        limit = parse_size(value, f"--{option}")
        used = summary[key]
        result.checks.append(ThresholdCheck(
            option, used, limit, used <= limit,
            f"{used:,} B, limit {limit:,} B" + (f" ({value})" if isinstance(value, str) else "")))
    if max_latency is not None:
        mean, unit = summary["latency_mean"], summary["latency_unit"]
        result.checks.append(ThresholdCheck(
            "max-latency", mean, max_latency, mean <= max_latency,
            f"{mean:,.0f} {unit} per inference (mean), limit {max_latency:,.0f}"))

    if junit is not None:
        write_text_atomic(junit, junit_xml(result))
    return result


def _load(report: str | os.PathLike | dict) -> tuple[str, dict]:
    if isinstance(report, dict):
        data, name = report, "report"
    else:
        path = Path(report)
        name = str(path)
        try:
            data = json_files.read(path, "report", "give the report.json that 'tinyml-ptq deploy' wrote")
        except FileNotFoundError:
            raise UserError(f"{path}: no such file; give the report.json that 'tinyml-ptq deploy' wrote") from None
    if not isinstance(data, dict) or not isinstance(data.get("summary"), dict):
        raise UserError(f"{name}: not a deploy report (no 'summary'); give the report.json that "
                        "'tinyml-ptq deploy' wrote")
    return name, data


def junit_xml(result: CheckResult) -> str:
    """JUnit XML: one test case per threshold, failures with measured value and limit."""
    suite = ET.Element("testsuite", name="tinyml-ptq check", tests=str(len(result.checks)),
                       failures=str(len(result.failures)), errors="0", skipped="0")
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="report", value=result.report)
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", classname="tinyml-ptq.check", name=c.name, time="0")
        if not c.passed:
            ET.SubElement(case, "failure", message=c.message, type="threshold").text = c.message
        else:
            ET.SubElement(case, "system-out").text = c.message
    root = ET.Element("testsuites", name="tinyml-ptq", tests=suite.get("tests"), failures=suite.get("failures"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
