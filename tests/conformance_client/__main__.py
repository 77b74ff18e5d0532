"""``python -m tests.conformance_client [--fault NAME]``: run the reference client until SIGTERM,
SIGINT or the end of standard input (then it logs out). Logs on standard error; standard output
carries the protocol's answers only."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from conformance.clients.env import ClientEnv, ClientEnvError
from conformance.clients.stdio import claim_stdout, serve, stop_on_signals
from fixengine.errors import FixEngineError
from fixengine.logs import configure_logging
from tests.conformance_client import FAULTS
from tests.conformance_client.client import ReferenceClient

log = logging.getLogger("conformance_client")


async def run(fault: str | None) -> int:
    answers = claim_stdout()
    configure_logging("text")
    try:
        env = ClientEnv.from_environ()
        client = ReferenceClient(env, frozenset({fault} if fault else ()))
    except (ClientEnvError, FixEngineError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    if fault:
        log.warning("fault %s: %s", fault, FAULTS[fault])
    stop = asyncio.Event()
    stop_on_signals(stop)
    session = asyncio.ensure_future(client.session.run(stop))
    try:
        await serve(client.handle, stop, answers)
    finally:
        stop.set()
        await session
        await client.aclose()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance_client", description=__doc__)
    parser.add_argument("--fault", choices=sorted(FAULTS), help="break exactly one thing (see the package docstring)")
    sys.exit(asyncio.run(run(parser.parse_args().fault)))


if __name__ == "__main__":
    main()
