"""``--junit-xml FILE``: the run as a JUnit report, the format CI systems read.

One ``<testcase>`` per target (class name ``gradcheck``, the target as the name), with one
``<failure>`` per failed check (its name as the type, the check's message and the failing
entries as text), one ``<error>`` for a target that could not be checked, ``<skipped>`` for an
export that is not a module, and what the target printed in ``<system-out>``.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

__all__ = ["junit_xml", "write_junit"]

#: Characters XML 1.0 cannot hold, even escaped; what modules print may contain them.
_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _INVALID.sub("\ufffd", value)


def _failure_text(check: Any) -> str:
    lines = [check.message or "failed"]
    lines += [tensor.describe() for tensor in check.tensors if not tensor.passed]
    if check.traceback:
        lines.append(check.traceback.rstrip())
    return "\n".join(lines)


def junit_xml(outcomes: Sequence[Any], seconds: float) -> ET.ElementTree:
    """The JUnit tree of the outcomes of one run."""
    counts = {status: sum(o.status == status for o in outcomes) for status in ("error", "skipped")}
    failures = sum(len(o.report.failures) for o in outcomes if o.status == "fail")
    attributes = {
        "tests": str(len(outcomes)),
        "failures": str(failures),
        "errors": str(counts["error"]),
        "skipped": str(counts["skipped"]),
        "time": f"{seconds:.3f}",
    }
    root = ET.Element("testsuites", attributes)
    suite = ET.SubElement(root, "testsuite", {"name": "gradcheck", **attributes})
    for outcome in outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": "gradcheck",
                "name": _text(outcome.name),
                "time": f"{outcome.seconds:.3f}",
            },
        )
        if outcome.status == "fail":
            for check in outcome.report.failures:
                first = (check.message or "failed").strip().splitlines() or ["failed"]
                element = ET.SubElement(
                    case, "failure", {"type": check.name, "message": _text(first[0])}
                )
                element.text = _text(_failure_text(check))
        elif outcome.status == "error":
            element = ET.SubElement(case, "error", {"message": _text(outcome.reason)})
            element.text = _text("\n".join(filter(None, [outcome.reason, outcome.detail])))
        elif outcome.status == "skipped":
            ET.SubElement(case, "skipped", {"message": _text(outcome.reason)})
        if outcome.output:
            ET.SubElement(case, "system-out").text = _text(outcome.output)
    return ET.ElementTree(root)


def write_junit(path: str, outcomes: Sequence[Any], seconds: float) -> None:
    """Write the JUnit report to ``path`` at once (a reader never sees half a file)."""
    tree = junit_xml(outcomes, seconds)
    ET.indent(tree)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".gradcheck-", suffix=".xml", dir=folder)
    try:
        with os.fdopen(fd, "wb") as file:
            tree.write(file, encoding="utf-8", xml_declaration=True)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
