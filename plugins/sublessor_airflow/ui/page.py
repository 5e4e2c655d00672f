"""The Billing page as server-rendered HTML (every figure carries ``data-metric`` for checks).

Everything that comes from a message or another system (reasons, bodies,
errors) is escaped; the page's script is a separate file (the CSP forbids
inline scripts). Buttons that act appear only for users allowed to act.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from sublessor_airflow.ui.chart import hourly_chart
from sublessor_billing.ops.summary import OUTCOMES, RULES
from sublessor_billing.payments.outcomes import PaymentStatus


def e(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return escape(value.isoformat(sep=" ", timespec="seconds"))
    return escape(str(value), quote=True)


def yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def age(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def metric(name: str, value: Any, shown: str | None = None) -> str:
    return f'<span data-metric="{e(name)}" data-value="{e(value)}">{e(shown or value)}</span>'


def card(title: str, body: str, note: str = "", alarm: bool = False) -> str:
    cls = "card alarm" if alarm else "card"
    return f'<div class="{cls}"><div class="t">{e(title)}</div><div class="v">{body}</div><div class="n">{note}</div></div>'


def table(headers: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_page(summary: dict, actions: list[dict], *, user: str, can_act: bool) -> str:
    s = summary
    calls, charges, pending = s["calls"], s["charges"], s["pending"]
    offline, quarantine, k3 = s["offline"], s["quarantine"], s["k3_export"]
    held, held_back = s["held_calls"], s["held_back_orders"]
    success = charges["by_outcome"][PaymentStatus.SUCCESS]
    cards = "".join(
        [
            card("Calls received", metric("calls.total", calls["total"]), f"valid {metric('calls.valid', calls['valid'])}"),
            card("Charged", metric("charges.success", success["count"]), f"of {metric('charges.orders', charges['orders'])} orders"),
            card("Revenue (yuan)", metric("charges.revenue_fen", charges["revenue_fen"], yuan(charges["revenue_fen"]))),
            card("Pending orders", metric("pending.count", pending["count"]), "oldest " + metric("pending.oldest_age_seconds", pending["oldest_age_seconds"], age(pending["oldest_age_seconds"])), alarm=pending["count"] > 0),
            card("Held calls", metric("calls.held", held["count"]), "all days; not judged, not charged", alarm=held["count"] > 0),
            card("Held-back orders", metric("orders.held_back", held_back["count"]), "id below 820000000000: never sent", alarm=held_back["count"] > 0),
            card("Taken offline", metric("offline.sublessors", offline["sublessors"]), f"delivered {metric('offline.delivered', offline['delivered'])}, not yet {metric('offline.undelivered', offline['undelivered'])} (all days {metric('offline.undelivered_all_days', offline['undelivered_all_days'])})", alarm=offline["undelivered_all_days"] > 0),
            card("Quarantine", metric("quarantine.open", quarantine["open"]), "open messages", alarm=quarantine["open"] > 0),
            card("K3 errors", metric("k3.refused", k3["refused"]), f"in flight {metric('k3.in_flight', k3['in_flight'])}", alarm=k3["refused"] > 0),
        ]
    )  # fmt: skip
    rule_rows = [
        f"<tr><td>{rule}</td><td>{e(RULES.get(int(rule), '?'))}</td>"
        f"<td class=num>{metric(f'calls.rule.{rule}', n)}</td></tr>"
        for rule, n in calls["by_filter_rule"].items()
    ] + [
        f"<tr><td>0</td><td>held by the judge</td><td class=num>{metric('calls.rule.held', calls['held'])}</td></tr>"
    ]
    outcome_rows = [
        f"<tr><td>{e(name)}</td><td class=num>{metric(f'charges.{name}.count', o['count'])}</td>"
        f"<td class=num>{metric(f'charges.{name}.amount_fen', o['amount_fen'], yuan(o['amount_fen']))}</td></tr>"
        for name, o in charges["by_outcome"].items()
        if name in OUTCOMES or o["count"]
    ]
    pending_rows = [
        f"<tr><td>{e(p['order_id'])}</td><td>{e(p['call_id'])}</td><td>{e(p['sublessor_id'])}</td>"
        f"<td class=num>{e(p['attempts'])}</td><td>{e(p['created_at'])}</td><td>{e(p['last_error'])}</td></tr>"
        for p in pending["oldest"]
    ]
    offline_rows = [
        f"<tr><td>{e(o['sublessor_id'])}</td><td>{e(o['status'])}</td><td class=num>{e(o['offlined'])}</td>"
        f"<td>{e(o['created_at'])}</td><td>{e(o['done_at'])}</td><td>{e(o['last_error'])}</td></tr>"
        for o in offline["rows"]
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Billing {e(s["day"])}</title>
<link rel="stylesheet" href="static/billing.css"><script src="static/billing.js" defer></script></head>
<body data-can-act="{"1" if can_act else "0"}">
<header><h1>Billing operations</h1>
<p class="note">A call belongs to the day it was received (received_at), an order to the day it was made (created_at), Asia/Shanghai.</p>
<form method="get" action="./"><label>Day (Asia/Shanghai) <input type="date" name="day" value="{e(s["day"])}"></label>
<button type="submit">Show</button></form>
<span class="who">{e(user)}{"" if can_act else " (read only)"} · generated {e(s["generated_at"])}</span></header>
{_alerts(s["alerts"])}
<section class="cards" data-day="{e(s["day"])}">{cards}</section>
<section><h2>Calls received and calls charged, per hour</h2>{hourly_chart(s["hourly"])}</section>
<section class="cols"><div><h2>Calls received, by filter_rule</h2>{table(["rule", "meaning", "calls"], rule_rows, "No calls.")}</div>
<div><h2>Orders made, by outcome</h2>{table(["outcome", "orders", "yuan"], outcome_rows, "No charges.")}</div></section>
<section><h2>Pending orders (all days)</h2>{table(["order id", "call id", "sublessor", "attempts", "created", "last error"], pending_rows, "Nothing pending.")}</section>
{_held(held, held_back)}
<section><h2>Taken offline this day</h2>{table(["sublessor", "status", "listings", "decided", "delivered", "last error"], offline_rows, "No offline decisions this day.")}</section>
{_quarantine(quarantine, can_act)}
{_syncs(s)}
{_k3(k3)}
{_actions(actions)}
<div id="status" role="status"></div>
</body></html>"""


def _held(held: dict, held_back: dict) -> str:
    rows = [
        f"<tr><td>{e(c['id'])}</td><td>{e(c['call_id'])}</td><td>{e(c['sublessor_id'])}</td><td>{e(c['caller'])}</td>"
        f"<td>{e(c['start_time'])}</td><td>{e(c['held_at'])}</td><td class=num>{e(c['held_count'])}</td><td>{e(c['reason'])}</td></tr>"
        for c in held["calls"]
    ]
    ids = ", ".join(str(i) for i in held_back["ids"])
    back = (
        f"<p>{e(held_back['count'])} pending order(s) below 820000000000, never sent "
        f"(ids {e(ids)}): see docs/payments.md 'Order ids below 820000000000'.</p>"
        if held_back["count"]
        else ""
    )
    return (
        f"<section id=held><h2>Held calls (all days)</h2>{table(['log id', 'call id', 'sublessor', 'caller', 'start', 'held at', 'holds', 'why'], rows, 'No held call.')}"
        f"{back}</section>"
    )


def _alerts(active: list[dict]) -> str:
    if not active:
        return ""
    items = "".join(
        f"<li><b>{e(a['name'])}</b> since {e(a['since'])}: {e(a['detail'])}</li>" for a in active
    )
    return f'<section class="alerts"><h2>Alerts firing</h2><ul>{items}</ul></section>'


def _quarantine(q: dict, can_act: bool) -> str:
    def reason_row(r: dict) -> str:
        button = (
            f'<button data-action="replay-reason" data-reason="{e(r["reason"])}">Replay all {r["count"]}</button>'
            if can_act
            else ""
        )
        return (
            f"<tr><td>{e(r['reason'])}</td><td class=num>{e(r['count'])}</td><td>{button}</td></tr>"
        )

    def row(m: dict) -> str:
        acts = (
            f'<button data-action="replay" data-id="{m["id"]}">Replay</button>'
            f'<input class="note" data-note-for="{m["id"]}" placeholder="why discard" maxlength="500">'
            f'<button data-action="discard" data-id="{m["id"]}">Discard</button>'
            if can_act
            else ""
        )
        return (
            f'<tr data-quarantine-id="{m["id"]}"><td>{m["id"]}</td><td>{e(m["received_at"])}</td>'
            f"<td class=num>{e(m['seen_count'])}</td><td>{e(m['reason'])}</td>"
            f'<td><code>{e(m["body_start"][:80])}</code> <button data-action="body" data-id="{m["id"]}">Body</button>'
            f'<div class="body" data-body-for="{m["id"]}"></div></td><td>{acts}</td></tr>'
        )

    reasons = table(
        ["reason", "open", ""], [reason_row(r) for r in q["by_reason"]], "Nothing quarantined."
    )
    rows = table(
        ["id", "received", "seen", "reason", "body", ""],
        [row(m) for m in q["newest"]],
        "No open messages.",
    )
    return (
        f'<section id="quarantine"><h2>Quarantine: {metric("quarantine.open.section", q["open"])} open</h2>'
        f"<h3>By reason</h3>{reasons}<h3>Newest first</h3>{rows}</section>"
    )


def _syncs(s: dict) -> str:
    b, runs = s["broker_phone_sync"], s["billing_runs"]
    last = b.get("last_run") or {}
    billing = runs.get("last_success") or {}
    return (
        "<section class=cols><div><h2>broker_phone_sync</h2><dl>"
        f"<dt>last run</dt><dd>{_run(last)}</dd>"
        f"<dt>high-water (source time)</dt><dd>{metric('broker.high_water', b['high_water'])}</dd>"
        f"<dt>last full resync</dt><dd>{e(b['full_resync_at'])}</dd></dl></div>"
        "<div><h2>call400_billing</h2><dl>"
        f"<dt>last successful run</dt><dd>{_run(billing)}</dd>"
        f"<dt>last run</dt><dd>{_run(runs.get('last') or {})}</dd></dl></div></section>"
    )


def _run(run: dict) -> str:
    if not run:
        return "no run yet"
    return f"{e(run['state'])}, {e(run.get('end_date') or run.get('start_date') or run.get('run_after'))}"


def _k3(k3: dict) -> str:
    rows = [
        f"<tr><td>{e(x['contract_no'])}</td><td class=num>{e(x['attempts'])}</td>"
        f"<td>{e(x['updated_at'])}</td><td>{e(x['last_error'])}</td></tr>"
        for x in k3["errors"]
    ]
    return f"<section><h2>K3 export errors</h2>{table(['contract', 'attempts', 'when', 'K3 said'], rows, 'No contract refused by K3.')}</section>"


def _actions(actions: list[dict]) -> str:
    rows = [
        f"<tr><td>{e(a['acted_at'])}</td><td>{e(a['actor'])}</td><td>{e(a['action'])}</td>"
        f"<td>{e(a['quarantine_id'])}</td><td>{e(a['detail'])}</td></tr>"
        for a in actions
    ]
    return f"<section><h2>Recent quarantine actions</h2>{table(['when', 'who', 'what', 'row', 'detail'], rows, 'None yet.')}</section>"
