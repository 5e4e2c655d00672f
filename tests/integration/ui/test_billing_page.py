"""The Billing page inside the Airflow UI, in a real headless Chromium, against a real api-server.

Set ``BILLING_PAGE_SCREENSHOT=docs/billing_page.png`` to keep the screenshot
(docs/billing_page.png was made that way).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import expected
import pytest
from billing_seed import DAY
from browser import HeadlessChromium, chromium_binary

from sublessor_billing.db.connect import connect

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium_binary() is None, reason="chromium not installed (make install)"),
]

FRAME = "window.frame = () => document.querySelector('iframe')?.contentDocument; true"
READY = "frame()?.querySelector('[data-metric]') ? frame().location.href : null"
SHOWN = (
    "Object.fromEntries([...frame().querySelectorAll('[data-metric]')]"
    ".map(e => [e.dataset.metric, e.dataset.value]))"
)
BARS = (
    "[...frame().querySelectorAll('rect[data-series]')]"
    ".map(r => [+r.dataset.hour, r.dataset.series, +r.dataset.value])"
)
ROW_IDS = (
    "[...frame().querySelectorAll('tr[data-quarantine-id]')].map(r => +r.dataset.quarantineId)"
)


def open_billing(browser: HeadlessChromium, server, token: str) -> None:
    """Log in (Airflow's session cookie), open Billing in the UI's navigation, pick the day."""
    browser.set_cookie(server.base_url, "_token", token)
    browser.open(server.base_url + "/plugin/billing")
    browser.evaluate(FRAME)
    assert browser.wait_for(READY).startswith(server.base_url + "/billing/")
    browser.evaluate(
        "(() => { const d = frame(); d.querySelector('input[name=day]').value = "
        f"'{DAY.isoformat()}'; d.querySelector('form').requestSubmit(); return true; }})()"
    )
    browser.wait_for(f"frame()?.querySelector('section[data-day=\"{DAY.isoformat()}\"]') != null")


def click(browser: HeadlessChromium, selector: str) -> None:
    browser.evaluate(f"frame().querySelector({json.dumps(selector)}).click(), true")


def test_page_shows_the_database_figures_and_an_editor_replays(
    server, tokens, billing_db, tmp_path
):
    conn = connect(billing_db)
    with HeadlessChromium() as browser:
        age_before = expected.oldest_pending_age(conn)
        open_billing(browser, server, tokens["editor"])
        shown = browser.evaluate(SHOWN)
        age_after = expected.oldest_pending_age(conn)
        assert age_before <= int(shown.pop("pending.oldest_age_seconds")) <= age_after
        assert shown == expected.figures(conn, DAY)
        assert {(h, s): v for h, s, v in browser.evaluate(BARS)} == expected.hourly(conn, DAY)

        open_ids = [
            i for (i,) in expected.rows(
                conn, "SELECT id FROM call400_quarantine WHERE status = 'quarantined' ORDER BY id DESC"
            )
        ]  # fmt: skip
        assert browser.evaluate(ROW_IDS) == open_ids
        # A body that is markup is shown as text: the page runs its own script only.
        assert browser.evaluate("frame().querySelectorAll('script').length") == 1
        assert "<script>alert('x')</script>" in browser.evaluate("frame().body.textContent")

        screenshot = browser.screenshot()
        (tmp_path / "billing_page.png").write_bytes(screenshot)
        if os.environ.get("BILLING_PAGE_SCREENSHOT"):
            Path(os.environ["BILLING_PAGE_SCREENSHOT"]).write_bytes(screenshot)

        [(target, raw)] = expected.rows(
            conn,
            "SELECT id, raw_body FROM call400_quarantine WHERE raw_body LIKE %s",
            ("%q-fix-1%",),
        )
        click(browser, f'button[data-action="body"][data-id="{target}"]')
        shown_body = browser.wait_for(
            f"frame().querySelector('textarea[data-body-text=\"{target}\"]')?.value"
        )
        assert shown_body.encode() == bytes(raw)

        click(browser, f'button[data-action="replay"][data-id="{target}"]')
        assert browser.wait_for("frame().getElementById('status').dataset.state") == "ok", (
            browser.evaluate("frame().getElementById('status').textContent")
        )

        [(junk,)] = expected.rows(
            conn, "SELECT id FROM call400_quarantine WHERE raw_body = %s", (b"\x00not json",)
        )
        browser.evaluate(
            f"frame().querySelector('input[data-note-for=\"{junk}\"]').value = 'load test noise'"
        )
        browser.evaluate("frame().getElementById('status').dataset.state = ''")
        click(browser, f'button[data-action="discard"][data-id="{junk}"]')
        assert browser.wait_for("frame().getElementById('status').dataset.state") == "ok"
    assert expected.rows(
        conn, "SELECT status FROM call400_quarantine WHERE id = %s", (target,)
    ) == [("replayed",)]
    assert expected.rows(
        conn, "SELECT filter_rule FROM sublessor_call_log_201409 WHERE call_id = 'q-fix-1'"
    ) == [(0,)]
    assert expected.rows(
        conn, "SELECT actor, action, quarantine_id FROM billing_ops_action ORDER BY id"
    ) == [("editor", "replay", target), ("editor", "discard", junk)]
    assert expected.rows(
        conn, "SELECT status, resolution FROM call400_quarantine WHERE id = %s", (junk,)
    ) == [("discarded", "load test noise")]
    conn.close()


def test_a_viewer_sees_the_page_but_cannot_act(server, tokens, billing_db):
    conn = connect(billing_db)
    [(target,)] = expected.rows(
        conn, "SELECT id FROM call400_quarantine WHERE raw_body LIKE %s", ("%q-fix-2%",)
    )
    with HeadlessChromium() as browser:
        open_billing(browser, server, tokens["viewer"])
        assert browser.evaluate("frame().body.dataset.canAct") == "0"
        assert (
            browser.evaluate("frame().querySelectorAll('button[data-action=replay]').length") == 0
        )
        assert (
            browser.evaluate(
                "frame().querySelector('[data-metric=\"quarantine.open\"]').dataset.value"
            )
            == "6"
        )
        # The API refuses the viewer even when the request is made by hand from the page.
        status = browser.evaluate(
            "document.querySelector('iframe').contentWindow.fetch("
            f"'api/quarantine/{target}/replay', {{method: 'POST', credentials: 'same-origin',"
            " headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)"
        )
    assert status == 403
    assert expected.rows(
        conn, "SELECT status FROM call400_quarantine WHERE id = %s", (target,)
    ) == [("quarantined",)]
    assert expected.rows(conn, "SELECT COUNT(*) FROM billing_ops_action") == [(0,)]
    conn.close()
