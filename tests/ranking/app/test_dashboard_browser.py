"""The /ui dashboard in a real headless browser (Debian's chromium driven by Playwright) against
the real service: ``marginrank serve --events DIR`` on a free loopback port, fed seeded traffic
over HTTP (searches, then outcome events posted to /events). The figures the page shows must
be those of the JSON readout, the preview must rank what the service ranks, and a screenshot is
kept in ``test-artifacts/dashboard.png``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from clv.segments import load_customers
from objectives.config import dump_config, parse_config
from ranking.experiments.events import event_files, load_events
from tests.events_support import Server, experiment_config, send_traffic, shared_bundle, wait_until

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACT = ROOT / "test-artifacts" / "dashboard.png"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RATES = {"ctr", "add_to_cart_rate", "conversion", "return_rate"}

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason=f"{CHROMIUM} is absent (.ci/run installs Debian's "
                                       "chromium: apt-get install chromium)")


@pytest.fixture(scope="module")
def served(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service with an experiment running and three hundred customers' traffic logged."""
    bundle = shared_bundle(small_world, tmp_path_factory)
    work = tmp_path_factory.mktemp("dashboard")
    config = experiment_config(bundle, work / "weights.yaml")
    events = work / "events"
    with Server(bundle, config, events, work / "server.log") as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        customers = [str(c) for c in load_customers(bundle / "customers.npz")[0][:300]]
        queries = pd.read_csv(small_world / "judgments.csv")["query"].drop_duplicates()
        traffic = send_traffic(http, customers, queries.tolist(),
                               pd.read_csv(small_world / "catalog.csv"))
        assert sum(a["accepted"] for a in traffic["answers"]) == len(traffic["events"])
        wanted = set(traffic["requests"])
        wait_until(lambda: event_files(events, "impressions") and wanted <= set(
            load_events(events).impressions.column("request_id").to_pylist()),
            "every search in a complete impression file")
        server.events = events
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shown(value: float | None, metric: str) -> str:
    """What the page prints for a readout figure (dashboard.js ``fmt``)."""
    if value is None:
        return "n/a"
    return f"{100 * value:.2f}%" if metric in RATES else f"{value:.3f}"


def same_figure(text: str, value: float | None, metric: str) -> bool:
    """The printed figure is the JSON value rounded to the digits shown (half a unit of the
    last digit; JavaScript and Python may break an exact tie differently)."""
    if value is None:
        return text == "n/a"
    number = float(text.rstrip("%").replace(",", ""))
    scale, digits = (100, 2) if metric in RATES else (1, 3)
    return math.isclose(number, scale * value, abs_tol=0.5 * 10**-digits + 1e-12)


def cell(page: Any, selector: str) -> tuple[str, str]:
    node = page.locator(selector)
    assert node.count() == 1, selector
    return node.inner_text().strip(), node.get_attribute("data-value")


def test_the_page_shows_the_json_readout_and_previews_weights(served: Server,
                                                              browser: Any) -> None:
    with httpx.Client(base_url=served.url, timeout=60) as http:
        body = http.get("/ui/readout.json").json()
    readout = body["readout"]
    assert readout is not None, body
    assert {a["arm"] for a in readout["arms"]} == {"control", "margin_push", "(none)"}
    assert readout["control"] == "control" and body["experiment"] == "margin_push"

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(served.url) else outside.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(served.url + "/ui")
        page.wait_for_selector("body[data-loaded=true]", timeout=60_000)
        check_readout(page, body)
        check_preview(page, served, served.events)
        ARTIFACT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACT), full_page=True)
        print(f"\ndashboard screenshot: {ARTIFACT}")
    finally:
        page.close()
    assert outside == [] and errors == []  # every asset from the service itself; no JS error


def check_readout(page: Any, body: dict[str, Any]) -> None:
    readout = body["readout"]
    for arm in readout["arms"]:
        name = arm["arm"]
        for field in ("customers", "searches", "clicks"):
            text, value = cell(page, f'#arms td[data-arm="{name}"][data-field="{field}"]')
            assert int(value) == arm[field] and text == f"{arm[field]:,}"
        for metric, estimate in arm["metrics"].items():
            text, value = cell(page, f'#arms td[data-arm="{name}"][data-metric="{metric}"]')
            expected = estimate["value"]
            assert (value == "null") if expected is None else float(value) == expected
            assert same_figure(text, expected, metric), (name, metric, text, expected)
    lifts = 0
    for comparison in readout["comparisons"]:
        arm = comparison["arm"]
        for metric, lift in comparison["lifts"].items():
            where = f'#lifts td[data-arm="{arm}"][data-metric="{metric}"]'
            text, value = cell(page, where + '[data-field="lift"]')
            if lift["lift"] is None:
                assert text == "n/a"
            else:
                assert float(value) == lift["lift"]
                assert math.isclose(float(text.rstrip("%")), 100 * lift["lift"], abs_tol=0.005)
            interval = page.locator(where + '[data-field="interval"]')
            if lift["lift_low"] is not None:
                assert float(interval.get_attribute("data-low")) == lift["lift_low"]
                assert float(interval.get_attribute("data-high")) == lift["lift_high"]
            verdict = comparison["verdicts"].get(metric)
            text, _ = cell(page, where + '[data-field="verdict"]')
            assert text == (verdict["status"] if verdict else "")
            lifts += 1
    assert page.locator("#lifts tbody tr").count() == lifts > 0
    flags = page.locator("#flags li")
    assert flags.count() == len(body["flags"]) >= 1 + 2 * len(readout["comparisons"])
    for i, flag in enumerate(body["flags"]):
        assert flags.nth(i).get_attribute("data-level") == flag["level"]
        assert flags.nth(i).inner_text().strip() == flag["text"]
    assert page.locator("#plot").evaluate("img => img.complete && img.naturalWidth > 0")
    summary = page.locator("#readout-summary").inner_text()
    assert readout["first_day"] in summary and f"δ {readout['delta']}" in summary


def check_preview(page: Any, server: Server, events: Path) -> None:
    """Propose a stronger margin weight for one query; the page's two sides must be what the
    preview API and the served search return, term by term."""
    current = parse_config(page.input_value("#preview-yaml"))  # the weights serving now
    weights = current.weights.model_copy(update={"margin": current.weights.margin + 1.0})
    proposed = dump_config(current.model_copy(update={"weights": weights}))
    # A customer of the control arm in the middle segment, as the impression log recorded
    # them: the default margin weight (which the proposal changes) applies to them, where the
    # margin_push arm and the top segment override it.
    rows = load_events(events).impressions.to_pylist()
    customer = next(r["customer_id"] for r in rows
                    if r["arm"] == "control" and r["segment"] == "middle")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        request = {"query": "cordless drill", "customer_id": customer, "k": 10,
                   "weights_yaml": proposed}
        answer = http.post("/ui/preview", json=request).json()
        search = http.get("/search", params={"q": "cordless drill", "customer_id": customer,
                                             "k": 10, "explain": "true"}).json()["results"]
    page.fill("#preview-query", "cordless drill")
    page.fill("#preview-customer", customer)
    page.fill("#preview-yaml", proposed)
    page.click("#preview-run")
    page.wait_for_selector("#preview-result:not([hidden])", timeout=60_000)
    assert [(r["product_id"], r["contributions"]) for r in answer["current"]["results"]] == [
        (r["product_id"], r["contributions"]) for r in search]  # current = what is served
    assert [r["product_id"] for r in answer["current"]["results"]] != [
        r["product_id"] for r in answer["proposed"]["results"]]  # the proposal moves products
    for side in ("current", "proposed"):
        rows = page.locator(f"#{side}-table tbody tr")
        results = answer[side]["results"]
        assert rows.count() == len(results) > 0
        for i, result in enumerate(results):
            row = rows.nth(i)
            assert row.get_attribute("data-product") == result["product_id"]
            for term, value in result["contributions"].items():
                shown_value = row.locator(f'td[data-term="{term}"]').get_attribute("data-value")
                assert float(shown_value) == value
            if side == "proposed":
                moved = row.locator('td[data-field="moved"]').get_attribute("data-value")
                assert moved == ("new" if result["moved"] is None else str(result["moved"]))
    # An invalid proposal is refused with the line and key, and the old result hidden.
    page.fill("#preview-yaml", proposed.replace("weights:\n  margin:", "weights:\n  marign:", 1))
    page.click("#preview-run")
    page.wait_for_selector("#preview-errors p", timeout=60_000)
    assert "marign" in page.locator("#preview-errors").inner_text()
    assert page.locator("#preview-result").is_hidden()
    page.fill("#preview-yaml", proposed)
    page.click("#preview-run")
    page.wait_for_selector("#preview-result:not([hidden])", timeout=60_000)
