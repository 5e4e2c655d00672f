"""K3CloudHook against the sandbox K3 Cloud: login, cookies, Save, ExecuteBillQuery, errors."""

from __future__ import annotations

import pytest
from support.connections import K3_PASSWORD, k3_connection
from support.net import RefusingPort

from sublessor_airflow.hooks.k3_cloud import K3CloudError, K3CloudHook, K3LoginError
from sublessor_billing.k3 import api
from sublessor_billing.sandbox.k3_cloud import DEFAULT_ACCT_ID, QUERY_PATH, Fault

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_non_ascii_account_set_with_spaces_round_trips(k3_env) -> None:
    assert DEFAULT_ACCT_ID == "瑞庭（上海）1117 aaa"
    hook = K3CloudHook()
    session = hook.get_conn()
    assert k3_env.logins == 1 and hook.login_count == 1
    assert session.cookies.get("kdservice-sessionid")
    hook.get_conn()
    assert k3_env.logins == 1  # the session is reused, not re-established per call


def test_save_without_fid_is_not_idempotent_and_with_fid_updates(k3_env) -> None:
    hook = K3CloudHook()
    first = hook.save({"FBillNo": "HT-X", "FNote": "a"})
    second = hook.save({"FBillNo": "HT-X", "FNote": "b"})
    assert first.success and second.success and first.fid != second.fid
    assert hook.find_bills(["HT-X"]) == [(first.fid, "HT-X"), (second.fid, "HT-X")]

    updated = hook.save({"FID": first.fid, "FBillNo": "HT-X", "FNote": "c"})
    assert updated.success and updated.fid == first.fid and updated.number == "HT-X"
    assert [b["FNote"] for b in k3_env.bills_by_number("HT-X")] == ["c", "b"]


def test_a_bill_stored_in_another_case_or_trimmed_is_still_found(k3_env) -> None:
    """K3 compares bill numbers like SQL Server: a lookup must not miss and create a twin."""
    hook = K3CloudHook()
    fid = hook.save({"FBillNo": "HT-Case"}).fid
    k3_env.add_bill({"FBillNo": " HT-Case"})  # leading spaces do count
    assert hook.find_bills(["ht-case ", "HT-none"]) == [(fid, "HT-Case")]
    assert hook.find_bills([]) == []


def test_query_quotes_bill_numbers_and_pages(k3_env) -> None:
    hook = K3CloudHook()
    odd = "HT-O'Brien 1"
    fid = hook.save({"FBillNo": odd}).fid
    for i in range(5):
        hook.save({"FBillNo": f"HT-P{i}"})
    assert hook.find_bills([odd, "HT-P1"])[0] == (fid, odd)
    assert hook.find_bills(["HT-none"]) == []
    rows = hook.execute_bill_query(["FBillNo"], "", page_size=2)
    assert sorted(r[0] for r in rows) == sorted([odd] + [f"HT-P{i}" for i in range(5)])
    numbers = hook.execute_bill_query(["FBillNo"], api.bill_number_filter(["HT-P1", "HT-P3"]))
    assert sorted(numbers) == [["HT-P1"], ["HT-P3"]]
    # Every query ends with an empty page: two find_bills (2 + 1), pages of 2, 2, 2 and
    # an empty one, one filtered query (2).
    assert k3_env.full_state()["request_counts"][k3_env.path(QUERY_PATH)] == 3 + 4 + 2


def test_validation_errors_are_returned_as_a_refusal(k3_env) -> None:
    k3_env.refuse("HT-R", "合同金额必须大于 0")
    result = K3CloudHook().save({"FBillNo": "HT-R"})
    assert not result.success and "合同金额必须大于 0" in result.message()
    missing = K3CloudHook().save({"FNote": "no number"})
    assert not missing.success and "FBillNo" in missing.message()
    assert k3_env.bill_count() == 0


def test_query_after_expiry_logs_in_again_once(k3_env) -> None:
    hook = K3CloudHook()
    hook.save({"FBillNo": "HT-E"})
    k3_env.expire_sessions()
    assert hook.find_bills(["HT-E"])
    assert hook.login_count == 2 and k3_env.expired_answers == 1


def test_wrong_password_gives_a_clear_error_without_the_password(k3, airflow_connections) -> None:
    airflow_connections("k3_cloud", k3_connection(k3.k3_url, password="not-the-password"))
    with pytest.raises(K3LoginError) as error:
        K3CloudHook().get_conn()
    text = str(error.value)
    assert "'k3_cloud'" in text and k3.k3_url in text and "用户名或密码错误" in text
    assert "not-the-password" not in text and K3_PASSWORD not in text
    assert k3.failed_logins == 1 and k3.logins == 0


def test_wrong_account_set_is_named(k3, airflow_connections) -> None:
    conn = k3_connection(k3.k3_url)
    conn["extra"] = {**conn["extra"], "acct_id": "瑞庭（上海）1117aaa"}  # space lost
    airflow_connections("k3_cloud", conn)
    with pytest.raises(K3LoginError, match="1117aaa"):
        K3CloudHook().get_conn()


def test_k3_down_names_the_connection_and_address(airflow_connections) -> None:
    with RefusingPort() as port:
        url = f"http://127.0.0.1:{port}/k3cloud/"
        airflow_connections("k3_cloud", k3_connection(url))
        with pytest.raises(K3CloudError) as error:
            K3CloudHook(timeout=2).get_conn()
    assert "'k3_cloud'" in str(error.value) and url in str(error.value)


def test_http_500_is_an_unknown_outcome_not_a_refusal(k3_env) -> None:
    hook = K3CloudHook()
    hook.get_conn()
    k3_env.add_fault(Fault("error_before", times=1))
    with pytest.raises(K3CloudError, match="HTTP 500"):
        hook.save({"FBillNo": "HT-5"})
    assert hook.save({"FBillNo": "HT-5"}).success


def test_query_pages_until_k3_returns_no_row(k3_env) -> None:
    """A K3 server capping rows per call below Limit still gives every bill (no short-page stop)."""
    k3_env.configure(row_cap=3)
    fids = [k3_env.add_bill({"FBillNo": "HT-CAP"}) for _ in range(7)]
    rows = K3CloudHook().execute_bill_query(["FID"], api.bill_number_filter(["HT-CAP"]))
    assert sorted(row[0] for row in rows) == fids
