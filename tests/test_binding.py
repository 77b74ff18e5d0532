"""``import fixengine`` makes ``quickfix`` lean: its field classes are made when named, each the
same as the module's own (tag, field type), and the process is lighter by most of the module."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
if sys.argv[1] == "lean":
    import fixengine  # noqa: F401 - installs the lean module before quickfix is imported
import quickfix
named_before = {n for n in ("Account", "TransactTime", "Price", "MsgType") if n in vars(quickfix)}
fields = {n: [getattr(quickfix, n)().getTag(), getattr(quickfix, n).__mro__[1].__name__]
          for n in ("Account", "ClOrdID", "TransactTime", "Price", "OrderQty", "PossDupFlag", "MsgType", "Side")}
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) // 1024
print(json.dumps({"named_before": sorted(named_before), "fields": fields, "rss_mb": rss,
                  "session": quickfix.SessionID("FIX.4.4", "A", "B").toString()}))
"""


def probe(how: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, how], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def test_field_classes_are_made_when_named_and_match_the_modules_own() -> None:
    lean, full = probe("lean"), probe("full")
    assert lean["named_before"] == [] and full["named_before"] == ["Account", "MsgType", "Price", "TransactTime"]
    assert lean["fields"] == full["fields"]
    assert lean["session"] == full["session"] == "FIX.4.4:A->B"


def test_the_lean_module_spares_most_of_the_full_modules_memory() -> None:
    lean, full = probe("lean"), probe("full")
    # The full module alone is ~140 MB of class objects; fixengine's own imports are far less.
    assert full["rss_mb"] - lean["rss_mb"] > 50, (lean["rss_mb"], full["rss_mb"])
