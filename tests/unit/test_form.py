"""A callback's fields read from its raw body, as Werkzeug's form parser reads them."""

from __future__ import annotations

from urllib.parse import urlencode

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from service.web.form import FormFields
from service.web.signature import SignatureChecker

BODY = urlencode([("CallSid", "CA" + "1" * 32), ("Digits", "5678"), ("Digits", "1234"),
                  ("Empty", ""), ("From", "+14155550100"), ("Odd", "%FF+x")]).encode()


def werkzeug_form(body: bytes) -> MultiDict[str, str]:
    request = EnvironBuilder(method="POST", data=body,
                             content_type="application/x-www-form-urlencoded").get_request()
    return request.form


def test_fields_match_werkzeugs_form() -> None:
    """Every name and every value, blanks and escapes included, as request.form reads them."""
    fields = FormFields.parse(BODY)
    form = werkzeug_form(BODY)
    assert list(fields) == list(form)
    assert all(fields.getall(name) == form.getlist(name) for name in form)
    assert fields["Digits"] == "5678" and fields.get("Empty") == "" and fields.get("Nope") is None


def test_undecodable_escape_is_kept_as_sent() -> None:
    """An escape that is not UTF-8 stays percent-encoded rather than becoming U+FFFD."""
    assert FormFields.parse(b"Name=%FFx").get("Name") == "%FFx"


def test_body_that_is_not_utf8_has_no_fields() -> None:
    """A body that is not UTF-8 reads as no fields (so it can only fail the signature)."""
    assert len(FormFields.parse(b"CallSid=\xff\xfe")) == 0


def test_signature_covers_every_value_of_a_repeated_field() -> None:
    """The signature over parsed fields equals the one over Werkzeug's form."""
    checker = SignatureChecker(["12345"])
    url = "https://alerts.example.com/twilio/status-callback"
    expected = RequestValidator("12345").compute_signature(url, werkzeug_form(BODY))
    assert checker.is_valid(url, FormFields.parse(BODY), expected)
    assert not checker.is_valid(url, FormFields.parse(BODY.replace(b"1234", b"1235")), expected)
