"""`dcvpn watch` without a lab: the decision rules (state changes, what to heal, the hourly
limit), the alert and metrics formats, the webhook (a loopback HTTP server of the test), the
options, and the loop itself over scripted cycles (cycles, duration, SIGTERM)."""

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from conftest import ROOT
from lab_support import cli
from pydantic import ValidationError

from inventory.loader import load_fabric
from inventory.model import Site
from inventory.topology import compile_fabric
from pipelines import watch_cmd
from pipelines.watch_alerts import (
    AlertSink,
    Webhook,
    WebhookUrlError,
    check_webhook,
    write_atomically,
)
from pipelines.watch_heal import heal_argv
from tasks.metrics_format import exposition
from tasks.validate_expect import expect_fabric
from tasks.validate_observed import BgpPeer, ChildSa, IkeSa, ReadError
from tasks.watch_metrics import Totals, watch_families
from tasks.watch_observe import (
    Cycle,
    Targets,
    bgp_observations,
    probe_runs,
    tunnel_observations,
)
from tasks.watch_rules import (
    WINDOW,
    Action,
    ActionKind,
    AlertKind,
    Check,
    HealPolicy,
    Observation,
    State,
    Step,
    WatchState,
    outcome,
    step,
)

FABRIC = str(ROOT / "tests" / "fabrics" / "wt-watch.yaml")
GW1, GW2, GW3 = "wt1-gw1", "wt2-gw1", "wt3-gw1"
T12 = "wt1-wt2-p0"
POLICY = HealPolicy(True, 3, 2, 30.0, frozenset({GW1, GW2, GW3}))


def gw(name: str, up: bool = True) -> Observation:
    return Observation(Check.GATEWAY, name, name, up, "present" if up else "gone")


def charon(name: str, up: bool = True) -> Observation:
    return Observation(Check.DAEMON, name, "charon", up, "pid 7 runs" if up else "pid 7 is gone")


def tunnel(at: str, peer: str, up: bool = True, name: str = T12) -> Observation:
    return Observation(Check.TUNNEL, at, name, up, "IKE SA ESTABLISHED" if up else "IKE SA none",
                       name, peer)


def healthy() -> list[Observation]:
    return [gw(GW1), gw(GW2), charon(GW1), charon(GW2), tunnel(GW1, GW2), tunnel(GW2, GW1)]


def run(observations: list[list[Observation]], policy: HealPolicy = POLICY,
        start: float = 1000.0, every: float = 10.0) -> list[Step]:
    """step() over cycles; the steps."""
    state, out = WatchState(), []
    for i, obs in enumerate(observations):
        result = step(state, obs, start + i * every, policy)
        state = result.state
        out.append(result)
    return out


# --- state changes ------------------------------------------------------------------------------

def test_first_cycle_alerts_only_what_is_down() -> None:
    obs = healthy()
    obs[-1] = tunnel(GW2, GW1, up=False)
    (first,) = run([obs])
    assert [(a.kind, a.gateway, a.check, a.subject, a.from_state, a.to_state)
            for a in first.alerts] == [(AlertKind.DOWN, GW2, Check.TUNNEL, T12, None,
                                        State.DOWN)]


def test_down_then_recovered_once_each() -> None:
    down = [*healthy()[:4], tunnel(GW1, GW2, up=False), tunnel(GW2, GW1, up=False)]
    steps = run([healthy(), down, down, healthy(), healthy()], HealPolicy(enabled=False))
    kinds = [[(a.kind, a.gateway) for a in s.alerts] for s in steps]
    assert kinds == [[], [(AlertKind.DOWN, GW1), (AlertKind.DOWN, GW2)], [],
                     [(AlertKind.RECOVERED, GW1), (AlertKind.RECOVERED, GW2)], []]
    recovered = steps[3].alerts[0]
    assert (recovered.from_state, recovered.to_state, recovered.tunnel) == (
        State.DOWN, State.UP, T12)


def test_alert_dict_has_every_field() -> None:
    down = [*healthy()[:5], tunnel(GW2, GW1, up=False)]
    alert = run([down], HealPolicy(enabled=False))[0].alerts[0]
    data = alert.as_dict()
    assert set(data) == {"time", "kind", "gateway", "check", "subject", "tunnel", "from", "to",
                         "reason", "action", "result", "detail"}
    assert data["time"] == "1970-01-01T00:16:40.000Z"
    assert (data["kind"], data["from"], data["to"], data["reason"]) == (
        "down", None, "down", "IKE SA none")
    json.dumps(data)  # plain JSON


# --- what to heal -------------------------------------------------------------------------------

def test_dead_charon_is_restarted_at_once_and_its_tunnels_left_alone() -> None:
    dead = [gw(GW1), gw(GW2), charon(GW1), charon(GW2, up=False),
            tunnel(GW1, GW2, up=False), tunnel(GW2, GW1, up=False)]
    steps = run([dead, dead, dead])
    assert [(a.kind, a.gateway, a.target) for a in steps[0].actions] == [
        (ActionKind.RESTART, GW2, "charon")]
    assert steps[0].actions[0].reason == "charon is not running: pid 7 is gone"
    # the state alert says what watch does about it
    daemon_alert = next(a for a in steps[0].alerts if a.check is Check.DAEMON)
    assert daemon_alert.action == "restart charon"
    # while the restart settles (30 s): neither a second restart nor an initiate
    assert steps[1].actions == () and steps[2].actions == ()


def test_tunnel_is_initiated_after_heal_after_cycles_from_the_first_end() -> None:
    down = [*healthy()[:4], tunnel(GW1, GW2, up=False), tunnel(GW2, GW1, up=False)]
    steps = run([down, down, down])
    assert steps[0].actions == ()
    assert [(a.kind, a.gateway, a.target) for a in steps[1].actions] == [
        (ActionKind.INITIATE, GW1, T12)]
    assert steps[1].actions[0].reason == "tunnel down for 2 cycles: IKE SA none"
    assert steps[2].actions == ()  # settling


def test_initiate_from_the_other_end_when_the_first_cannot() -> None:
    down = [gw(GW1), gw(GW2), charon(GW1), charon(GW2), tunnel(GW1, GW2, up=False),
            tunnel(GW2, GW1, up=False)]
    only_gw2 = HealPolicy(True, 3, 1, 30.0, frozenset({GW2}))
    (first,) = run([down], only_gw2)
    assert [(a.gateway, a.target) for a in first.actions] == [(GW2, T12)]


def test_no_initiate_towards_a_dead_charon() -> None:
    # GW2's charon is dead and may not be restarted here: initiating from GW1 cannot help
    down = [gw(GW1), gw(GW2), charon(GW1), charon(GW2, up=False), tunnel(GW1, GW2, up=False)]
    steps = run([down, down, down], HealPolicy(True, 3, 1, 0.0, frozenset({GW1})))
    assert all(s.actions == () for s in steps)
    alive = [gw(GW1), gw(GW2), charon(GW1), charon(GW2), tunnel(GW1, GW2, up=False)]
    assert [a.gateway for a in run([alive], HealPolicy(True, 3, 1, 0.0,
                                                      frozenset({GW1})))[0].actions] == [GW1]


def test_nothing_is_healed_on_gateways_watch_may_not_touch() -> None:
    down = [gw(GW1), gw(GW2), charon(GW1, up=False), tunnel(GW2, GW1, up=False)]
    steps = run([down, down, down], HealPolicy(True, 3, 1, 0.0, frozenset()))
    assert all(s.actions == () for s in steps)


def test_no_heal_only_observes() -> None:
    dead = [gw(GW2), charon(GW2, up=False)]
    steps = run([dead, dead], HealPolicy(False, 3, 1, 0.0, frozenset({GW2})))
    assert all(s.actions == () for s in steps)
    assert [a.kind for a in steps[0].alerts] == [AlertKind.DOWN]
    assert steps[0].alerts[0].action is None


def test_a_gone_gateway_gets_no_restart() -> None:
    gone = [gw(GW2, up=False), charon(GW2, up=False)]
    assert run([gone])[0].actions == ()


# --- the hourly limit ---------------------------------------------------------------------------

def test_limit_refuses_and_says_so_once_then_allows_after_the_hour() -> None:
    dead = [gw(GW2), charon(GW2, up=False)]
    policy = HealPolicy(True, 2, 1, 0.0, frozenset({GW2}))
    state = WatchState()
    taken, limited = [], []
    for t in (0.0, 100.0, 200.0, 300.0):
        result = step(state, dead, t, policy)
        state = result.state
        taken.append(len(result.actions))
        limited.append([a for a in result.alerts if a.kind is AlertKind.RATE_LIMITED])
    assert taken == [1, 1, 0, 0]
    assert [len(x) for x in limited] == [0, 0, 1, 0]  # said once
    said = limited[2][0]
    assert said.gateway == GW2 and said.action == "restart charon"
    assert said.reason.startswith(f"2 action(s) on {GW2} in the last hour (limit 2): not done")
    assert step(state, dead, 300.0, policy).refused != ()
    # the first action leaves the window an hour after it was taken
    later = step(state, dead, WINDOW + 1.0, policy)
    assert len(later.actions) == 1 and later.state.limited == frozenset()
    again = step(later.state, dead, WINDOW + 2.0, policy)
    assert [a.kind for a in again.alerts] == [AlertKind.RATE_LIMITED]


def test_limit_counts_per_gateway() -> None:
    dead = [gw(GW1), gw(GW2), charon(GW1, up=False), charon(GW2, up=False)]
    policy = HealPolicy(True, 1, 1, 0.0, frozenset({GW1, GW2}))
    first, second = run([dead, dead], policy)
    assert sorted(a.gateway for a in first.actions) == [GW1, GW2]
    assert second.actions == ()
    assert sorted(a.gateway for a in second.alerts if a.kind is AlertKind.RATE_LIMITED) == [
        GW1, GW2]


def test_outcome_alert() -> None:
    action = Action(ActionKind.INITIATE, GW1, T12, "tunnel down for 2 cycles: IKE SA none")
    data = outcome(action, False, "swanctl failed", 0.0).as_dict()
    assert (data["kind"], data["gateway"], data["tunnel"], data["action"], data["result"],
            data["detail"], data["reason"]) == (
        "action", GW1, T12, f"initiate {T12}", "failed", "swanctl failed", action.reason)


# --- observations from readings (pure) ----------------------------------------------------------

def test_tunnel_and_bgp_observations() -> None:
    compiled = compile_fabric(load_fabric(FABRIC).fabric)
    exp = expect_fabric(compiled)[GW1]
    child = ChildSa(T12, "INSTALLED", "AES_GCM_16", 256, None, None)
    sas = (IkeSa(T12, "ESTABLISHED", "192.0.2.232", "x", None, None, None, None, None,
                 (child,)),
           IkeSa("wt1-wt3-p0", "CONNECTING", "192.0.2.233", "x", None, None, None, None, None))
    obs = {o.subject: o for o in tunnel_observations(exp, sas, {"wt1-wt3-p0": "no proposal"})}
    assert obs[T12].up and obs[T12].peer == GW2
    assert not obs["wt1-wt3-p0"].up
    assert obs["wt1-wt3-p0"].reason == "IKE SA CONNECTING, CHILD SA none; last error: no proposal"
    unread = tunnel_observations(exp, ReadError("vici: refused"), {})
    assert [o.reason for o in unread] == ["unreadable: vici: refused"] * 2
    to_gw2 = next(b for b in exp.bgp if b.peer_gateway == GW2)
    peers = (BgpPeer(to_gw2.address, 65232, "Established", 0),)
    found = {(o.check, o.subject): o for o in bgp_observations(compiled, exp, peers)}
    assert found[(Check.BGP, str(to_gw2.address))].up
    prefixes = found[(Check.PREFIXES, str(to_gw2.address))]
    assert not prefixes.up and prefixes.reason.startswith("0 received, at least 1 expected")
    other = next(b for b in exp.bgp if b.peer_gateway == GW3)
    assert found[(Check.BGP, str(other.address))].reason == f"no neighbor {other.address}"


def test_probes_run_from_every_other_site() -> None:
    compiled = compile_fabric(load_fabric(FABRIC).fabric)
    runs = probe_runs(compiled, [GW1, GW2, GW3])
    assert [(r.gateway, r.source, r.subject) for r in runs] == [
        (GW1, IPv4Address("10.231.0.1"), "wt2/web from wt1"),
        (GW3, IPv4Address("10.233.0.1"), "wt2/web from wt3")]
    assert probe_runs(compiled, [GW2, GW3])[0].gateway == GW3


def test_model_probes_are_strict() -> None:
    base = {"name": "s1", "id": 1, "prefixes": ["10.9.0.0/24"],
            "gateways": [{"name": "s1-gw1", "platform": "strongswan", "transport": "local",
                          "host": "localhost", "public_ip": "192.0.2.9"}]}
    site = Site.model_validate({**base, "probes": [{"name": "web", "address": "10.9.0.5",
                                                   "port": 443}]})
    assert site.probes[0].address == IPv4Address("10.9.0.5")
    assert Site.model_validate(base).probes == ()
    for bad in ({"name": "web", "address": "10.9.0.5", "port": 0},
                {"name": "web", "address": "10.9.0.5", "port": 80, "proto": "udp"}):
        with pytest.raises(ValidationError):
            Site.model_validate({**base, "probes": [bad]})


# --- metrics ------------------------------------------------------------------------------------

def test_watch_metrics_exposition(tmp_path: Path) -> None:
    obs = [charon(GW2, up=False), tunnel(GW1, GW2)]
    action = Action(ActionKind.RESTART, GW2, "charon", "dead")
    totals = Totals().add([outcome(action, True, "", 0.0)], [(action, True)], [action], 2)
    text = exposition(watch_families(obs, totals, 0.25, 1700000000.0))
    lines = text.splitlines()
    assert 'dcvpn_watch_check_up{check="daemon",gateway="wt2-gw1",subject="charon"} 0' in lines
    assert f'dcvpn_watch_check_up{{check="tunnel",gateway="wt1-gw1",subject="{T12}"}} 1' in lines
    assert "dcvpn_watch_cycles_total 2" in lines
    assert "dcvpn_watch_cycle_duration_seconds 0.25" in lines
    assert 'dcvpn_watch_alerts_total{kind="action"} 1' in lines
    assert 'dcvpn_watch_alerts_total{kind="down"} 0' in lines
    assert ('dcvpn_watch_actions_total{gateway="wt2-gw1",action="restart charon",result="ok"} 1'
            in lines)
    assert 'dcvpn_watch_actions_refused_total{gateway="wt2-gw1"} 1' in lines
    assert "# TYPE dcvpn_watch_actions_total counter" in lines
    path = tmp_path / "watch.prom"
    write_atomically(path, text)
    assert path.read_text() == text and oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["watch.prom"]


# --- webhook ------------------------------------------------------------------------------------

def test_webhook_urls() -> None:
    for url in ("http://127.0.0.1:8080/x", "http://localhost/", "https://[::1]:9/a",
                "http://127.1.2.3:1/"):
        assert check_webhook(url, False) == url
    with pytest.raises(WebhookUrlError, match="not a loopback address"):
        check_webhook("http://192.0.2.10/hook", False)
    with pytest.raises(WebhookUrlError, match="not a loopback address"):
        check_webhook("http://hooks.example.net/x", False)
    assert check_webhook("https://hooks.example.net/x", True)
    for bad in ("ftp://127.0.0.1/", "127.0.0.1:80", "http://user:pw@127.0.0.1/",
                "http://127.0.0.1:99999/"):
        with pytest.raises(WebhookUrlError):
            check_webhook(bad, True)


class Receiver:
    """A loopback HTTP server that keeps every POSTed JSON body."""

    def __init__(self, delay: float = 0.0) -> None:
        received: list[dict[str, object]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_webhook_posts_every_alert(receiver: Receiver, tmp_path: Path) -> None:
    hook = Webhook(receiver.url, timeout=2.0)
    out = (tmp_path / "out").open("w")
    sink = AlertSink(out, hook)
    for i in range(5):
        sink.emit({"kind": "down", "n": i})
    stats = hook.close(5.0)
    out.close()
    assert (stats.sent, stats.failed, stats.dropped, stats.unsent) == (5, 0, 0, 0)
    assert receiver.received == [{"kind": "down", "n": i} for i in range(5)]
    assert [json.loads(ln) for ln in (tmp_path / "out").read_text().splitlines()] == \
        receiver.received


def test_a_slow_webhook_never_holds_up_the_sender() -> None:
    with Receiver(delay=1.0) as slow:
        hook = Webhook(slow.url, timeout=0.3, max_queue=2)
        began = time.monotonic()
        for i in range(6):
            hook.send({"n": i})
        assert time.monotonic() - began < 0.2
        stats = hook.close(0.5)
        assert time.monotonic() - began < 3.0
    assert stats.dropped >= 3 and stats.sent == 0 and stats.failed >= 1
    assert stats.last_error is not None


# --- options, heal command ----------------------------------------------------------------------

def test_heal_runs_dcvpn_lab_heal() -> None:
    argv = heal_argv(Path("/lab"), Action(ActionKind.RESTART, GW2, "charon", "x"), 20.0)
    assert argv[1:] == ["-m", "pipelines.cli", "lab", "heal", GW2, "--lab-dir", "/lab",
                        "--format", "json", "--timeout", "20", "--restart", "charon"]
    argv = heal_argv(Path("/lab"), Action(ActionKind.INITIATE, GW1, T12, "x"), 5.0)
    assert argv[-2:] == ["--initiate", T12]


@pytest.mark.parametrize(("extra", "message"), [
    ((), "give --duration S or --cycles N"),
    (("--cycles", "0"), "--cycles must be above 0"),
    (("--cycles", "x"), "--cycles takes a whole number"),
    (("--duration", "5", "--interval", "-1"), "--interval must be above 0"),
    (("--cycles", "1", "--webhook", "http://192.0.2.1/"), "not a loopback address"),
    (("--cycles", "1", "--max-actions-per-hour", "nan"), "--max-actions-per-hour takes"),
])
def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str], extra: tuple[str, ...],
                            message: str) -> None:
    code, _, err = cli(capsys, watch_cmd.main, "watch", "-f", FABRIC, *extra)
    assert code == 2 and message in err, err


def test_no_lab_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("watch checks for root before it looks for the lab")
    code, out, err = cli(capsys, watch_cmd.main, "watch", "-f", FABRIC, "--lab-dir",
                         str(tmp_path), "--cycles", "1", "--format", "json")
    assert code == 3 and f"no lab in {tmp_path}" in err
    assert json.loads(out)["ok"] is False


# --- the loop over scripted cycles --------------------------------------------------------------

class Script:
    """Stands in for read_cycle: one list of observations per cycle (the last repeats)."""

    def __init__(self, cycles: list[list[Observation]], on_cycle: int = 0,
                 then: object = None) -> None:
        self.cycles = cycles
        self.count = 0
        self.on_cycle, self.then = on_cycle, then

    def __call__(self, _: Targets) -> Cycle:
        obs = self.cycles[min(self.count, len(self.cycles) - 1)]
        self.count += 1
        if self.count == self.on_cycle and callable(self.then):
            self.then()
        return Cycle(tuple(obs), {}, ())


def _targets() -> Targets:
    compiled = compile_fabric(load_fabric(FABRIC).fabric)
    return Targets(compiled, Path("/nonexistent"), (GW1, GW2), {}, expect_fabric(compiled), (),
                   1.0)


def _opts(cycles: int | None = None, duration: float | None = None,
          interval: float = 0.01) -> watch_cmd.Options:
    return watch_cmd.Options(interval, duration, cycles, 1.0, 1.0, 1.0, (True, 3, 1, 0.0))


def test_loop_heals_and_writes_metrics_each_cycle(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    dead = [gw(GW2), charon(GW2, up=False)]
    script = Script([dead, [gw(GW2), charon(GW2)]])
    monkeypatch.setattr(watch_cmd, "read_cycle", script)
    healed: list[Action] = []

    def heal(_: Path, action: Action, __: float) -> tuple[bool, str]:
        healed.append(action)
        return True, "started"

    out = (tmp_path / "alerts").open("w")
    metrics = tmp_path / "m.prom"
    with watch_cmd.Stop() as stop:
        result = watch_cmd.watch(_targets(), _opts(cycles=3), AlertSink(out), stop, metrics,
                                 heal)
    out.close()
    alerts = [json.loads(ln) for ln in (tmp_path / "alerts").read_text().splitlines()]
    assert [(a["kind"], a["action"], a["result"]) for a in alerts] == [
        ("down", "restart charon", None), ("action", "restart charon", "ok"),
        ("recovered", None, None)]
    assert [a.describe for a in healed] == ["restart charon"] and script.count == 3
    assert result.totals.cycles == 3 and result.state.down() == ()
    assert "dcvpn_watch_cycles_total 3" in metrics.read_text().splitlines()


def test_loop_stops_after_duration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(watch_cmd, "read_cycle", Script([[gw(GW1)]]))
    began = time.monotonic()
    with watch_cmd.Stop() as stop, (tmp_path / "a").open("w") as out:
        result = watch_cmd.watch(_targets(), _opts(duration=0.5, interval=0.1), AlertSink(out),
                                 stop, None)
    assert 0.45 < time.monotonic() - began < 2.0
    assert 3 <= result.totals.cycles <= 7


def test_sigterm_finishes_the_cycle_and_stops(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    # the signal arrives in the middle of cycle 2 (while it reads): cycle 2 still completes
    script = Script([[gw(GW1)], [gw(GW1, up=False)]], on_cycle=2,
                    then=lambda: os.kill(os.getpid(), signal.SIGTERM))
    monkeypatch.setattr(watch_cmd, "read_cycle", script)
    before = signal.getsignal(signal.SIGTERM)
    metrics = tmp_path / "m.prom"
    with watch_cmd.Stop() as stop, (tmp_path / "a").open("w") as out:
        result = watch_cmd.watch(_targets(), _opts(duration=30.0, interval=0.05),
                                 AlertSink(out), stop, metrics)
    assert stop.signal == "SIGTERM" and script.count == 2 and result.totals.cycles == 2
    assert [json.loads(ln)["kind"] for ln in (tmp_path / "a").read_text().splitlines()] == [
        "down"]
    assert "dcvpn_watch_cycles_total 2" in metrics.read_text().splitlines()
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored
