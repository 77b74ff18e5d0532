"""The ``fixengine`` command: run the engine, try it out, check configs, make keys."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import sys
from pathlib import Path

import click

from fixengine.errors import FixEngineError
from fixengine.logs import LOG_FORMATS, LogFormat, configure_logging

SIMULATOR_MISSING = "the simulator is not installed here: pip install 'fixengine[simulator]'"


def _simulator(module: str):  # type: ignore[no-untyped-def]
    """A module of the simulator, found at run time. The product never imports the simulator (a
    production install has no FastAPI or uvicorn); only these commands reach for it, and say what
    is missing when it is not there."""
    try:
        return importlib.import_module(f"simulator.{module}")
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"{SIMULATOR_MISSING} ({exc.name} is missing)") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True,
              help="The log on standard error: text lines, or one JSON object per line (time, level, logger, "
                   "message, correlation fields).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, log_format: LogFormat) -> None:
    """FIX connectivity engine for Kalshi."""
    ctx.obj = {"verbose": verbose, "log_format": log_format}
    configure_logging(log_format, verbose)


class _ElsewhereGroup(click.Group):
    """A command group of another package (the conformance tool), imported only when it is used:
    ``fixengine --help`` lists it by this short help, so the product never imports it."""

    def __init__(self, name: str, module: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help)
        self._module = module

    def _group(self) -> click.Group:
        group = getattr(importlib.import_module(self._module), self.name or "")
        assert isinstance(group, click.Group)
        return group

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[no-untyped-def]
        return self._group().make_context(info_name, args, parent, **extra)  # its own context and help

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._group().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._group().get_command(ctx, name)


cli.add_command(_ElsewhereGroup("conform", "conformance.cli",
                                "Kalshi FIX conformance: list and run scenarios against a FIX client."))


@cli.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Start the simulator in-process and log on to it in both dialects with fresh keys."""
    run_demo = _simulator("demo").run_demo
    if not ctx.obj["verbose"]:  # the demo prints its own story; log only what goes wrong
        logging.getLogger().setLevel(logging.WARNING)
    sys.exit(asyncio.run(run_demo()))


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Engine TOML config.")
def run(config_path: Path) -> None:
    """Run the engine until SIGINT/SIGTERM, then log out cleanly."""
    from fixengine.config import load_config

    config = load_config(config_path)
    sys.exit(asyncio.run(_until_stopped(config, _run_engine)))


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Engine TOML config.")
def serve(config_path: Path) -> None:
    """Run the Kalshi sessions and the OMS gateway ([gateway], [[oms_client]]) until SIGINT/SIGTERM;
    then log out of Kalshi, then of the OMSs. Prints one line saying where it listens. SIGHUP reads
    the config again: a new client on a port of its own starts listening, entitlements change;
    no one connected is disconnected."""
    from fixengine.config import load_config

    config = load_config(config_path)
    if config.gateway is None:
        raise click.ClickException(f"{config_path}: serve needs a [gateway] section and [[oms_client]] entries")

    async def _serve(effective, stop: asyncio.Event, hurry: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
        from fixengine.serve import serve as serve_until

        reload = asyncio.Event()  # SIGHUP: read the session map again (new clients, entitlements)
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload.set)
        await serve_until(effective, stop, announce=click.echo, reload=reload, read_config=lambda: load_config(config_path),
                          hurry=hurry)

    sys.exit(asyncio.run(_until_stopped(config, _serve)))


async def _until_stopped(config, body) -> int:  # type: ignore[no-untyped-def]
    """Run ``body(effective config, stop)`` (the embedded simulator around it, if configured)
    until SIGINT/SIGTERM sets ``stop``."""
    from contextlib import nullcontext

    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        (hurry if stop.is_set() else stop).set()  # a second signal: stop without waiting

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    if config.embedded_simulator:
        context = _simulator("embedded").embedded_simulator(config)
    else:
        context = nullcontext((config, None))
    with context as (effective, _embedded):
        await body(effective, stop, hurry)
    return 0


async def _run_engine(config, stop: asyncio.Event, hurry: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    from fixengine.engine import Engine

    from fixengine.errors import JournalWriteError
    from fixengine.orders.entry import OrderEntryHalted

    engine = Engine(config)  # session events are logged (fixengine.engine, INFO)
    engine.observe(lambda event: stop.set() if isinstance(event, OrderEntryHalted) else None)
    await engine.start()
    await stop.wait()
    logging.getLogger("fixengine").info("stopping: logging out")
    await engine.stop()
    if engine.halted is not None:
        raise JournalWriteError(f"stopped because order entry halted: {engine.halted}")


@cli.command("check-config")
@click.argument("config_path", type=click.Path(path_type=Path))
def check_config_cmd(config_path: Path) -> None:
    """Check an engine config: print OK, or every problem (exit code 1)."""
    from fixengine.config import check_config

    def check_embedded(path: Path) -> list:  # type: ignore[type-arg]
        return _simulator("config").check_embedded_config(path)

    problems = check_config(config_path, embedded_check=check_embedded)
    if not problems:
        click.echo(f"{config_path}: OK")
        return
    click.echo(f"{config_path}: {len(problems)} problem(s)")
    for p in problems:
        click.echo(f"  - {p}")
    sys.exit(1)


@cli.command()
@click.argument("private_key", type=click.Path(path_type=Path))
@click.option("--public-key", type=click.Path(path_type=Path), help="Default: PRIVATE_KEY with .pub.pem.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def keygen(private_key: Path, public_key: Path | None, force: bool) -> None:
    """Write a new 2048-bit RSA key pair (private key mode 0600) for a Kalshi API key."""
    from fixengine.kalshi.signing import write_keypair

    public_key = public_key or private_key.with_suffix(".pub.pem")
    write_keypair(private_key, public_key, overwrite=force)
    click.echo(f"private key: {private_key} (mode 0600)\npublic key:  {public_key}")
    click.echo("Upload the public key to Kalshi (Account & security -> API keys) to get its key id.")


@cli.command("reconcile")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Engine TOML config.")
@click.option("--session", "sessions", multiple=True, help="Only this session's account (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def reconcile_cmd(config_path: Path, sessions: tuple[str, ...], as_json: bool) -> None:
    """Prove the journaled book against Kalshi's REST API (engine stopped). Heals what it can
    explain (journaled), prints every discrepancy. Exit 0: clean; 1: discrepancies remain;
    2: could not reconcile."""
    from fixengine.config import load_config
    from fixengine.reconcile.runner import reconcile_offline
    from fixengine.reconcile.report import as_json_text, as_table

    try:
        results = asyncio.run(reconcile_offline(load_config(config_path), sessions))
    except FixEngineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(as_json_text(results) if as_json else as_table(results))
    sys.exit(0 if all(f.clean for f in results.values()) else 1)


@cli.command("status")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="The service's TOML config (its [admin] address).")
@click.option("--url", help="The service's admin URL instead, e.g. http://127.0.0.1:8280.")
@click.option("--json", "as_json", is_flag=True, help="Print the /status JSON instead of a table.")
def status_cmd(config_path: Path | None, url: str | None, as_json: bool) -> None:
    """Ask a running `fixengine serve` how it is: each Kalshi session and OMS client, with its
    state, sequence numbers, last message ages, live orders and last reject. Exit 0: ready;
    1: not ready (the reasons are printed); 2: the service does not answer."""
    import json

    import httpx

    from fixengine.admin.status import as_table
    from fixengine.config import load_config

    if (config_path is None) == (url is None):
        raise click.UsageError("give --config FILE or --url URL")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its one line per request is noise here
    if url is None:
        admin = load_config(config_path).admin
        url = f"http://{admin.host if admin.host not in ('0.0.0.0', '::') else '127.0.0.1'}:{admin.port}"
    try:
        doc = httpx.get(f"{url.rstrip('/')}/status", timeout=5).raise_for_status().json()
    except httpx.HTTPError as exc:
        click.echo(f"error: no status from {url}: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(doc, indent=2) if as_json else as_table(doc))
    sys.exit(0 if doc.get("ready") else 1)


def _decimal_option(ctx: click.Context, param: click.Parameter, value: str):  # type: ignore[no-untyped-def]
    """A price or quantity option as a Decimal (never a float): ``0.45`` stays 0.45."""
    from decimal import Decimal, InvalidOperation

    try:
        number = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise click.BadParameter(f"{value!r} must be a positive number")
    return number


@cli.command("oms-client")
@click.option("--host", default="127.0.0.1", show_default=True, help="The gateway's address.")
@click.option("--port", required=True, type=int, help="The gateway's OMS port.")
@click.option("--sender", required=True, help="Our SenderCompID (49).")
@click.option("--target", required=True, help="The TargetCompID (56) the gateway answers to.")
@click.option("--symbol", required=True, help="Market ticker (55) to trade.")
@click.option("--store", "store_dir", default="var/oms-client", show_default=True, type=click.Path(path_type=Path),
              help="QuickFIX FileStore: sequence numbers and sent messages survive restarts.")
@click.option("--price", default="0.45", show_default=True, callback=_decimal_option, help="Resting buy price (dollars of YES).")
@click.option("--cross-price", default="0.60", show_default=True, callback=_decimal_option,
              help="Price of the IOC buy that trades against resting sells.")
@click.option("--quantity", default="10", show_default=True, callback=_decimal_option, help="Contracts per order.")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds each step may wait for its answer.")
@click.option("--password-file", type=click.Path(path_type=Path),
              help="File holding the password to send in 554 on the Logon (readable by its owner only).")
@click.pass_context
def oms_client_cmd(ctx: click.Context, host: str, port: int, sender: str, target: str, symbol: str, store_dir: Path,
                   price, cross_price, quantity, timeout: float, password_file: Path | None) -> None:  # type: ignore[no-untyped-def]
    """A FIX 4.4 OMS against the gateway (fixengine serve): place a resting buy, amend it, cancel it,
    buy at --cross-price against resting sells, ask its status, log out. One line per report; exit 0
    when every step got its answer, 1 with the reason otherwise."""
    from fixengine.oms_client import run_demo
    from fixengine.secrets import read_secret

    password = read_secret(password_file, "password file") if password_file is not None else None
    if not ctx.obj["verbose"]:  # the demo prints its own story; log only what goes wrong
        logging.getLogger().setLevel(logging.WARNING)
    sys.exit(asyncio.run(run_demo(host=host, port=port, sender=sender, target=target, symbol=symbol, store_dir=store_dir,
                                  price=price, cross_price=cross_price, quantity=quantity, timeout=timeout,
                                  password=password)))


def run_command(command: click.Command) -> None:
    """Run a click command; a user's mistake (bad config, bad key ...) is one readable line, not a
    traceback. Shared by ``fixengine`` and ``fixengine-simulator``."""
    try:
        command(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FixEngineError as exc:  # ConfigError, KeyLoadError, LogonRefusedError ...
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def main() -> None:
    run_command(cli)
