"""The dashboard in a real browser: Debian's chromium, driven by Playwright, against uvicorn
on 127.0.0.1 with an ephemeral port. Screenshots are saved under the test's tmp dir."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"


@pytest.fixture
def server(api: FastAPI) -> Iterator[str]:
    """uvicorn serving the app in a thread on 127.0.0.1:<ephemeral>."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(api, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def page() -> Iterator[Page]:
    """A chromium page (Debian's browser; no download)."""
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run scripts/system-deps.sh")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def _login(page: Page, base: str, user: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_login_approve_and_see_status(
    server: str, page: Page, env: Any, client: TestClient, tmp_path: Path
) -> None:
    """otto (operator) makes a plan; amy (approver) logs in, approves, sees it approved."""
    made = client.post("/api/plans", headers={"Authorization": f"Bearer {env.tokens['otto']}"})
    assert made.status_code == 201
    page.goto(f"{server}/approvals")
    assert page.url == f"{server}/login"  # not logged in: redirected
    page.fill("input[name=username]", "amy")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "wrong user name, password or token" in page.inner_text(".flash.err")
    _login(page, server, "amy")
    assert "Fleet risk" in page.inner_text("h1")
    assert page.locator(".kpi").first.inner_text().startswith("2")
    page.locator("details.action").first.click()
    assert "factor" in page.locator("details.action table.factors").first.inner_text()
    page.wait_for_load_state("networkidle")
    sizes = page.evaluate(
        "Array.from(document.querySelectorAll('.charts img')).map(i => i.naturalWidth)"
    )
    assert len(sizes) == 3
    assert all(w > 100 for w in sizes), sizes  # the PNG charts loaded and decoded
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    page.click("nav >> text=Plan")
    assert page.locator(".timeline svg").count() == 1
    page.screenshot(path=str(tmp_path / "plan.png"), full_page=True)

    page.click("nav >> text=Approvals")
    change = page.locator(".change").first
    change_id = change.get_attribute("data-change")
    assert change_id is not None
    assert "pending_approval" in change.inner_text()
    page.screenshot(path=str(tmp_path / "approvals-before.png"), full_page=True)
    change.locator("input[name=reason]").fill("canary ok, agreed with shop owners")
    change.locator("button.approve").click()
    page.wait_for_url(re.compile(r"/approvals\?(msg|error)="))
    assert "msg=" in page.url, page.url
    assert f"change {change_id} is now approved" in page.inner_text(".flash.ok")
    row = page.locator("table tr", has_text=change_id)
    assert "approved" in row.inner_text()
    assert "amy" in row.inner_text()
    assert page.locator("#none-pending").count() == 1
    page.screenshot(path=str(tmp_path / "approvals-after.png"), full_page=True)

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["pw_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert page.locator("nav >> text=Audit").count() == 1  # approver includes operator
    page.click("nav >> text=Audit")
    assert "chain verified" in page.inner_text(".flash.ok")
    assert page.locator("td", has_text="approval.approve").count() == 1
    page.screenshot(path=str(tmp_path / "audit.png"), full_page=True)


def test_four_eyes_in_the_browser(server: str, page: Page, env: Any, tmp_path: Path) -> None:
    """amy creates the plan in the dashboard, then cannot approve its change herself."""
    _login(page, server, "amy")
    page.click("nav >> text=Plan")
    page.click("text=Create a new plan now")
    assert "plan 1 created" in page.inner_text(".flash.ok")
    page.click("nav >> text=Approvals")
    change = page.locator(".change").first
    change.locator("input[name=reason]").fill("mine")
    change.locator("button.approve").click()
    assert "four eyes" in page.inner_text(".flash.err")
    assert "pending_approval" in page.locator(".change").first.inner_text()
    page.screenshot(path=str(tmp_path / "four-eyes.png"), full_page=True)


def test_viewer_sees_no_decision_buttons_and_csrf_is_enforced(
    server: str, page: Page, env: Any, client: TestClient
) -> None:
    client.post("/api/plans", headers={"Authorization": f"Bearer {env.tokens['otto']}"})
    page.goto(f"{server}/login")
    page.fill("input[name=token]", env.tokens["vera"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    page.click("nav >> text=Approvals")
    assert page.locator(".change").count() == 1
    assert page.locator("button.approve").count() == 0
    assert page.locator("nav >> text=Audit").count() == 0
    page.goto(f"{server}/audit")
    assert "cannot do this" in page.inner_text(".flash.err")
    # a forged POST without the session's CSRF token is refused
    forged = page.request.post(
        f"{server}/approvals", form={"change": "1/x", "decision": "approve", "reason": "x"}
    )
    assert forged.status == 403
    assert "CSRF" in forged.text()
