"""The ``callwatch`` command: classify saved responses, refuse bad input cleanly."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from service.analysis.alert import Alert
from service.cli import build_parser, main

DATA = Path(__file__).resolve().parent.parent / "data"
ERROR_CALL = str(DATA / "events_error_call.json")
WARNINGS_CALL = str(DATA / "events_warnings_call.json")
CLEAN_CALL = str(DATA / "events_clean_call.json")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_error_call_prints_summary_then_issues(capsys: pytest.CaptureFixture[str]) -> None:
    """A page with SDK errors prints the summary, one line per issue and the client."""
    code, out, err = run(capsys, "classify", ERROR_CALL, "--duration", "12")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == ("ERROR: The media connection failed and was not restored (53405); "
                        "3 errors on CA03a02b156c6faa96c86906f7e9ad0f38 (completed, 12 s)")
    assert lines[1].startswith("  alert_id alr_")
    assert lines[2].startswith("  - [error] sdk_edge/connection/error/53405 x1 ")
    assert lines[2].endswith("(SDK: Media connection failed.)")
    assert "sdk_edge/ice-connection-state/failed" in lines[3]
    assert lines[4].endswith("sdk_edge/connection/error/31005 x1 from 2026-11-27T10:00:10Z: "
                             "A connection error occurred during the call "
                             "(the Twilio gateway hung up with an error) "
                             "(SDK: Connection with Twilio was interrupted.)")
    assert lines[5] == ("  client: twilio-voice-js 2.18.4 (browser), macOS 15.1, "
                        "Apple MacBookPro18,3, Mountain View US")


def test_warnings_call_from_pages_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    """A list of pages is read whole; --json prints the webhook envelope."""
    code, out, _ = run(capsys, "classify", WARNINGS_CALL, "--json")
    assert code == 0
    envelope = json.loads(out)
    assert envelope["type"] == "call.alert"
    data = envelope["data"]
    assert data["severity"] == "warning"
    assert data["call"]["call_sid"] == "CA5e1f0b7c9d2a4e6f8a0b1c2d3e4f5a6b"
    rtt = data["issues"][0]
    assert (rtt["key"], rtt["count"], rtt["duration_s"], rtt["cleared"]) == (
        "sdk_edge/network-quality-warning/high-rtt", 2, 14.0, True)
    assert [i["cleared"] for i in data["issues"][1:]] == [False, False]
    assert Alert.from_envelope(envelope).alert_id == data["alert_id"]


def test_human_warning_lines_show_duration(capsys: pytest.CaptureFixture[str]) -> None:
    """Warning lines say how long they were raised and whether they cleared."""
    _, out, _ = run(capsys, "classify", WARNINGS_CALL)
    assert ", raised 14 s, cleared: Round-trip time (RTT) above the SDK's threshold" in out
    assert ", raised 17 s, not cleared: " in out


def test_clean_call_has_no_alert(capsys: pytest.CaptureFixture[str]) -> None:
    """A bare list of INFO/DEBUG/null-level events prints no alert and exits 0."""
    assert run(capsys, "classify", CLEAN_CALL) == (
        0, "no alert (6 events, none at or above WARNING)\n", "")
    code, out, _ = run(capsys, "classify", CLEAN_CALL, "--json")
    assert (code, json.loads(out)) == (0, None)


def test_min_level_and_ignore_options(capsys: pytest.CaptureFixture[str]) -> None:
    """--min-level ERROR and --ignore drop issues as the policy says."""
    code, out, _ = run(capsys, "classify", WARNINGS_CALL, "--min-level", "error")
    assert (code, out.startswith("no alert")) == (0, True)
    _, out, _ = run(capsys, "classify", WARNINGS_CALL, "--json",
                    "--ignore", "network-quality-warning-raised/high-rtt",
                    "--ignore", "audio-level-warning-raised/constant-audio-output-level")
    keys = [i["key"] for i in json.loads(out)["data"]["issues"]]
    assert keys == ["sdk_edge/network-quality-warning/low-mos"]


def test_failed_status_makes_an_alert(capsys: pytest.CaptureFixture[str]) -> None:
    """--status failed with --sip-code alerts even on a clean call."""
    _, out, _ = run(capsys, "classify", CLEAN_CALL, "--status", "failed", "--sip-code", "404")
    assert "[error] call/failed x1: The call could not be completed as dialed (SIP 404)" in out


def test_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """FILE - reads the response from standard input."""
    monkeypatch.setattr("sys.stdin", io.StringIO(Path(ERROR_CALL).read_text()))
    code, out, _ = run(capsys, "classify", "-")
    assert (code, out.startswith("ERROR: ") and "; 3 errors on " in out) == (0, True)


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A missing file exits 2 with a one-line message and no traceback."""
    missing = str(tmp_path / "nope.json")
    assert run(capsys, "classify", missing) == (2, "", f"callwatch: {missing}: no such file\n")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON"),
    ('{"meta": {}}', 'no "events" list'),
    ('{"events": {"a": 1}}', 'no "events" list'),
    ('{"events": [1, 2]}', "every event must be a JSON object"),
    ("[1, 2]", "every item of the list must be a JSON object"),
    ('[{"events": []}, {"name": "x"}]', "a list mixing pages and events"),
    ('"events"', "expected an Events API page"),
    ("\udcff", "cannot read"),
])
def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                           content: str, message: str) -> None:
    """Unreadable, non-JSON or wrongly shaped files exit 2 with a clear message."""
    path = tmp_path / "bad.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    code, out, err = run(capsys, "classify", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"callwatch: {path}: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_bad_ignore_pair_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--ignore needs a group/name pair; anything else is a usage error (exit 2)."""
    code, _, err = run(capsys, "classify", CLEAN_CALL, "--ignore", "high-rtt")
    assert code == 2 and "is not a group/name pair" in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    """With no subcommand the help goes to stderr and the exit code is 2."""
    code, _, err = run(capsys)
    assert code == 2 and "classify" in err and "analyze" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints usage and exits 0, as main's return value."""
    code, out, _ = run(capsys, "classify", "--help")
    assert code == 0 and "--min-level" in out


def test_analyze_rejects_a_bad_call_sid(capsys: pytest.CaptureFixture[str]) -> None:
    """analyze checks the CallSid before reading settings or calling Insights."""
    code, out, err = run(capsys, "analyze", "CA123")
    assert (code, out) == (2, "")
    assert err == "callwatch: 'CA123' is not a CallSid (CA followed by 32 hex digits)\n"


def test_analyze_names_a_missing_variable(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """analyze without Twilio settings exits 2 naming the variable."""
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    code, _, err = run(capsys, "analyze", "CA" + "ab" * 16)
    assert code == 2
    assert err.startswith("callwatch: configuration error: TWILIO_ACCOUNT_SID: ")


def test_parser_registers_every_subcommand() -> None:
    """The registrar table contributes classify and analyze."""
    args = build_parser().parse_args(["classify", "f.json", "--min-level", "error"])
    assert (args.files, args.min_level, args.status) == (["f.json"], "ERROR", "completed")
    assert build_parser().parse_args(["analyze", "CA1"]).call_sid == "CA1"


def test_unread_next_page_is_warned(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A saved page whose next page was not given warns on stderr instead of a silent result."""
    page = {"meta": {"page": 0, "page_size": 1, "url": "https://x/Events?Page=0",
                     "next_page_url": "https://x/Events?Page=1&PageToken=PT1"},
            "events": [{"group": "connection", "name": "outgoing", "level": "INFO",
                        "edge": "sdk_edge"}]}
    first = tmp_path / "page0.json"
    first.write_text(json.dumps(page))
    code, out, err = run(capsys, "classify", str(first))
    assert code == 0 and out.startswith("no alert")
    assert "next_page_url was not read" in err and "PT1" in err
    second = tmp_path / "page1.json"
    second.write_text(json.dumps({
        "meta": {"page": 1, "page_size": 1, "url": "https://x/Events?Page=1",
                 "next_page_url": None},
        "events": [{"group": "connection", "name": "error", "level": "ERROR",
                    "edge": "sdk_edge", "sdk_edge": {"error": {"code": 31005}}}]}))
    code, out, err = run(capsys, "classify", str(first), str(second))
    assert (code, err) == (0, "")
    assert out.startswith("ERROR: ") and "; 1 error on " in out.splitlines()[0]


def test_outcome_codes_need_the_outcomes_flag(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    """A busy callee is no alert unless --outcomes, then a warning."""
    page = tmp_path / "busy.json"
    page.write_text(json.dumps({"events": [{"group": "connection", "name": "error",
                                            "level": "ERROR", "edge": "sdk_edge",
                                            "sdk_edge": {"error": {"code": 31486}}}]}))
    _, out, _ = run(capsys, "classify", str(page))
    assert out.startswith("no alert")
    _, out, _ = run(capsys, "classify", str(page), "--outcomes")
    assert out.startswith("WARNING: The callee is busy (SIP 486) (31486); 1 warning on ")


def test_pages_of_different_calls_are_warned(capsys: pytest.CaptureFixture[str]) -> None:
    """Files from two different calls are classified together only with a warning."""
    code, _, err = run(capsys, "classify", ERROR_CALL, WARNINGS_CALL)
    assert code == 0
    assert "2 different calls" in err
