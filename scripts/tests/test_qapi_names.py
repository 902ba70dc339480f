"""QAPI's convergence enums and the library's names are one table: the
patched QEMU's qapi/migration.json must list exactly the names libkairos
gives (actions and reasons, in the library's order, plus QAPI's own
'unknown'), its escalations must be the header's, and every policy QEMU
offers but 'off' must be one the library accepts. QEMU maps the library's
names by string (qapi_enum_parse), so a name missing on either side would
be reported as 'unknown' at run time; this test catches it at build time.

Needs the patched tree (scripts/build-qemu.sh) and libkairos.a
(scripts/build-libkairos.sh); run by scripts/qemu-tests.sh."""
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QAPI = ROOT / "build/qemu/src-kairos/qapi/migration.json"
HEADER = ROOT / "build/include/kairos.h"
LIBRARY = ROOT / "build/lib/libkairos.a"
PROBE_SOURCE = Path(__file__).with_name("qapi_names_probe.c")


def qapi_enums(text):
    """Every `{ 'enum': NAME, 'data': [...] }` of a QAPI schema: name -> members."""
    enums = {}
    for match in re.finditer(r"\{\s*'enum':\s*'(\w+)',\s*'data':\s*\[(.*?)\]", text, re.S):
        enums[match.group(1)] = re.findall(r"'([\w-]+)'", match.group(2))
    return enums


def header_names(text, prefix):
    """The kebab-case names of a kairos.h enum, in value order."""
    members = re.findall(rf"\b{prefix}_(\w+) = (\d+)", text)
    return [name.lower().replace("_", "-") for name, _ in sorted(members, key=lambda m: int(m[1]))]


def differences(enums, library, escalations):
    """What differs between QAPI's enums and the library's names."""
    problems = []
    for qapi_name, lib_set in (("MigrationConvergenceAction", "action"),
                               ("MigrationConvergenceReason", "reason")):
        want = library[lib_set] + ["unknown"]
        have = enums.get(qapi_name)
        if have != want:
            problems.append(f"{qapi_name}: QAPI has {have}, the library gives {want}")
    have = enums.get("MigrationConvergenceEscalation")
    if have != escalations:
        problems.append(f"MigrationConvergenceEscalation: QAPI has {have}, kairos.h {escalations}")
    refused = [p for p, ok in library["policy_accepted"].items() if not ok]
    if refused:
        problems.append(f"MigrationConvergencePolicy: the library refuses {refused}")
    if "MigrationConvergenceModel" in enums:
        problems.append("MigrationConvergenceModel: the library's model names are internal")
    return problems


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    for need in (QAPI, HEADER, LIBRARY):
        assert need.exists(), f"{need} missing: run scripts/build-qemu.sh first"
    enums = qapi_enums(QAPI.read_text())
    probe = tmp_path_factory.mktemp("probe") / "qapi_names_probe"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", f"-I{HEADER.parent}", str(PROBE_SOURCE),
                    str(LIBRARY), "-lpthread", "-ldl", "-lm", "-o", str(probe)], check=True)
    policies = [p for p in enums["MigrationConvergencePolicy"] if p != "off"]
    library = json.loads(subprocess.run([str(probe), *policies], check=True,
                                        capture_output=True, text=True).stdout)
    escalations = header_names(HEADER.read_text(), "KAIROS_ESCALATION")
    return enums, library, escalations


def test_qapi_enums_are_the_library_names(names):
    enums, library, escalations = names
    assert len(library["action"]) >= 4 and len(library["reason"]) >= 10, library
    assert differences(enums, library, escalations) == []


def test_a_name_missing_from_qapi_is_caught(names):
    # The comparison itself must fail when the tables drift apart.
    enums, library, escalations = names
    drifted = {k: list(v) for k, v in enums.items()}
    drifted["MigrationConvergenceReason"].remove("throttling")
    assert any("MigrationConvergenceReason" in p for p in differences(drifted, library, escalations))
    newer_library = dict(library, action=library["action"] + ["pause"])
    assert any("MigrationConvergenceAction" in p for p in differences(enums, newer_library, escalations))
    refusing = dict(library, policy_accepted={"predictive": False})
    assert any("MigrationConvergencePolicy" in p for p in differences(enums, refusing, escalations))
