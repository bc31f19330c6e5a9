"""A trigger's results page in real headless Chromium: a sales colleague opens it and reads the
table per variant and control, the difference and lift with their intervals written plainly,
"not enough data yet" for a variant below the minimum, and the chart per day."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, expect

from chat_server.triggers import stats
from tests.harness import ChatServer, create_operator, embedded_server, login
from tests.inbox_browser import browser, open_inbox  # noqa: F401  (the fixture)
from tests.inprocess import make_runtime
from tests.test_trigger_results import Row, seed

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    yield from embedded_server(tmp_path_factory, "trigger-results-browser")


def pp(fraction: float) -> str:
    return f"{fraction * 100:+.1f} pp"


async def test_sales_read_a_triggers_results_with_intervals_and_a_chart(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    rt, _ = await make_runtime(server.database_url)
    try:
        rows = ([Row("A", "sent", 0.2, ("delivered", "read"), goal=i < 30, revenue=12.5 if i < 30 else None) for i in range(150)]
                + [Row("B", "sent", 0.2, ("delivered",), goal=i < 1) for i in range(20)]
                + [Row("control", "control", 1.2, goal=i < 8) for i in range(120)]
                + [Row("A", "sent", 10) for _ in range(10)])  # outside the last 7 days
        trigger_id = await seed(rt, rows, "A", "B", name="Pricing page greeting")
    finally:
        await rt.db.dispose()
    email = f"sales-{uuid.uuid4().hex[:6]}@example.com"
    await create_operator(server, await login(server), email, role="sales")
    inbox = await open_inbox(browser, server, email=email, password="password-" + email)
    page = inbox.page
    await page.evaluate(f"location.hash = '#/triggers/{trigger_id}/results'")
    await expect(page.locator(".trigger-results-view h2")).to_have_text("Results: Pricing page greeting")
    a = page.locator("table.trigger-results tr[data-variant=A]")
    await expect(a.locator(".matched")).to_have_text("160")  # the last 30 days, the default
    await expect(a.locator(".sent")).to_have_text("160")
    # The last 7 days: the page asks again.
    await page.select_option(".trigger-results-view select[name=days]", "7")
    await expect(page.locator(".trigger-results-view select[name=days] option:checked")).to_have_text("Last 7 days")
    await expect(a.locator(".matched")).to_have_text("150")
    await expect(a.locator(".sent")).to_have_text("150")
    await expect(a.locator(".delivered")).to_have_text("150")
    await expect(a.locator(".goal")).to_have_text("30")
    await expect(a.locator(".conversion")).to_have_text("20.0%")
    await expect(a.locator(".revenue")).to_have_text("375")
    control = page.locator("table.trigger-results tr[data-variant=control]")
    await expect(control.locator("th")).to_have_text("Control (not sent)")
    await expect(control.locator(".matched")).to_have_text("120")
    await expect(control.locator(".conversion")).to_have_text("6.7%")
    # The comparison, written plainly with its interval.
    d = stats.compare(30, 150, 8, 120)
    assert d.difference.low and d.difference.high and d.lift.estimate and d.lift.low and d.lift.high
    effect = page.locator(".comparison li[data-variant=A]")
    await expect(effect.locator(".difference")).to_have_text(
        f"Difference in conversion: {pp(0.2 - 8 / 120)} (95 % CI {pp(d.difference.low)} … {pp(d.difference.high)})")
    await expect(effect.locator(".lift")).to_have_text(
        f"Lift: +{d.lift.estimate * 100:.0f} % (95 % CI +{d.lift.low * 100:.0f} % … +{d.lift.high * 100:.0f} %)")
    await expect(effect.locator(".verdict")).to_have_text("The message raised conversion.")
    await expect(page.locator(".comparison li[data-variant=B] .not-enough-data")).to_contain_text("not enough data yet")
    # The chart: a bar per group and day, with what it shows on hover.
    chart = page.locator("svg.trigger-chart")
    await expect(chart.locator("rect.sent")).to_have_count(3)
    titles = await chart.locator("rect title").all_text_contents()
    assert any(t.endswith("Variant A: 150 sent") for t in titles), titles
    assert any(t.endswith("Variant A: 30 reached the goal") for t in titles), titles
    assert any(t.endswith("Control (not sent): 8 reached the goal") for t in titles), titles
    assert inbox.js_errors() == []
    await inbox.close()

