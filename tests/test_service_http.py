"""The service's HTTP endpoint over a real socket, beside a real engine, gateway and simulator:
health and readiness with their reasons, /status per session and client, worst-of aggregation,
admin actions behind a bearer token (each audited), ``fixengine status``."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D
from typing import Any

import pytest
from click.testing import CliRunner

from conformance.harness import session_to
from fixengine.cli import cli
from simulator.config import MarketEntry
from tests.helpers.admin import TOKEN, admin_config, served_over_http, wait_ready
from tests.helpers.gateway import TICKER, gateway_config, oms_logged_on, wait_until

@pytest.fixture
def market(make_key, start_simulator):
    desk, other = make_key(), make_key()
    sim, _ = start_simulator([desk.account(), other.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0)
    return sim, desk, other


def config_for(tmp_path, market, **settings: Any):  # type: ignore[no-untyped-def]
    return admin_config(tmp_path, *market, **settings)


def kalshi_row(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return by_name(doc["kalshi_sessions"])[name]


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


async def test_health_readiness_and_status_say_how_each_session_is(tmp_path, market) -> None:
    config = config_for(tmp_path, market)
    async with served_over_http(config) as (engine, gateway, admin, http):
        live = await http.get("/livez")
        assert live.status_code == 200 and live.json()["checks"]["journal"]["ok"]
        await wait_ready(http)
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            first = oms.new_order(TICKER, "1", D(5), D("0.40"))
            await oms.wait_for(lambda r: r.get(11) == first and r.get(150) == "0")
            refused = oms.new_order("NOT-A-TICKER", "1", D(5), D("0.40"))
            await oms.wait_for(lambda r: r.get(11) == refused and r.get(150) == "8")

            doc = (await http.get("/status")).json()
            assert (doc["state"], doc["ready"], doc["not_ready"]) == ("connected", True, [])
            kalshi = by_name(doc["kalshi_sessions"])
            assert kalshi["desk-kalshi"]["state"] == "connected" and kalshi["desk-kalshi"]["next_out_seq"] > 1
            assert kalshi["desk-kalshi"]["last_in_age"] is not None and kalshi["desk-kalshi"]["last_in_age"] < 30
            clients = by_name(doc["oms_clients"])
            desk = clients["desk"]
            assert (desk["state"], desk["orders_live"]) == ("connected", 1)
            assert desk["last_reject"]["cl_ord_id"] == refused and desk["last_reject"]["text"] == "MARKET_NOT_FOUND"
            assert clients["desk-b"]["state"] == "disconnected"
            assert doc["oms_state"] == "disconnected"  # worst of the clients: desk-b is not connected
            assert [(o["client"], o["oms_cl_ord_id"]) for o in doc["orders"] if o["session"] == "desk-kalshi"] == [("desk", first)]
            assert doc["rejects"][0]["cl_ord_id"] == refused
            assert any(r["session"] == "desk-kalshi" and r["clean"] for r in doc["reconciliations"])


async def test_one_session_down_makes_the_service_not_ready_worst_of(tmp_path, market) -> None:
    config = config_for(tmp_path, market)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with served_over_http(config) as (engine, gateway, admin, http):
        await wait_ready(http)
        assert (await http.post("/admin/kalshi/other/disable", headers=auth)).status_code == 200
        await wait_until(lambda: engine.health()[1].phase == "disabled", timeout=10)  # its Logout answered
        doc = (await http.get("/status")).json()
        states = {s["name"]: s["state"] for s in doc["kalshi_sessions"]}
        assert states == {"desk-kalshi": "connected", "other": "stopped"}
        assert doc["state"] == "stopped"  # worst-of, whichever session reported last
        answer = await http.get("/readyz")
        assert answer.status_code == 503 and any("other is not logged on (disabled" in r for r in answer.json()["not_ready"])
        assert not engine.is_logged_on("other") and kalshi_row(doc, "other")["reconnect_at"] is None  # stays down

        assert (await http.post("/admin/kalshi/other/enable", headers=auth)).status_code == 200
        await wait_ready(http)
        assert {s["state"] for s in (await http.get("/status")).json()["kalshi_sessions"]} == {"connected"}


async def test_admin_actions_need_the_token_are_post_only_and_audited(tmp_path, market) -> None:
    config = config_for(tmp_path, market)
    async with served_over_http(config) as (engine, gateway, admin, http):
        await wait_ready(http)
        assert (await http.post("/admin/drain")).status_code == 401
        wrong = await http.post("/admin/drain", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/admin/drain", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 405
        assert not gateway.draining

        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.post("/admin/drain", headers=auth)).status_code == 200
        assert gateway.draining
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503 and "stopping" in not_ready.json()["not_ready"][0]
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            refused = oms.new_order(TICKER, "1", D(5), D("0.40"))
            report = await oms.wait_for(lambda r: r.get(11) == refused and r.get(150) == "8")
            assert "stopping" in report.get(58)
            assert (await http.post("/admin/resume", headers=auth)).status_code == 200
            placed = oms.new_order(TICKER, "1", D(5), D("0.40"))
            await oms.wait_for(lambda r: r.get(11) == placed and r.get(150) == "0")

            lookup = await http.get(f"/admin/cl-ord-id/desk/{placed}", headers=auth)
            assert lookup.status_code == 200
            found = lookup.json()
            assert (found["oms_cl_ord_id"], found["status"], found["ticker"]) == (placed, "new", TICKER)
            assert found["kalshi_cl_ord_id"] and found["kalshi_cl_ord_id"] != placed
            assert (await http.get(f"/admin/cl-ord-id/desk/{placed}")).status_code == 401
            assert (await http.get("/admin/cl-ord-id/desk/never-sent", headers=auth)).status_code == 404

        assert (await http.post("/admin/kalshi/nobody/disable", headers=auth)).status_code == 409
        assert (await http.post("/admin/kalshi/other/explode", headers=auth)).status_code == 404

    audit = [json.loads(line) for line in (config.data_dir / "admin-audit.log").read_text().splitlines()]
    outcomes = [(a["action"], a["outcome"].split(" ")[0]) for a in audit]
    assert outcomes[:2] == [("POST /admin/drain", "401"), ("POST /admin/drain", "401")]
    assert ("drain", "done") in outcomes and ("resume", "done") in outcomes
    assert (f"look up desk {placed}", "found") in outcomes and ("GET /admin/cl-ord-id/desk/" + placed, "401") in outcomes
    assert ("kalshi nobody disable", "refused:") in outcomes
    assert all(a["from"] == "127.0.0.1" and a["time"] for a in audit)
    assert TOKEN not in (config.data_dir / "admin-audit.log").read_text()


async def test_without_a_token_file_every_admin_action_is_refused(tmp_path, market) -> None:
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"))
    async with served_over_http(config) as (engine, gateway, admin, http):
        answer = await http.post("/admin/drain", headers={"Authorization": "Bearer anything"})
        assert answer.status_code == 401 and "token_file" in answer.json()["detail"]
        assert not gateway.draining


async def test_an_operator_disables_and_enables_an_oms_client(tmp_path, market) -> None:
    config = config_for(tmp_path, market)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with served_over_http(config) as (engine, gateway, admin, http):
        await wait_ready(http)
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            assert (await http.post("/admin/oms/desk/disable", headers=auth)).status_code == 200
            await wait_until(lambda: not gateway.is_logged_on("desk"), timeout=10)
            with pytest.raises(TimeoutError):  # its Logons are refused while disabled
                await oms.wait_logged_on(timeout=3)
            assert by_name((await http.get("/status")).json()["oms_clients"])["desk"]["state"] == "disconnected"
            assert (await http.post("/admin/oms/desk/enable", headers=auth)).status_code == 200
            await oms.wait_logged_on(timeout=15)

        async with oms_logged_on(config, "desk-b", tmp_path / "oms-b") as oms_b:
            assert (await http.post("/admin/oms/desk-b/logout", headers=auth)).status_code == 200
            await wait_until(lambda: not gateway.is_logged_on("desk-b"), timeout=10)
            await oms_b.wait_logged_on(timeout=15)  # a logout, not a ban: it comes back


def test_fixengine_status_prints_a_table_and_exits_by_readiness(tmp_path, market) -> None:
    config = config_for(tmp_path, market)

    async def run() -> tuple[Any, Any]:
        async with served_over_http(config) as (engine, gateway, admin, http):
            await wait_ready(http)
            ok = await asyncio.to_thread(CliRunner().invoke, cli, ["status", "--url", admin.url])
            await http.post("/admin/drain", headers={"Authorization": f"Bearer {TOKEN}"})
            drained = await asyncio.to_thread(CliRunner().invoke, cli, ["status", "--url", admin.url])
            return ok, drained

    ok, drained = asyncio.run(run())
    assert ok.exit_code == 0, ok.output
    assert "service: connected" in ok.output and "desk-kalshi" in ok.output and "desk-b" in ok.output
    assert drained.exit_code == 1 and "not ready: the service is stopping" in drained.output
    gone = CliRunner().invoke(cli, ["status", "--url", "http://127.0.0.1:9"])
    assert gone.exit_code == 2 and "no status from" in gone.output
