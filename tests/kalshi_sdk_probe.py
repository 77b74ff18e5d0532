"""Run in a venv holding Kalshi's SDK (kalshi-python-async; tests/helpers/kalshi_sdk.py makes it):
make the SDK calls a plan names against a REST API and print, as JSON, what each parsed into. It
judges nothing: the test that runs it does.

The plan, on stdin: {"host": ".../trade-api/v2", "key_id": ..., "private_key_file": ...,
"calls": [{"name": ..., "method": <a KalshiClient method>, "kwargs": {...}}]}.
Printed: {name: {"model": "<module>.<class>", "body": <the model's fields, JSON>} or {"error": "..."}}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from kalshi_python_async import Configuration, KalshiClient


async def probe(plan: dict) -> dict[str, dict[str, object]]:
    config = Configuration(host=plan["host"])
    # KalshiClient signs every request (RSA-PSS) when the configuration carries these two.
    config.api_key_id = plan["key_id"]
    config.private_key_pem = Path(plan["private_key_file"]).read_text()
    client = KalshiClient(config)
    answers: dict[str, dict[str, object]] = {}
    try:
        for call in plan["calls"]:
            try:
                result = await getattr(client, call["method"])(**call["kwargs"])
            except Exception as exc:  # noqa: BLE001 - reported per call, judged by the test
                answers[call["name"]] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            model = type(result)
            answers[call["name"]] = {"model": f"{model.__module__}.{model.__qualname__}",
                                     "body": result.model_dump(mode="json", by_alias=True)}
    finally:
        await client.close()
    return answers


if __name__ == "__main__":
    json.dump(asyncio.run(probe(json.load(sys.stdin))), sys.stdout)
