"""Why can a session not connect? A TCP (and TLS) probe that names the reason.

QuickFIX's initiator retries a failed connect silently; when a session sends no Logon, the engine
probes the same address itself so the user reads "refused the connection" or "certificate not
trusted" instead of a bare timeout.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path


def client_tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """What QuickFIX's TLS initiator checks: the chain against the CA file, TLS 1.2+. (QuickFIX
    does not check the host name, so neither does the probe: it must report what QuickFIX sees.)"""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.check_hostname = False
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def probe(host: str, port: int, tls: bool, ca_file: Path | None, timeout: float = 5.0) -> str | None:
    """None if a TCP (and TLS) connection to host:port works, else the reason it does not."""
    where = f"{host}:{port}"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=client_tls_context(ca_file) if tls else None, server_hostname=host if tls else None
            ),
            timeout,
        )
    except ssl.SSLCertVerificationError as exc:
        return f"TLS certificate of {where} is not trusted: {exc.verify_message}"
    except ssl.SSLError as exc:
        return f"TLS handshake with {where} failed: {exc.reason or exc}"
    except ConnectionRefusedError:
        return f"{where} refused the connection (nothing listening there?)"
    except socket.gaierror as exc:
        return f"cannot resolve {host}: {exc.strerror}"
    except asyncio.TimeoutError:
        return f"no answer from {where} within {timeout:.0f}s"
    except OSError as exc:
        return f"cannot connect to {where}: {exc.strerror or exc}"
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass
    return None
