import pytest

from drivers.base import DeviceTarget
from drivers.errors import TimerError
from drivers.timers import TimerKind, device_timer


@pytest.mark.parametrize(("kind", "seconds", "value", "armed"), [
    (TimerKind.JUNOS_CONFIRMED, 300, 5, 300),
    (TimerKind.JUNOS_CONFIRMED, 61, 2, 120),  # rounded up, never down
    (TimerKind.JUNOS_CONFIRMED, 1, 1, 60),  # never 0 minutes
    (TimerKind.NETCONF_CONFIRMED, 45, 45, 45),
    (TimerKind.IOSXE_REVERT, 7200, 120, 7200),
    (TimerKind.HOST_TIMER, 30, 30, 30),
])
def test_timeouts_translate_to_platform_units(kind: TimerKind, seconds: int, value: int,
                                              armed: int) -> None:
    timer = device_timer(kind, seconds)
    assert (timer.value, timer.seconds) == (value, armed)
    assert timer.seconds >= seconds


@pytest.mark.parametrize(("kind", "seconds", "message"), [
    (TimerKind.IOSXE_REVERT, 7201, "exceeds the platform maximum of 7200s"),
    (TimerKind.JUNOS_CONFIRMED, 0, "must be positive"),
    (TimerKind.NETCONF_CONFIRMED, -5, "must be positive"),
])
def test_impossible_timeouts_are_refused(kind: TimerKind, seconds: int, message: str) -> None:
    with pytest.raises(TimerError, match=message):
        device_timer(kind, seconds)


def test_target_credentials_and_host_key_policy_from_env() -> None:
    env = {"DCVPN_USERNAME": "ops", "DCVPN_PASSWORD": "pw", "DCVPN_KNOWN_HOSTS": "/kh"}
    target = DeviceTarget.from_env("gw", "127.0.0.1", 830, env)
    assert (target.username, target.password, str(target.known_hosts)) == ("ops", "pw", "/kh")
    assert target.verify_host_key is True
    relaxed = DeviceTarget.from_env("gw", "h", 22, {"DCVPN_NO_HOST_KEY_CHECK": "1"})
    assert relaxed.verify_host_key is False
