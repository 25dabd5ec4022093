"""The change-window guard: the pure check and `dcvpn window check`."""

import json
from datetime import UTC, datetime

import pytest

from pipelines.change_window import WindowError, check, parse_window
from pipelines.window_cmd import main

WEEKEND = "Sat 22:00-Sun 04:00 UTC"
Capture = pytest.CaptureFixture[str]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# 2025-01-04 is a Saturday, 2025-01-08 a Wednesday.
@pytest.mark.parametrize(("spec", "moment", "is_open"), [
    (WEEKEND, "2025-01-04T22:00", True),   # the start is inside
    (WEEKEND, "2025-01-04T23:30", True),
    (WEEKEND, "2025-01-05T03:59", True),   # across midnight
    (WEEKEND, "2025-01-05T04:00", False),  # the end is outside
    (WEEKEND, "2025-01-04T21:59", False),
    (WEEKEND, "2025-01-08T23:00", False),  # Wednesday: the hour fits, the day does not
    ("Saturday 22:00-04:00", "2025-01-05T02:00", True),  # end before start: the next day
    ("Wed 01:00-03:00", "2025-01-08T02:00", True),
    ("Wed 01:00-03:00", "2025-01-09T02:00", False),
    ("Sun 22:00-Mon 02:00 UTC", "2025-01-06T01:00", True),  # across the week's end
    ("Sun 22:00-Mon 02:00 UTC", "2025-01-06T02:00", False),
    ("Sat 20:00-24:00", "2025-01-04T23:59", True),
    ("Sat 20:00-24:00", "2025-01-05T00:00", False),
    ("22:00-02:00", "2025-01-07T01:00", True),  # daily
    ("22:00-02:00", "2025-01-07T12:00", False),
    (f"Wed 01:00-03:00 UTC, {WEEKEND}", "2025-01-05T01:00", True),  # any window
    ("always", "2025-01-07T12:00", True),
    ("never", "2025-01-04T23:00", False),
])
def test_open_or_closed(spec: str, moment: str, is_open: bool) -> None:
    assert check(spec, at(moment)).open is is_open


def test_closing_and_next_opening_times() -> None:
    inside = check(WEEKEND, at("2025-01-04T23:00"))
    assert inside.closes == at("2025-01-05T04:00") and inside.opens is None
    outside = check(WEEKEND, at("2025-01-05T04:00"))
    assert outside.opens == at("2025-01-11T22:00") and outside.closes is None
    # the nearest start of several windows
    both = check(f"{WEEKEND}, Wed 01:00-03:00 UTC", at("2025-01-06T12:00"))
    assert both.opens == at("2025-01-08T01:00")
    assert "outside the change window" in both.reason


def test_time_zones_use_the_zone_wall_clock() -> None:
    berlin = "Wed 01:00-03:00 Europe/Berlin"
    # winter, UTC+1: Wed 01:30 Berlin is Wed 00:30 UTC; Tue 23:30 UTC is Wed 00:30 Berlin
    assert check(berlin, at("2025-01-08T00:30")).open
    assert not check(berlin, at("2025-01-07T23:30")).open
    # summer, UTC+2: Wed 01:30 Berlin is Tue 23:30 UTC
    assert check(berlin, at("2025-07-08T23:30")).open
    assert check(berlin, at("2025-07-08T23:30")).closes == at("2025-07-09T01:00")
    # an aware time in another zone is the same instant
    moment = datetime.fromisoformat("2025-01-04T23:30+01:00")  # 22:30 UTC, Saturday
    assert check(WEEKEND, moment).open


def test_margin_refuses_a_window_about_to_close() -> None:
    late = at("2025-01-05T03:45")
    assert check(WEEKEND, late).open
    verdict = check(WEEKEND, late, margin=30 * 60)
    assert not verdict.open
    assert "closes in less than 1800s" in verdict.reason
    assert check(WEEKEND, at("2025-01-05T03:30"), margin=30 * 60).open


@pytest.mark.parametrize(("spec", "message"), [
    ("", "no change window"),
    ("Sat 22:00", "START-END"),
    ("Sat 25:00-Sun 01:00", "not a time"),
    ("Sat 22:60-Sun 01:00", "not a time"),
    ("Xyz 01:00-02:00", "not a day"),
    ("01:00-Sun 02:00", "give the start's day"),
    ("01:00-01:00", "empty"),
    ("Mon 01:00-02:00 Mars/Olympus", "unknown time zone"),
    ("Mon 01:00 02:00-03:00", "not \\[DAY\\] HH:MM"),
])
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(WindowError, match=message):
        check(spec, at("2025-01-04T23:00"))


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(WindowError, match="zone"):
        check(WEEKEND, datetime(2025, 1, 4, 23, 0))


def test_parse_keeps_the_text() -> None:
    w = parse_window(" Sat 22:00-Sun 04:00 UTC ")
    assert w.text == WEEKEND and w.length == 6 * 3600


# --- the command ------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHANGE_WINDOW", "FORCE", "AT", "WINDOW_MARGIN", "FORMAT"):
        monkeypatch.delenv(f"DCVPN_{name}", raising=False)


def _run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(["window", "check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_command_inside_outside_and_forced(capsys: Capture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _run(capsys, "--change-window", WEEKEND, "--at", "2025-01-04T23:00")
    assert (code, out) == (0, "")
    assert "deploy allowed: inside change window Sat 22:00-Sun 04:00 UTC until " \
           "2025-01-05T04:00:00Z" in err
    monkeypatch.setenv("DCVPN_CHANGE_WINDOW", WEEKEND)
    code, _, err = _run(capsys, "--at", "2025-01-07T12:00:00+00:00")
    assert code == 1
    assert "deploy refused" in err and "opens next at 2025-01-11T22:00:00Z" in err
    assert "DCVPN_FORCE=1" in err
    monkeypatch.setenv("DCVPN_FORCE", "1")
    code, _, err = _run(capsys, "--at", "2025-01-07T12:00")
    assert code == 0
    assert "deploy FORCED" in err


def test_command_json(capsys: Capture) -> None:
    code, out, _ = _run(capsys, "--change-window", WEEKEND, "--at", "2025-01-05T03:45",
                        "--window-margin", "30m", "--format", "json")
    assert code == 1
    assert json.loads(out) == {
        "allowed": False, "open": False, "forced": False,
        "reason": "the change window closes in less than 1800s",
        "at": "2025-01-05T03:45:00Z", "closes": None, "opens": "2025-01-11T22:00:00Z"}


@pytest.mark.parametrize(("argv", "message"), [
    ((), "no change window given"),
    (("--change-window", "Sat 22:00"), "START-END"),
    (("--change-window", WEEKEND, "--at", "yesterday"), "not an ISO 8601 time"),
    (("--change-window", WEEKEND, "--window-margin", "soon"), "--window-margin"),
    (("--change-window", WEEKEND, "--format", "xml"), "--format must be one of"),
])
def test_command_bad_input_exits_2(capsys: Capture, argv: tuple[str, ...], message: str) -> None:
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert message in err


def test_now_is_the_default(capsys: Capture) -> None:
    assert _run(capsys, "--change-window", "always")[0] == 0
    assert _run(capsys, "--change-window", "never")[0] == 1
