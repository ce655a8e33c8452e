"""Airflow as a person and a script reach it: the REST API (v2) with a login token, and the UI in
Debian's chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from local_cloud.airflow.standalone import USER
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
# Debian's chromium, headless, as root, with nothing reaching out to Google's services.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots of each form and result: test artefacts, kept after the run.
SCREENSHOTS = ROOT / "test-results" / "browser"


class Api:
    """The Airflow REST API (v2) as the UI calls it: a bearer token from the login."""

    def __init__(self, url: str, password: str):
        self.url = url
        token = self.call("POST", "/auth/token", {"username": USER, "password": password}, auth=False)
        self.token = token["access_token"]

    def call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if auth else {}),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("GET", f"/api/v2/dags/{dag_id}")
                return
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def is_paused(self, dag_id: str) -> bool:
        return bool(self.call("GET", f"/api/v2/dags/{dag_id}")["is_paused"])

    def runs(self, dag_id: str) -> list[dict]:
        return list(self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after")["dag_runs"])

    def wait_for_run(
        self, dag_id: str, run_type: str | None = None, run_id: str | None = None, timeout: float = 600
    ) -> dict:
        """The first run of `dag_id` (of `run_type`, or `run_id`) to end; fails on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in self.runs(dag_id):
                wanted = (run_type is None or run["run_type"] == run_type) and (
                    run_id is None or run["dag_run_id"] == run_id
                )
                if wanted and run["state"] in ("success", "failed"):
                    return run
            time.sleep(3)
        raise AssertionError(
            f"no {run_type or ''} run of {dag_id} ended in {timeout:.0f} s: {self.runs(dag_id)}"
        )

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
        return {t["task_id"]: t["state"] for t in self.call("GET", path)["task_instances"]}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[str]:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}"
            f"/logs/{try_number}?full_content=true"
        )
        return [
            e.get("event", "") if isinstance(e, dict) else str(e) for e in self.call("GET", path)["content"]
        ]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian chromium under Playwright, with a fresh profile."""
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM):
        raise AssertionError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def log_in(browser: Any, url: str, password: str) -> Any:
    """A page logged in through the login form, on the home page."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(f"{url}/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    page.wait_for_load_state("networkidle")
    return page


def open_trigger_form(page: Any, url: str, dag_id: str) -> Any:
    """The DAG's page, its Trigger button clicked: the trigger form's dialog."""
    page.goto(f"{url}/dags/{dag_id}")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Run Parameters").wait_for()
    return dialog


def trigger_button(dialog: Any) -> Any:
    return dialog.get_by_role("button", name="Trigger", exact=True)


def paste_into_editor(page: Any, editor: Any, text: str) -> None:
    """Replace what a trigger form's JSON editor holds as a person does: select all, paste."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    editor.locator(".view-line").first.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.press("ControlOrMeta+V")


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
