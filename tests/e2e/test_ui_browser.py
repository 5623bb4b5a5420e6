"""Browser tests: the real Streamlit app on a real sample KB, driven by Playwright + Debian's Chromium (headless).

The KB comes from DRUGRAG_TEST_KB_HOME, else the session fixture `kb_home` (tests/conftest.py), else the real CLI
(`drugrag ingest --limit 60 --json`). The app gets its own copy (the embedded stores allow one process each).
Each test saves a screenshot to tests/artifacts/ui/<name>.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ui_helpers import ROOT, api_server, chromium_path, launch_browser, streamlit_app

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ARTIFACTS = ROOT / "tests" / "artifacts" / "ui"
MODEL_DIR = Path(os.environ.get("DRUGRAG_EMBEDDING_MODEL", ROOT / ".drugrag" / "models" / "multilingual-e5-small"))
QUESTION = "What is naproxen used for?"  # naproxen is among the first 60 openFDA labels
MAJOR_PAIR = ("Warfarin", "Metronidazole")  # DDInter: Warfarin + Metronidazole, Major
NO_RECORD_DRUG = "Diphenhydramine"  # DDInter has no pair of it with either drug above
SLOW = 90_000  # ms: the first question loads the embedding model
FAST = 20_000


def _copy_kb(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.lock", ".drugrag.lock"))
    return dst


def _cli_ingest(home: Path) -> Path:
    exe = Path(sys.executable).with_name("drugrag")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "rag.apps.cli"]
    env = {**os.environ, "DRUGRAG_HOME": str(home), "DRUGRAG_EMBEDDING_MODEL": str(MODEL_DIR)}
    res = subprocess.run([*cmd, "ingest", "--limit", "60", "--json"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    if res.returncode != 0:
        pytest.fail(f"drugrag ingest failed ({res.returncode}): {res.stderr[-2000:]}")
    json.loads(res.stdout.strip().splitlines()[-1])
    return home


@pytest.fixture(scope="session")
def kb_source(request, tmp_path_factory) -> Path:
    """A built sample KB (never opened by the app itself: it gets copies)."""
    if env := os.environ.get("DRUGRAG_TEST_KB_HOME"):
        return Path(env)
    try:
        return Path(request.getfixturevalue("kb_home"))
    except pytest.FixtureLookupError:
        return _cli_ingest(tmp_path_factory.mktemp("ui-kb-built"))


@pytest.fixture(scope="session")
def app_url(kb_source, tmp_path_factory) -> Iterator[str]:
    home = _copy_kb(kb_source, tmp_path_factory.mktemp("ui-app") / "home")
    env = {"DRUGRAG_HOME": str(home), "DRUGRAG_EMBEDDING_MODEL": str(MODEL_DIR), "DRUGRAG_UI_BACKEND": "inprocess"}
    with streamlit_app(env, ARTIFACTS / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="session")
def api_url(kb_source, tmp_path_factory) -> Iterator[str]:
    """The JSON API (`drugrag serve`) on another copy of the KB: the reference answers, and the http backend."""
    home = _copy_kb(kb_source, tmp_path_factory.mktemp("ui-api") / "home")
    env = {"DRUGRAG_HOME": str(home), "DRUGRAG_EMBEDDING_MODEL": str(MODEL_DIR)}
    with api_server(env, ARTIFACTS / "api.log") as url:
        yield url


@pytest.fixture(scope="session")
def reference_answer(api_url):
    """The service's own answer to QUESTION: what the UI must show and highlight."""
    from rag.answer.schema import Answer

    r = httpx.post(f"{api_url}/v1/ask", json={"question": QUESTION}, timeout=300)
    r.raise_for_status()
    ans = Answer.model_validate(r.json())
    assert ans.status == "answered" and ans.citations, ans.model_dump_json(indent=1)
    return ans


@pytest.fixture(scope="module")
def chromium():
    # module scope: Playwright's sync API keeps an asyncio loop running in the main thread until it stops, and
    # every later test that calls asyncio.run() (the API gate, the openai and mcp clients) would fail
    if not chromium_path():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium); never `playwright install`")
    with playwright_api.sync_playwright() as p:
        browser = launch_browser(p)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request):
    ctx = chromium.new_context(viewport={"width": 1400, "height": 1500})
    pg = ctx.new_page()
    failed_before = request.session.testsfailed
    yield pg
    if request.session.testsfailed > failed_before:  # keep what the browser showed when the test failed
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failed.png"))
    ctx.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def assert_no_traceback(page) -> None:
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and 'File "' not in body, body[-2000:]


def ask(page, url: str, question: str) -> None:
    page.goto(url)
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_editable(timeout=FAST)
    box.fill(question)
    box.press("Enter")


# -- tests ---------------------------------------------------------------------------------------------------------
def test_ask_shows_cited_answer(page, app_url, reference_answer):
    ask(page, app_url, QUESTION)
    expect(page.locator(".dr-status-answered")).to_have_text("Answered", timeout=SLOW)
    expect(page.locator(".dr-cite", has_text="[C1]").first).to_be_visible()
    title = reference_answer.citations[0].title
    expect(page.get_by_text(title, exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Source C1")).to_be_visible()
    expect(page.get_by_text("not medical advice").first).to_be_visible()
    assert_no_traceback(page)
    shot(page, "ask_cited_answer")
    if reference_answer.follow_up_questions:  # a follow-up is asked with the conversation so far as history
        page.get_by_role("button", name=reference_answer.follow_up_questions[0]).click()
        expect(page.locator(".dr-status")).to_have_count(2, timeout=FAST)
        assert_no_traceback(page)


def test_citation_opens_highlighted_source(page, app_url, reference_answer):
    c1 = reference_answer.citations[0]
    assert c1.source == "label"
    ask(page, app_url, QUESTION)
    page.get_by_role("button", name="Source C1").click(timeout=SLOW)
    dialog = page.get_by_role("dialog")
    mark = dialog.locator("mark").first
    expect(mark).to_be_visible(timeout=FAST)
    assert mark.text_content() == c1.quote  # the highlighted span is exactly the cited quote
    expect(dialog.get_by_text(c1.title, exact=True)).to_be_visible()
    expect(dialog.get_by_text(c1.doc_id).first).to_be_visible()
    expect(dialog.get_by_text(c1.section_name or c1.section or "", exact=False).first).to_be_visible()
    assert_no_traceback(page)
    shot(page, "citation_highlight")


def test_interaction_checker_shows_major(page, app_url):
    page.goto(f"{app_url}/interactions")
    search = page.get_by_role("textbox", name="Search drugs")
    expect(search).to_be_editable(timeout=FAST)
    search.fill("warfarin")
    search.press("Enter")
    box = page.get_by_test_id("stMultiSelect").locator("input")
    box.click()
    box.fill("Warf")  # search-as-you-type over the options the search filled in
    page.get_by_role("option", name=MAJOR_PAIR[0], exact=True).click(timeout=FAST)
    expect(page.get_by_test_id("stMultiSelect").get_by_text(MAJOR_PAIR[0], exact=True)).to_be_visible()
    for name in (MAJOR_PAIR[1], NO_RECORD_DRUG):  # names not among the options: accepted as typed
        box.click()
        box.fill(name)
        box.press("Enter")
        expect(page.get_by_test_id("stMultiSelect").get_by_text(name, exact=True)).to_be_visible()
    box.press("Escape")
    page.get_by_role("button", name="Check interactions").click()
    matrix = page.locator("table.dr-matrix")
    expect(matrix.locator(".dr-sev-major").first).to_be_visible(timeout=FAST)
    expect(matrix.locator(".dr-sev-major").first).to_have_text("Major")
    expect(matrix.locator("td.dr-none").first).to_have_text("No record")
    expect(page.get_by_text(f"{MAJOR_PAIR[0]} + {MAJOR_PAIR[1]} — Major")).to_be_visible()
    title = f"{MAJOR_PAIR[0]} + {NO_RECORD_DRUG} — no interaction recorded"
    expect(page.get_by_text(title)).to_be_visible()
    page.get_by_text(title).click()
    pair = page.get_by_test_id("stExpander").filter(has_text=title)
    expect(pair.get_by_text("No interaction recorded in the knowledge base — not proof of safety")).to_be_visible()
    assert "safe" not in matrix.inner_text().lower()
    assert_no_traceback(page)
    shot(page, "interaction_checker")


def test_kg_browser_draws_neighbourhood(page, app_url):
    page.goto(f"{app_url}/graph")
    search = page.get_by_role("textbox", name="Search entity")
    expect(search).to_be_editable(timeout=FAST)
    search.fill("warfarin")
    search.press("Enter")
    summary = page.get_by_text(re.compile(r"showing \d+ nodes and \d+ edges"))
    expect(summary).to_be_visible(timeout=FAST)
    n_nodes = int(re.search(r"showing (\d+) nodes", summary.inner_text()).group(1))
    assert 1 < n_nodes <= 400
    frame = page.frame_locator("[data-testid='stCustomComponentV1']").first
    expect(frame.locator("canvas").first).to_be_visible(timeout=FAST)
    expect(page.get_by_role("heading", name="Warfarin")).to_be_visible()
    expect(page.get_by_text(re.compile(r"truncated at the limit"))).to_be_visible()
    page.wait_for_timeout(2500)  # let the layout animation settle before the screenshot
    assert_no_traceback(page)
    shot(page, "kg_browser")
    # expand another node: choose it in the side panel, merge its neighbourhood
    page.get_by_test_id("stSelectbox").filter(has_text="Selected node").click()
    page.get_by_role("option").nth(1).click()
    page.get_by_role("button", name="Expand").click()
    expect(summary).not_to_contain_text(f"showing {n_nodes} nodes", timeout=FAST)
    expanded = int(re.search(r"showing (\d+) nodes", summary.inner_text()).group(1))
    assert n_nodes < expanded <= 400


def test_errors_are_readable(page, app_url):
    ask(page, app_url, "x" * 2500)
    err = page.get_by_test_id("stAlertContentError").first
    expect(err).to_be_visible(timeout=SLOW)
    expect(err).to_contain_text("Invalid input: question is too long (2500 characters")
    assert_no_traceback(page)
    shot(page, "error_long_question")

    page.goto(f"{app_url}/interactions")
    box = page.get_by_test_id("stMultiSelect").locator("input")
    expect(box).to_be_editable(timeout=FAST)
    for name in ("Warfarin", "Notadrugatall"):
        box.click()
        box.fill(name)
        box.press("Enter")
        expect(page.get_by_test_id("stMultiSelect").get_by_text(name, exact=True)).to_be_visible()
    box.press("Escape")
    page.get_by_role("button", name="Check interactions").click()
    err = page.get_by_test_id("stAlertContentError").first
    expect(err).to_contain_text("Not found: unknown drug(s) not in the knowledge base: Notadrugatall", timeout=FAST)
    assert_no_traceback(page)
    shot(page, "error_unknown_drug")


def test_store_unavailable_is_readable(page, tmp_path):
    env = {"DRUGRAG_HOME": "/proc/drugrag-missing/kb", "DRUGRAG_EMBEDDING_MODEL": str(MODEL_DIR)}
    with streamlit_app(env, ARTIFACTS / "streamlit-broken.log") as url:
        page.goto(f"{url}/kb")
        err = page.get_by_test_id("stAlertContentError").first
        expect(err).to_be_visible(timeout=FAST)
        expect(err).to_contain_text("The knowledge base is unavailable")
        assert_no_traceback(page)
        shot(page, "error_store_unavailable")


def test_kb_page_shows_counts(page, app_url):
    page.goto(f"{app_url}/kb")
    expect(page.get_by_text("Last ingest finished at")).to_be_visible(timeout=FAST)
    for heading in ("Sources", "Labels", "Graph", "Skipped records"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    labels = page.get_by_test_id("stMetric").filter(has_text="Labels").get_by_test_id("stMetricValue")
    assert int(labels.inner_text().replace(",", "")) > 0
    assert_no_traceback(page)
    shot(page, "knowledge_base")


def test_http_backend(page, api_url, tmp_path):
    """The same UI over the JSON API (settings.ui_backend=http): answers, the source viewer and API errors."""
    ui_env = {"DRUGRAG_UI_BACKEND": "http", "DRUGRAG_API_URL": api_url,
              "DRUGRAG_HOME": str(tmp_path / "unused-home")}  # the UI must not open stores itself
    with streamlit_app(ui_env, ARTIFACTS / "streamlit-http.log") as url:
        ask(page, url, QUESTION)
        expect(page.locator(".dr-status-answered")).to_have_text("Answered", timeout=SLOW)
        expect(page.get_by_text("Backend: http")).to_be_visible()
        page.get_by_role("button", name="Source C1").click()
        expect(page.get_by_role("dialog").locator("mark").first).to_be_visible(timeout=FAST)
        assert_no_traceback(page)
        shot(page, "http_backend")
        page.get_by_role("dialog").get_by_label("Close").click()
        page.get_by_test_id("stChatInputTextArea").fill("y" * 2500)
        page.get_by_test_id("stChatInputTextArea").press("Enter")
        err = page.get_by_test_id("stAlertContentError").first
        expect(err).to_contain_text("Invalid input: question: String should have at most 2000 characters",
                                    timeout=FAST)
        assert_no_traceback(page)
    assert not (tmp_path / "unused-home").exists()
