"""`tfrnn report` (tfrnn.report): the page's structure (sections, inlined images, no network, the
errors' attributions, evaluations), the command's happy path and bad input, and the page and an
`explain --html` page in a real browser (headless Chromium through Selenium) at phone and laptop
sizes."""

import json
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner
from tfrnn_cli.main import cli

from tests.cli.test_cli import assert_one_line_error
from tests.fixtures import copy_run
from tfrnn.report import most_confident_errors, write_report

SECTIONS = ["config", "data", "curves", "confusion", "per-class", "errors"]
EVALUATION = {"data": "reviews.csv", "count": 12, "accuracy": 0.75, "macro_f1": 0.7321}


class Page(HTMLParser):
    """What the tests look at in a page: section ids, image sources, every URL-valued attribute,
    the sections each explanation fragment sits in, the viewport and style tags."""

    def __init__(self, text):
        super().__init__()
        self.sections, self.images, self.urls, self.fragments, self.tags = [], [], [], [], []
        self.open_sections = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "section":
            if attrs.get("id"):
                self.sections.append(attrs["id"])
            self.open_sections.append(attrs.get("id"))
            if "tfrnn-explanation" in attrs.get("class", ""):
                self.fragments.append([s for s in self.open_sections if s])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        self.urls += [attrs[key] for key in ("src", "href", "action", "data") if attrs.get(key)]

    def handle_endtag(self, tag):
        if tag == "section":
            self.open_sections.pop()


@pytest.fixture(scope="module")
def report_run(tiny_run, tmp_path_factory):
    """A copy of the tiny run with a hand-written evaluation, and its report."""
    run_dir = copy_run(tiny_run.run_dir, tmp_path_factory.mktemp("report"))
    (run_dir / "evaluations").mkdir(exist_ok=True)
    (run_dir / "evaluations" / "reviews.json").write_text(json.dumps(EVALUATION), encoding="utf-8")
    lines = []
    path = write_report(run_dir, log=lines.append)
    assert lines == [f"report: {path}"] and path == run_dir / "report.html"
    return run_dir


def test_report_has_every_section_and_needs_no_network(report_run):
    text = (report_run / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert page.sections == [*SECTIONS, "evaluations"]
    assert len(page.images) == 2 and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert all(url.startswith(("data:", "#")) for url in page.urls), page.urls
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in page.tags
    assert "units: 8" in text  # the config, as written


def test_report_errors_carry_attributions_and_evaluations_are_listed(report_run):
    text = (report_run / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    metrics = json.loads((report_run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["accuracy"] < 1  # the tiny run makes errors
    assert 1 <= len(page.fragments) <= 5 and all(sections == ["errors"] for sections in page.fragments)
    errors = text.split('id="errors"')[1].split('id="evaluations"')[0]
    assert errors.count('class="error-meta"') == len(page.fragments)
    assert "data-attribution=" in errors and "integrated gradients (50 steps" in errors
    evaluations = text.split('id="evaluations"')[1]
    assert "reviews" in evaluations and "reviews.csv" in evaluations and "0.7321" in evaluations


def test_most_confident_errors_are_the_surest_wrong_predictions():
    labels = np.array([0, 1, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.8, 0.2]])
    assert most_confident_errors(labels, probabilities) == [1, 4, 3]  # ties: the earlier first
    assert most_confident_errors(labels, probabilities, count=1) == [1]
    assert most_confident_errors(labels[:1], probabilities[:1]) == []


def test_validation_errors_are_those_of_the_split_training_held_out(tmp_path):
    """Without a test split the report re-splits the file as training did (its seed): the
    validation split it explains is the one in metrics.json."""
    from tests.fixtures import quiet, tiny_config
    from tfrnn.training.train import train

    rows = ["text,label"] + [
        f"{['good fine film', 'bad dull plot'][i % 2]} number {i % 7},{'ab'[i % 3 == 0]}" for i in range(90)
    ]
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    overrides = ("model.kind=feedforward", "data.source=file", f"data.path={tmp_path / 'reviews.csv'}")
    overrides += ("data.validation_split=0.3", "data.split_seed=7", "train.epochs=1")
    result = train(tiny_config(tmp_path / "runs", "file", *overrides), log=quiet)
    text = write_report(result.run_dir, log=quiet).read_text(encoding="utf-8")
    validation = result.metrics["validation"]
    wrong = round((1 - validation["accuracy"]) * validation["count"])
    assert wrong > 0 and f"{wrong} of {validation['count']} validation examples" in text
    assert "<h3>validation</h3>" in text and "<h3>test</h3>" not in text


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_writes_the_report_and_refuses_bad_runs(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run.run_dir, tmp_path)
    shutil.rmtree(run_dir / "evaluations", ignore_errors=True)
    (run_dir / "report.html").unlink(missing_ok=True)
    result = run("report", run_dir)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"report: {run_dir / 'report.html'}")
    page = Page((run_dir / "report.html").read_text(encoding="utf-8"))
    assert page.sections == SECTIONS  # no evaluations: no section
    assert_one_line_error(run("report", tmp_path / "nowhere"), "not found")
    (run_dir / "metrics.json").unlink()
    (run_dir / "report.html").unlink()
    assert_one_line_error(run("report", run_dir), "unfinished", "--resume")
    assert not (run_dir / "report.html").exists()


# ------------------------------------------------------------------------- a real browser

PHONE, LAPTOP = (390, 844), (1366, 900)
INSTALL = "apt-get install chromium chromium-driver (and pip install selenium)"


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Selenium, logging the console; skipped, saying what to install,
    when Chromium, its driver or Selenium is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip(f"no Chromium or no chromedriver on PATH: {INSTALL}")
    webdriver = pytest.importorskip("selenium.webdriver", reason=f"no Selenium: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    yield driver
    driver.quit()


def fetched(driver, page_url):
    """The URLs the browser requested since the last call (Chrome's performance log), other than
    the page itself and data: URIs: a self-contained page requests nothing else."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return [url for url in urls if url != page_url and not url.startswith("data:")]


def check_in_browser(driver, page, selectors, screenshots):
    """Opens `page` at each window size: no console errors, every image loaded, nothing fetched,
    no sideways scrolling, the elements of each selector visible; a screenshot of each size."""
    from selenium.webdriver.common.by import By

    for name, (width, height) in (("phone", PHONE), ("laptop", LAPTOP)):
        driver.set_window_size(width, height)
        driver.get(page.as_uri())
        assert fetched(driver, page.as_uri()) == []
        errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors
        assert driver.execute_script("return [...document.images].filter(i => !(i.naturalWidth > 0)).length") == 0
        for selector in selectors:
            elements = driver.find_elements(By.CSS_SELECTOR, selector)
            assert elements, selector
            for element in elements:
                driver.execute_script("arguments[0].scrollIntoView()", element)
                assert element.is_displayed(), selector
        body_width = driver.execute_script("return document.body.scrollWidth")
        assert body_width <= driver.execute_script("return window.innerWidth"), (name, body_width)  # no sideways page
        driver.execute_script("window.scrollTo(0, 0)")
        shot = screenshots / f"{page.stem}-{name}.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 0


def test_report_and_explain_pages_in_a_real_browser(browser, report_run, tiny_run, tmp_path):
    selectors = ["h1", *(f"section#{key} h2" for key in [*SECTIONS, "evaluations"])]
    selectors += ["#config pre", "#curves img", "#confusion img", "#per-class table", "#errors .tfrnn-tokens span"]
    check_in_browser(browser, report_run / "report.html", selectors, tmp_path)
    explained = tmp_path / "explained.html"
    texts = ["A wonderful, moving film.", "Dull and far too long. " * 10]
    result = run("explain", tiny_run.run_dir, *texts, "--steps", "10", "--html", explained)
    assert result.exit_code == 0, result.output
    check_in_browser(browser, explained, ["h1", ".tfrnn-legend", ".tfrnn-summary", ".tfrnn-tokens span"], tmp_path)
    assert len(list(tmp_path.glob("*.png"))) == 4
