"""A small FIX client for the conformance runner's tests, started by the runner as a real process:
logs on from the runner's environment on a bare socket (``conformance.harness.RawClient``), sends
heartbeats on time, answers TestRequests, logs out on SIGTERM; and misbehaves when asked to.

    python -m tests.helpers.raw_fix_client [--ignore-test-requests] [--print-env FILE]

It exits when the simulator closes the connection (it does not reconnect).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from conformance.harness import ApiKey, RawClient

POLL_S = 0.1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ignore-test-requests", action="store_true", help="never answer a TestRequest")
    parser.add_argument("--print-env", type=Path, help="write the KALSHI_* environment to this file (JSON)")
    args = parser.parse_args()
    env = os.environ
    if args.print_env is not None:
        args.print_env.write_text(json.dumps({k: v for k, v in env.items() if k.startswith("KALSHI_")}))
    target = env["KALSHI_FIX_TARGET"]
    heartbeat = int(env.get("KALSHI_FIX_HEARTBEAT_INTERVAL", "30"))
    key = ApiKey(env["KALSHI_API_KEY_ID"], Path(env["KALSHI_PRIVATE_KEY_FILE"]), Path(os.devnull))
    sim = SimpleNamespace(ports={target: int(env["KALSHI_FIX_PORT"])})
    client = RawClient(sim, key, target=target)  # type: ignore[arg-type]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    if client.logon(heartbeat=heartbeat).get(35) != "A":
        return 1
    client.sock.settimeout(POLL_S)
    last_sent = time.monotonic()
    while not stopping:
        if time.monotonic() - last_sent >= heartbeat:
            client.send("0", [])
            last_sent = time.monotonic()
        try:
            message = client.read()
        except TimeoutError:
            continue
        except (EOFError, OSError):
            return 0
        if message.get(35) == "1" and not args.ignore_test_requests:
            client.send("0", [(112, message.get(112, ""))])
            last_sent = time.monotonic()
    client.sock.settimeout(2)
    client.send("5", [])
    try:
        while client.read().get(35) != "5":
            pass
    except (EOFError, OSError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
