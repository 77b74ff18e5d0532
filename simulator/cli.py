"""The ``fixengine-simulator`` command: run the local Kalshi FIX simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path

import click

from fixengine.cli import run_command
from fixengine.heap import HeapKeeper
from simulator.events import SimEvent


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Simulator TOML config.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(config_path: Path, verbose: bool) -> None:
    """Run a local imitation of Kalshi's FIX acceptor (and REST API, with rest_port in the config)."""
    from simulator.config import load_simulator_config
    from simulator.server import Simulator

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    config = load_simulator_config(config_path)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def show(event: SimEvent) -> None:
        if event.kind == "listening":
            click.echo(f"fixengine-simulator listening on {event.detail}", err=False)
        else:
            who = " ".join(x for x in (event.session_type, event.key_id) if x)
            click.echo(f"{event.kind:<10} {who} {event.detail}".rstrip())

    heap = HeapKeeper()  # no full garbage collection walks the resting orders while orders wait
    with Simulator(config, on_event=show):
        heap.start()
        stop.wait()
        heap.stop()
        click.echo("stopping")
        click.echo(f"garbage collection: {json.dumps(heap.pauses.summary())}")


def main() -> None:
    run_command(cli)
