"""Validation results as text, JSON and JUnit XML (one testcase per check), deterministic."""

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from tasks.validate_checks import CheckResult, Kind, Status

KIND_ORDER = {k: i for i, k in enumerate(Kind)}


def ordered(results: Sequence[CheckResult]) -> list[CheckResult]:
    return sorted(results, key=lambda r: (KIND_ORDER[r.kind], r.gateway, r.subject))


def counts(results: Sequence[CheckResult]) -> dict[str, int]:
    return {str(s): sum(1 for r in results if r.status is s) for s in Status}


def as_text(results: Sequence[CheckResult]) -> str:
    lines = []
    for r in ordered(results):
        tail = r.observed if r.status is Status.PASS else r.message
        lines.append(f"{str(r.status).upper():<4}  {r.name}  {tail}")
    return "".join(f"{line}\n" for line in lines)


def as_json(results: Sequence[CheckResult], fabric: str) -> str:
    data = {"fabric": fabric, "ok": all(r.ok for r in results), "counts": counts(results),
            "checks": [r.as_dict() for r in ordered(results)]}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def as_junit(results: Sequence[CheckResult], fabric: str) -> str:
    """JUnit XML: one testsuite per check kind, one testcase per check."""
    root = ET.Element("testsuites", name=f"dcvpn validate {fabric}")
    total = counts(results)
    root.set("tests", str(len(results)))
    root.set("failures", str(total[str(Status.FAIL)]))
    root.set("skipped", str(total[str(Status.SKIP)]))
    for kind in Kind:
        mine = [r for r in ordered(results) if r.kind is kind]
        if not mine:
            continue
        part = counts(mine)
        suite = ET.SubElement(root, "testsuite", name=f"dcvpn.validate.{kind}",
                              tests=str(len(mine)), failures=str(part[str(Status.FAIL)]),
                              skipped=str(part[str(Status.SKIP)]), errors="0")
        for r in mine:
            case = ET.SubElement(suite, "testcase", classname=f"dcvpn.validate.{kind}",
                                 name=r.name)
            if r.status is Status.FAIL:
                failure = ET.SubElement(case, "failure", message=r.message, type=str(kind))
                failure.text = f"{r.name}: {r.message}"
            elif r.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=r.observed)
            else:
                ET.SubElement(case, "system-out").text = r.observed
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
