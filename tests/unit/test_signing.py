from __future__ import annotations

import hashlib
import hmac

from sublessor_billing.signing import Signer, canonical_string, compute_sign, sign_body, verify

CONTRACT_EXAMPLE = (
    "amount=4000&app_id=sublessor&order_id=820000000001"
    "&subject=400 call c-1&timestamp=1772331302&user_id=10086"
)


def _example_body() -> dict:
    return {"order_id": 820000000001, "user_id": 10086, "amount": 4000, "subject": "400 call c-1"}


def test_canonical_string_matches_the_contract_example():
    body = sign_body(_example_body(), "sublessor", "k", now=1772331302)
    assert canonical_string(body) == CONTRACT_EXAMPLE


def test_sign_is_lowercase_hex_hmac_sha256_of_the_canonical_string():
    body = sign_body(_example_body(), "sublessor", "secret-key", now=1772331302)
    expected = hmac.new(b"secret-key", CONTRACT_EXAMPLE.encode(), hashlib.sha256).hexdigest()
    assert body["sign"] == expected
    assert body["timestamp"] == 1772331302 and body["app_id"] == "sublessor"


def test_verify_accepts_a_signed_body_and_refuses_any_change():
    body = sign_body(_example_body(), "sublessor", "secret-key", now=1772331302)
    assert verify(body, "secret-key")
    assert not verify(body, "other-key")
    assert not verify({**body, "amount": 4001}, "secret-key")
    assert not verify({**body, "sign": body["sign"].upper()}, "secret-key")
    assert not verify({k: v for k, v in body.items() if k != "sign"}, "secret-key")


def test_scalars_are_rendered_as_json_text_without_quotes():
    body = {"b": True, "n": None, "s": "x y", "i": 7, "sign": "ignored"}
    assert canonical_string(body) == "b=true&i=7&n=null&s=x y"


def test_signing_an_already_signed_body_replaces_the_old_sign():
    once = sign_body(_example_body(), "sublessor", "k1", now=1)
    twice = sign_body(once, "sublessor", "k2", now=2)
    assert verify(twice, "k2") and twice["timestamp"] == 2


def test_a_reused_signer_signs_every_body_as_a_fresh_hmac_would():
    signer = Signer("sublessor", "secret-key")
    bodies = [_example_body(), {**_example_body(), "amount": 1}, {"order_id": 820000000002}]
    for body in bodies * 2:  # the keyed state is copied, never fed twice
        signed = signer.sign(body, now=1772331302)
        assert signed["sign"] == compute_sign(signed, "secret-key")
        assert verify(signed, "secret-key")
    assert "secret-key" not in repr(signer)


def test_non_ascii_and_bool_values_render_as_the_contract_says():
    body = {"subject": "400 来电 c-1", "b": False, "f": 1.5, "i": -3}
    assert canonical_string(body) == "b=false&f=1.5&i=-3&subject=400 来电 c-1"


# Our reading of "values as their JSON scalar text, no quoting" for strings: the string
# itself, its characters as they are (no JSON escaping of quotes, backslashes or control
# characters, no \u escapes), encoded as UTF-8 before the HMAC. docs/payments.md, "Signing".
AWKWARD_SUBJECT = '400 call c-"1"\\x\n\u5b89\u5168'  # a quote, a backslash, a newline, 安全


def test_a_string_is_signed_as_its_own_characters_in_utf8_never_escaped():
    body = sign_body(
        {"order_id": 820000000001, "user_id": 10086, "amount": 4000, "subject": AWKWARD_SUBJECT},
        "sublessor", "secret-key", now=1772331302,
    )  # fmt: skip
    expected_text = (
        'amount=4000&app_id=sublessor&order_id=820000000001&subject=400 call c-"1"\\x\n安全'
        "&timestamp=1772331302&user_id=10086"
    )
    assert canonical_string(body) == expected_text
    assert expected_text.encode("utf-8") == (
        b'amount=4000&app_id=sublessor&order_id=820000000001&subject=400 call c-"1"\\x\n'
        b"\xe5\xae\x89\xe5\x85\xa8&timestamp=1772331302&user_id=10086"
    )
    assert body["sign"] == (
        hmac.new(b"secret-key", expected_text.encode("utf-8"), hashlib.sha256).hexdigest()
    )
    # the vector to hand to the payment center team (key "secret-key")
    assert body["sign"] == "1b52a56bd18e057567ce1010e2f2229ab503676201f592a1662f75f992b72364"
    assert verify(body, "secret-key")
