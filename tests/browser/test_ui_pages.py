"""The web view in headless chromium, against the demo project: every page loads, shows what
the state and the results hold, and the results search and filter work as a user clicks them.

Each test saves a screenshot under test-artifacts/screenshots/ (see conftest.screenshot).
"""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import BILLED_MODEL, CHANGED_KEY, FAILING, Demo, screenshot


def _navigated(driver: Any, fragment: str) -> None:
    """Wait until the page a click or a submit asked for is the one loaded (the old page's
    elements would otherwise still be found)."""
    WebDriverWait(driver, 30).until(
        lambda d: (
            fragment in d.current_url
            and d.execute_script("return document.readyState") == "complete"
        )
    )


def _texts(driver: Any, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def test_overview_lists_every_demo_resource_with_its_phase_results_and_cost(
    demo: Demo, browser: Any
) -> None:
    browser.get(demo.url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.overview tbody tr")
    names = [r.find_element(By.CSS_SELECTOR, "td a").text for r in rows]
    assert names == sorted(demo.state()["resources"])
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        assert cells[1].text == "synced"
        assert cells[2].text.startswith("batches/")
        assert cells[4].text.startswith("results/")
        assert cells[6].text.startswith("$")  # actual: the attempts' collected cost
    assert "No changes" in browser.find_element(By.TAG_NAME, "main").text
    screenshot(browser, "overview")


def test_resource_page_shows_manifest_attempts_and_why_each_was_created(
    demo: Demo, browser: Any
) -> None:
    browser.get(demo.url + "/resources/eval-summaries")
    attempts = browser.find_elements(
        By.XPATH, "//h2[.='Attempts']/following-sibling::table[1]//tbody/tr"
    )
    assert len(attempts) == 2
    why = [row.find_elements(By.TAG_NAME, "td")[4].text for row in attempts]
    assert why[0].startswith("first attempt")
    assert why[1].startswith("the manifest or its input changed")
    manifest = browser.find_element(By.CSS_SELECTOR, "pre.manifest").text
    assert "name: eval-summaries" in manifest and "team: evals" in manifest
    screenshot(browser, "resource")


def test_results_viewer_shows_prompt_answer_and_finds_a_request_by_key(
    demo: Demo, browser: Any
) -> None:
    browser.get(demo.url + "/resources/eval-summaries/results")
    keys = _texts(browser, ".result code.key")
    assert keys == ["eval-001", "eval-002", "eval-003", "eval-004"]
    first = browser.find_element(By.CSS_SELECTOR, ".result")
    assert first.find_element(By.CSS_SELECTOR, "pre.prompt").text.startswith("Summarise")
    box = browser.find_element(By.CSS_SELECTOR, "form.search input[type=search]")
    box.send_keys("eval-003")
    box.submit()
    _navigated(browser, "q=eval-003")
    assert _texts(browser, ".result code.key") == ["eval-003"]
    screenshot(browser, "results-search")


def test_results_viewer_filters_to_the_failed_requests(demo: Demo, browser: Any) -> None:
    failed = {
        name: record["results"].get("failed", 0)
        for name, record in demo.state()["resources"].items()
    }
    name = FAILING
    assert failed[name] > 0
    browser.get(demo.url + f"/resources/{name}/results")
    browser.find_element(By.CSS_SELECTOR, "input[name=failures]").click()
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    _navigated(browser, "failures=1")
    shown = browser.find_elements(By.CSS_SELECTOR, ".result")
    assert len(shown) == failed[name]
    assert all("failed" in r.get_attribute("class") for r in shown)
    assert all("error:" in r.text for r in shown)
    screenshot(browser, "results-failures")


def test_results_viewer_shows_image_results_inline(demo: Demo, browser: Any) -> None:
    browser.get(demo.url + "/resources/image-generation/results")
    images = browser.find_elements(By.CSS_SELECTOR, ".result img")
    assert images
    loaded = [browser.execute_script("return arguments[0].naturalWidth", i) for i in images]
    assert all(width > 0 for width in loaded)
    screenshot(browser, "results-images")


def test_diff_compares_one_answer_between_two_attempts(demo: Demo, browser: Any) -> None:
    browser.get(demo.url + f"/resources/eval-summaries/results?q={CHANGED_KEY}")
    browser.find_element(By.LINK_TEXT, "compare with attempt 1").click()
    _navigated(browser, "/diff")
    columns = browser.find_elements(By.CSS_SELECTOR, ".diff > div")
    assert [c.find_element(By.TAG_NAME, "h2").text for c in columns] == [
        "attempt 1 (its results at the service)",
        "attempt 2 (its results at the service)",
    ]
    answers = [c.find_element(By.CSS_SELECTOR, "pre.answer").text for c in columns]
    assert answers[0] != answers[1]
    assert browser.find_elements(By.CSS_SELECTOR, ".diff del")
    assert browser.find_elements(By.CSS_SELECTOR, ".diff ins")
    screenshot(browser, "results-diff")


def test_costs_page_charts_spend_by_model_and_by_label(demo: Demo, browser: Any) -> None:
    browser.get(demo.url + "/costs")
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 2
    legends = _texts(browser, ".legend")
    assert "gemini-3-flash-preview" in legends[0]
    assert BILLED_MODEL in legends[0], "spend stays under the model the results were billed on"
    assert "evals" in legends[1] and "(none)" in legends[1]
    collected = sum(
        1
        for record in demo.state()["resources"].values()
        for attempt in record["attempts"]
        if attempt.get("cost_usd") is not None
    )
    assert len(charts[0].find_elements(By.TAG_NAME, "circle")) == collected
    screenshot(browser, "costs")
