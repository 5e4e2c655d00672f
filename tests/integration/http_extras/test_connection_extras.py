"""The HTTP hooks honour their connection's TLS and proxy extras (loopback sandboxes, real sockets).

Payment center and K3 sandboxes serve HTTPS with a self-signed certificate: the
connection's ``verify`` extra (that certificate as CA bundle) is what lets the
provider's session, the charging client and K3 in; a server asking for a client
certificate gets the one the ``cert`` extra names. A ``proxies`` extra sends the
provider's sessions through the proxy (here the sandbox itself, the service's
own host being unresolvable).
"""

from __future__ import annotations

import certifi
import pytest
import requests
from tls_certs import Pem, self_signed, server_tls

from sublessor_airflow.hooks.k3_cloud import K3CloudError, K3CloudHook
from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.payments.outcomes import UnknownOutcome
from sublessor_billing.sandbox.k3_cloud import DEFAULT_ACCT_ID, K3CloudSandbox
from sublessor_billing.sandbox.payment_center import ORDER_ID_MIN, PaymentCenter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

APP_ID, KEY = "sublessor", "https-key"
K3_USER, K3_PASSWORD, K3_FORM = "api_user", "k3-pw", "SUBL_Contract"
NOT_FOUND = {"code": 0, "status": "not_found"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Pem]:
    directory = tmp_path_factory.mktemp("certs")
    return {name: self_signed(directory, name) for name in ("server", "client", "stranger")}


@pytest.fixture(autouse=True)
def ca_bundle_in_the_environment(monkeypatch):
    """A CA bundle in the environment, as many hosts set: the connection's ``verify`` still wins."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())


@pytest.fixture
def https_payment_center(certs):
    server = PaymentCenter({APP_ID: KEY}).start(tls=server_tls(certs["server"]))
    yield server
    server.stop()


@pytest.fixture
def mutual_tls_payment_center(certs):
    tls = server_tls(certs["server"], client_ca=certs["client"].cert)
    server = PaymentCenter({APP_ID: KEY}).start(tls=tls)
    yield server
    server.stop()


def payment_conn(url: str, **extra) -> dict:
    return {"conn_type": "http", "host": url, "login": APP_ID, "password": KEY, "extra": extra}


def k3_conn(url: str, **extra) -> dict:
    extra = {"acct_id": DEFAULT_ACCT_ID, "lcid": 2052, "form_id": K3_FORM, **extra}
    return {
        "conn_type": "http",
        "host": url,
        "login": K3_USER,
        "password": K3_PASSWORD,
        "extra": extra,
    }


def query_both_ways() -> tuple[dict, dict]:
    """One query through the provider's session and one through the charging client."""
    hook = PaymentApiHook(timeout_ms=5000)
    answer = hook.run("/trade/query", json={"order_id": ORDER_ID_MIN}).json()
    return answer, PaymentApiHook(timeout_ms=5000).query(order_id=ORDER_ID_MIN)


def test_https_is_trusted_through_the_verify_extra(
    https_payment_center, certs, airflow_connections
):
    url = https_payment_center.url
    assert url.startswith("https://")
    airflow_connections("payment_api", payment_conn(url, verify=certs["server"].cert))
    session_answer, client_answer = query_both_ways()
    assert session_answer == client_answer == NOT_FOUND  # signed right, over TLS
    assert https_payment_center.request_counts["/trade/query"] == 2


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_without_the_verify_extra_a_self_signed_server_is_refused(
    https_payment_center, certs, airflow_connections
):
    airflow_connections("payment_api", payment_conn(https_payment_center.url))
    with pytest.raises(requests.exceptions.SSLError):
        PaymentApiHook().run("/trade/query", json={"order_id": ORDER_ID_MIN})
    with pytest.raises(UnknownOutcome, match="(?i)certificate"):
        PaymentApiHook(timeout_ms=5000).query(order_id=ORDER_ID_MIN)
    airflow_connections("payment_api", payment_conn(https_payment_center.url, verify="false"))
    assert query_both_ways() == (NOT_FOUND, NOT_FOUND)  # verification off, as the extra says
    assert https_payment_center.request_counts["/trade/query"] == 2


def test_the_cert_extra_presents_the_client_certificate(
    mutual_tls_payment_center, certs, airflow_connections
):
    url, ca, client = mutual_tls_payment_center.url, certs["server"].cert, certs["client"]
    airflow_connections("payment_api", payment_conn(url, verify=ca, cert=[client.cert, client.key]))
    assert query_both_ways() == (NOT_FOUND, NOT_FOUND)

    stranger = certs["stranger"]  # a certificate the server does not trust
    airflow_connections(
        "payment_api", payment_conn(url, verify=ca, cert=[stranger.cert, stranger.key])
    )
    with pytest.raises(requests.exceptions.ConnectionError):
        PaymentApiHook().run("/trade/query", json={"order_id": ORDER_ID_MIN})
    with pytest.raises(UnknownOutcome):
        PaymentApiHook(timeout_ms=5000).query(order_id=ORDER_ID_MIN)
    assert mutual_tls_payment_center.request_counts["/trade/query"] == 2


def test_the_proxies_extra_routes_the_session_through_the_proxy(airflow_connections):
    with PaymentCenter({APP_ID: KEY}) as proxy:  # the only way to the unresolvable host
        airflow_connections(
            "payment_api", payment_conn("http://payment.invalid", proxies={"http": proxy.url})
        )
        answer = PaymentApiHook().run("/trade/query", json={"order_id": ORDER_ID_MIN}).json()
        assert answer == NOT_FOUND and proxy.request_counts["/trade/query"] == 1
        with pytest.raises(ValueError, match="'payment_api' sets extra 'proxies'"):
            PaymentApiHook().get_async_conn()  # the charging client would bypass it: refused


def test_k3_over_https_trusts_the_verify_extra(certs, airflow_connections):
    k3 = K3CloudSandbox(
        acct_id=DEFAULT_ACCT_ID, username=K3_USER, password=K3_PASSWORD, form_id=K3_FORM
    ).start(tls=server_tls(certs["server"]))
    try:
        airflow_connections("k3_cloud", k3_conn(k3.k3_url))
        with pytest.raises(K3CloudError, match="'k3_cloud'.*(?i:certificate)"):
            K3CloudHook(timeout=5).get_conn()
        assert k3.logins == 0

        airflow_connections("k3_cloud", k3_conn(k3.k3_url, verify=certs["server"].cert))
        hook = K3CloudHook(timeout=5)
        assert hook.save({"FBillNo": "HT-TLS"}).success
        assert hook.find_bills(["HT-TLS"])[0][1] == "HT-TLS" and k3.logins == 1
    finally:
        k3.stop()


def test_k3_goes_through_the_proxies_extra_and_keeps_its_extras_out_of_headers(
    airflow_connections,
):
    k3 = K3CloudSandbox(
        acct_id=DEFAULT_ACCT_ID, username=K3_USER, password=K3_PASSWORD, form_id=K3_FORM
    ).start()
    try:
        host = "http://k3.invalid" + k3.base_path
        airflow_connections("k3_cloud", k3_conn(host, proxies={"http": k3.url}))
        hook = K3CloudHook(timeout=5)
        session = hook.get_conn()
        assert k3.logins == 1 and hook.save({"FBillNo": "HT-PROXY"}).success
        assert not {"acct_id", "lcid", "form_id", "Authorization"} & set(session.headers)
    finally:
        k3.stop()
