"""The status page (``GET /``) in a real headless browser (Debian's Chromium, driven by Playwright),
against a real engine, gateway, simulator and AdminServer: it loads, shows a Kalshi session that is
logged on, shows a reject once one is produced without being reloaded (it refreshes itself from
/status), and says when the service stops answering. No sleeps: every wait is Playwright's
``expect`` on the page, with a timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest
from playwright.async_api import Page, expect

from conformance.harness import session_to
from fixengine.admin.server import AdminServer
from simulator.config import MarketEntry
from tests.helpers.admin import served
from tests.helpers.browser import headless_chromium
from tests.helpers.gateway import TICKER, gateway_config, oms_logged_on, reconciled
from tests.helpers.sessions import unused_port

LOGON = 20_000  # ms: logon, then reconciliation releases the book
REFRESH = 10_000  # ms: the page polls every 2 s; a change shows within a few polls


@pytest.fixture
def config(tmp_path, make_key, start_simulator):  # type: ignore[no-untyped-def]
    """One Kalshi session (reconciled at logon) and one OMS client, ``desk``; the admin endpoint on a
    fixed free port, so that it can be started again where the page looks for it."""
    desk = make_key()
    sim, _ = start_simulator([desk.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0)
    return gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"), rest=reconciled(sim),
                          admin={"port": unused_port()})


class Browser:
    """A page in headless Chromium and the script errors it raised."""

    def __init__(self, page: Page):
        self.page = page
        self.script_errors: list[str] = []
        page.on("pageerror", lambda error: self.script_errors.append(str(error)))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with headless_chromium() as chromium:
        yield Browser(await chromium.new_page())


async def test_the_page_loads_and_shows_the_kalshi_session_logged_on(config, browser) -> None:
    page = browser.page
    async with served(config) as (engine, gateway, admin):
        answer = await page.goto(admin.url)
        assert answer is not None and answer.ok and "text/html" in answer.headers["content-type"]
        await expect(page.locator("h1")).to_have_text("fixengine serve")

        session = page.locator('#kalshi-sessions tr[data-session="desk-kalshi"]')
        await expect(session).to_have_attribute("data-state", "connected", timeout=LOGON)
        await expect(session.locator(".badge")).to_have_text("connected")
        await expect(session).to_contain_text("KalshiNR")
        await expect(page.locator("#service-state")).to_have_attribute("data-state", "connected")
        await expect(page.locator("#readiness")).to_have_attribute("data-ready", "true", timeout=REFRESH)
        await expect(page.locator("#not-ready")).to_be_hidden()
        await expect(page.locator("#offline")).to_be_hidden()

        client = page.locator('#oms-clients tr[data-client="desk"]')  # configured, never logged on
        await expect(client).to_have_attribute("data-state", "disconnected")
        await expect(client).to_contain_text("OMS1 → FIXENGINE")
        reconciliation = page.locator('#reconciliations tr[data-session="desk-kalshi"]').first
        await expect(reconciliation).to_have_attribute("data-clean", "true", timeout=REFRESH)
    assert browser.script_errors == []


async def test_a_reject_appears_by_itself_with_its_clordid_and_text_shown_as_text(config, browser, tmp_path) -> None:
    page = browser.page
    async with served(config) as (engine, gateway, admin):
        await page.goto(admin.url)
        await expect(page.locator('#kalshi-sessions tr[data-session="desk-kalshi"]')).to_have_attribute(
            "data-state", "connected", timeout=LOGON)
        await page.evaluate("window.loadedOnce = true")  # gone if the page were reloaded
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))

        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            await expect(page.locator('#oms-clients tr[data-client="desk"]')).to_have_attribute(
                "data-state", "connected", timeout=REFRESH)
            placed = oms.new_order(TICKER, "1", D(5), D("0.40"))
            await oms.wait_for(lambda r: r.get(11) == placed and r.get(150) == "0")
            # Kalshi refuses the ticker (MARKET_NOT_FOUND); the ClOrdID is markup, which the page must show as text
            refused = oms.new_order("NOT-A-TICKER", "1", D(5), D("0.40"), cl_ord_id="<b>refused</b>")
            report = await oms.wait_for(lambda r: r.get(11) == refused and r.get(150) == "8")
            assert report.get(58) == "MARKET_NOT_FOUND"

            reject = page.locator("#rejects tbody tr").first  # newest first
            await expect(reject).to_have_attribute("data-cl-ord-id", refused, timeout=REFRESH)
            await expect(reject).to_contain_text("MARKET_NOT_FOUND")
            await expect(reject).to_contain_text(refused)  # the ClOrdID as typed, tags and all
            await expect(reject).to_contain_text("desk")
            assert await page.locator("#rejects b").count() == 0  # not parsed as HTML
            last_reject = page.locator('#oms-clients tr[data-client="desk"] td.last-reject')
            await expect(last_reject).to_contain_text("MARKET_NOT_FOUND")
            await expect(last_reject).to_contain_text(refused)
            live = page.locator('#orders tr[data-client="desk"]')  # the live order, by its OMS client
            await expect(live).to_have_count(1)
            await expect(live).to_contain_text(TICKER)

        assert await page.evaluate("window.loadedOnce") is True and navigations == []
    assert browser.script_errors == []


async def test_a_silent_service_shows_the_banner_over_the_last_data_greyed(config, browser) -> None:
    page = browser.page
    async with served(config) as (engine, gateway, admin):
        await page.goto(admin.url)
        session = page.locator('#kalshi-sessions tr[data-session="desk-kalshi"]')
        await expect(session).to_have_attribute("data-state", "connected", timeout=LOGON)
        banner, content = page.locator("#offline"), page.locator("#content")
        await expect(banner).to_be_hidden()
        await expect(content).to_have_attribute("data-stale", "false")

        await admin.stop()  # the HTTP server goes; the engine goes on
        await expect(banner).to_be_visible(timeout=REFRESH)
        await expect(banner).to_contain_text("The service does not answer")
        await expect(content).to_have_attribute("data-stale", "true")
        assert await content.evaluate("node => getComputedStyle(node).opacity") == "0.45"  # greyed
        await expect(session).to_have_attribute("data-state", "connected")  # the last data, kept
        await expect(page.locator("#updated")).to_have_text("no answer")

        again = AdminServer(config, engine, gateway)  # the same port: the page's next poll finds it
        assert await again.start() == admin.url
        try:
            await expect(banner).to_be_hidden(timeout=REFRESH)
            await expect(content).to_have_attribute("data-stale", "false")
        finally:
            await again.stop()
    assert browser.script_errors == []
