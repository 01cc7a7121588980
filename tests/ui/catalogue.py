#!/usr/bin/env python3
"""Prints README's compile-error catalogue from tests/ui/fail/*/*.stderr: one row per case,
with the first line of the error it pins. Run from the repository root and paste the output
between README's `<!-- catalogue -->` markers; `tests/tests/readme.rs` checks that every case
is listed."""

import glob
import os
import re

TITLES = {
    "attr": "Attributes",
    "graph": "Graph",
    "signature": "Step signatures",
    "routes": "Routes and loops",
    "converge": "Converging routes",
    "from": "Earlier outputs (`#[from]`)",
    "types": "Types between steps",
    "api": "Using the generated API",
    "order": "Using the generated API",
    "join": "Using the generated API",
    "tools": "Tools",
    "agents": "Agents",
    "approvals": "Approvals",
    "waits": "Timers and events",
}

rows = {}
for path in sorted(glob.glob("tests/ui/fail/*/*.stderr")):
    category = path.split("/")[3]
    case = os.path.basename(path)[: -len(".stderr")]
    with open(path, encoding="utf-8") as f:
        first = f.readline().rstrip("\n")
    m = re.match(r"error(\[E\d+\])?: (.*)", first)
    code, message = (m.group(1) or "", m.group(2)) if m else ("", first)
    rows.setdefault(TITLES[category], []).append((category, case, code, message.replace("|", "\\|")))

for title in dict.fromkeys(TITLES.values()):
    print(f"\n**{title}**\n")
    print("| case | error: what is wrong and how to fix it |")
    print("| --- | --- |")
    for category, case, code, message in rows.get(title, []):
        code = f"{code} " if code else ""
        print(f"| [`{case}`](tests/ui/fail/{category}/{case}.rs) | {code}{message} |")
