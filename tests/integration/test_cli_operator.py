"""``callwatch`` for operators: config check's warnings and release-phase answer, hostile
routing files refused in one line, tables that escape control characters, and
``routes test`` from ``--from``, ``--to``, ``--identity``, ``--account``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_lib

from devtools.sample_alerts import sample_alert
from service.cli import main

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "AC" + "1" * 32
SUB_ACCOUNT = "AC" + "2" * 32
SINKS = "sinks:\n  agents: {type: log}\n  phones: {type: log}\n  subs: {type: log}\n"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_server, redis: redis_lib.Redis) -> None:
    for name in ("SLACK_WEBHOOK_URL", "ALERT_WEBHOOK_URLS", "CALLWATCH_CONFIG_FILE",
                 "CALLWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    monkeypatch.setenv("REDIS_URL", redis_server.url)


def test_config_check_warns_of_routes_after_a_catch_all(env: None, monkeypatch, capsys) -> None:
    """A catch-all without continue is valid (exit 0) but the routes after it and default
    are named as never used."""
    monkeypatch.setenv("CALLWATCH_CONFIG", SINKS + """
routes:
  - {name: all, sinks: [agents]}
  - {name: js, match: {sdk_type: twilio-voice-js}, sinks: [phones]}
default: [subs]
""")
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert ("warning: routes[1] (js) is never reached: routes[0] (all) matches every alert "
            "and has no `continue: true`") in out
    assert "warning: default is never used" in out
    assert "2 warnings: the configuration works, but some of it is never used" in out


@pytest.mark.parametrize(("config", "says"), [
    ("a: &x [1]\nb: *x\n", "CALLWATCH_CONFIG: line 1: YAML anchors (&x) are not allowed"),
    (SINKS + 'routes:\n  - {match: {from: "$PREFIX*"}, sinks: [agents]}\n',
     "CALLWATCH_CONFIG: routes[0].match.from: $PREFIX needs braces"),
    (SINKS + 'routes:\n  - {match: {from: "${PREFIX"}, sinks: [agents]}\n',
     "CALLWATCH_CONFIG: routes[0].match.from: ${PREFIX is not closed with }"),
    ("[" * 5000 + "]" * 5000, "CALLWATCH_CONFIG: line 1: nested more than 20 deep"),
])
def test_release_phase_gets_exit_1_and_one_line(env: None, config: str, says: str) -> None:
    """`callwatch config check`, as Heroku's release phase runs it, exits 1 with one line on
    stderr and nothing on stdout, for an alias bomb, a $NAME, an unclosed ${NAME, deep nesting."""
    result = subprocess.run([str(Path(sys.executable).parent / "callwatch"), "config", "check"],
                            env={**os.environ, "CALLWATCH_CONFIG": config, "PREFIX": "client:"},
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"callwatch: configuration error: {says}"), line


def test_silence_list_escapes_a_forged_row(env: None, capsys) -> None:
    """A comment with a newline and an escape sequence stays on its silence's one line."""
    forged = "deploy\nsil_000000000000  until 2099-01-01  error_code=1  # fake\x1b[2J"
    assert main(["silence", "add", "error_code=31005", "--for", "1h", "--comment", forged,
                 "--author", "eve\u202etxt"]) == 0
    silence_id = capsys.readouterr().out.strip()
    assert main(["silence", "list"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(silence_id)
    assert "# deploy\\nsil_000000000000  until 2099-01-01  error_code=1  # fake\\x1b[2J" in line
    assert "by eve\\u202etxt" in line


def test_routes_test_builds_the_alert_from_options(env: None, monkeypatch, capsys) -> None:
    """--identity, --from, --to and --account route a call with no file: an agent's calls,
    a number's, a sub-account's."""
    monkeypatch.setenv("CALLWATCH_CONFIG", SINKS + f"""
routes:
  - {{name: sub, match: {{account_sid: {SUB_ACCOUNT}}}, sinks: [subs]}}
  - {{name: alice, match: {{from: "client:alice"}}, sinks: [agents]}}
  - {{name: london, match: {{to: "+4420*"}}, sinks: [phones]}}
""")
    cases = [(["--identity", "alice"], "sinks: agents"),
             (["--from", "+14155550123", "--to", "+442071234567"], "sinks: phones"),
             (["--identity", "bob", "--account", SUB_ACCOUNT], "sinks: subs"),
             (["--identity", "bob"], "sinks: (none)")]
    for options, sinks in cases:
        assert main(["routes", "test", *options]) == 0, options
        out = capsys.readouterr().out
        assert sinks in out.splitlines(), (options, out)
        assert "built from the options" in out


def test_routes_test_options_replace_the_files_call(env: None, monkeypatch, tmp_path,
                                                    capsys) -> None:
    """With a file, --to replaces the alert's called party; its issues stay."""
    monkeypatch.setenv("CALLWATCH_CONFIG", SINKS + """
routes:
  - {name: london, match: {to: "+4420*", severity: error}, sinks: [phones]}
default: [agents]
""")
    path = tmp_path / "alert.json"
    path.write_text(json.dumps(sample_alert().to_envelope()))
    assert main(["routes", "test", str(path)]) == 0
    assert "sinks: agents" in capsys.readouterr().out.splitlines()
    assert main(["routes", "test", str(path), "--to", "+442071234567"]) == 0
    assert "sinks: phones" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(("options", "says"), [
    ([], "give an alert FILE, or at least one of --from, --to, --identity, --account"),
    (["--account", "AC123"], "--account 'AC123': an account SID is AC and 32 hex digits"),
    (["--identity", "a", "--from", "x", "--to", "y"], "--identity names the client: party"),
])
def test_routes_test_refuses_options_it_cannot_use(env: None, options: list[str], says: str,
                                                   capsys) -> None:
    """Missing or contradictory options: exit 2 with one line saying what to give."""
    assert main(["routes", "test", *options]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.splitlines()) == 1
