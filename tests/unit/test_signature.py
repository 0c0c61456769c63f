"""The signature check the endpoint uses, against Twilio's published test vectors."""

from __future__ import annotations

from werkzeug.datastructures import ImmutableMultiDict

from service.web.signature import SignatureChecker

TOKEN = "12345"
URI = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_base_vector_validates() -> None:
    """twilio-python's base vector (reference/twilio.md 2.3) is accepted."""
    assert SignatureChecker([TOKEN]).is_valid(URI, PARAMS, EXPECTED)


def test_base_vector_with_changed_param_fails() -> None:
    """Changing any signed parameter invalidates the signature."""
    assert not SignatureChecker([TOKEN]).is_valid(URI, {**PARAMS, "Digits": "1235"}, EXPECTED)


def test_duplicate_params_multidict_vector() -> None:
    """Repeated form fields are signed sorted and de-duplicated, as Twilio does."""
    params = ImmutableMultiDict([("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"),
                                 ("Digits", "1234"), ("Digits", "1234")])
    assert SignatureChecker([TOKEN]).is_valid(URI, params, "IK+Dwps556ElfBT0I3Rgjkr1wJU=")


def test_port_variants() -> None:
    """Twilio signs with or without the default port; both forms are accepted."""
    checker = SignatureChecker([TOKEN])
    assert checker.is_valid("https://mycompany.com:1234/myapp.php?foo=1&bar=2", PARAMS, EXPECTED)
    assert checker.is_valid("http://mycompany.com:1234/myapp.php?foo=1&bar=2", PARAMS,
                            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")
    assert checker.is_valid(URI, PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")
    assert checker.is_valid("http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS,
                            "0ZXoZLH/DfblKGATFgpif+LLRf4=")


def test_secondary_token_accepted_and_unknown_refused() -> None:
    """During a rotation either token validates; a third never does."""
    assert SignatureChecker(["other", TOKEN]).is_valid(URI, PARAMS, EXPECTED)
    assert not SignatureChecker(["other", "another"]).is_valid(URI, PARAMS, EXPECTED)


def test_missing_signature_refused() -> None:
    """No header at all is refused, not treated as empty-string match."""
    assert not SignatureChecker([TOKEN]).is_valid(URI, PARAMS, None)
    assert not SignatureChecker([TOKEN]).is_valid(URI, PARAMS, "")
