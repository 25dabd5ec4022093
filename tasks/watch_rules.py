"""`dcvpn watch`: what changed, what to heal, and how often (pure: no I/O, no clock).

Each cycle the watcher observes every check (a gateway answering, a daemon the lab started,
a tunnel seen from one end, a BGP session, the prefixes it brings, a route, a LAN-to-LAN
ping, an application probe) as up or down with a reason. `step` compares that with the last
cycle and returns the new state, one alert per state change, and the heal actions to take:

- a dead daemon that may be restarted (charon) is restarted at once;
- a tunnel down for `heal_after` cycles in a row is re-initiated from one end whose charon
  runs (the first such end by name), unless the other end's charon is dead, or an action on
  the tunnel or on either end's charon is still settling (`settle` seconds, so a healed thing
  gets time to come back);
- never more than `max_per_hour` actions per gateway in any sliding hour: a refused action
  is said once (a `rate-limited` alert) until the gateway may act again;
- an action no end can carry out because its device does not support it
  (`HealPolicy.unsupported`, e.g. a JunOS gateway read through its driver) is never decided,
  so it never counts against the limit: it is said once per outage (a `not-supported` alert,
  when the tunnel has been down `heal_after` cycles or the daemon is first seen dead).

Actions count when they are decided, not when they succeed: a failing heal cannot retry
more often than the limit allows.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

WINDOW = 3600.0  # the sliding window of the action limit (seconds)
CHARON = "charon"
RESTARTABLE = frozenset({CHARON})


class Check(StrEnum):
    GATEWAY = "gateway"  # subject: the gateway; it runs / answers
    DAEMON = "daemon"  # subject: daemon name
    TUNNEL = "tunnel"  # subject: tunnel name (IKE SA established, CHILD SA installed)
    BGP = "bgp"  # subject: neighbor address
    PREFIXES = "prefixes"  # subject: neighbor address (at least the peer site's prefixes)
    ROUTE = "route"  # subject: prefix, in the kernel table
    PING = "ping"  # subject: source site->target site
    PROBE = "probe"  # subject: <site>/<probe> from <site>


class State(StrEnum):
    UP = "up"
    DOWN = "down"


class ActionKind(StrEnum):
    RESTART = "restart"  # target: a daemon
    INITIATE = "initiate"  # target: a tunnel


class AlertKind(StrEnum):
    DOWN = "down"
    RECOVERED = "recovered"
    ACTION = "action"
    RATE_LIMITED = "rate-limited"
    UNSUPPORTED = "not-supported"


Key = tuple[Check, str, str]  # (check, gateway, subject)


@dataclass(frozen=True, slots=True)
class Observation:
    check: Check
    gateway: str
    subject: str
    up: bool
    reason: str  # what was seen, in one line
    tunnel: str | None = None  # the tunnel this check belongs to, if any
    peer: str | None = None  # the other end's gateway (tunnels)

    @property
    def key(self) -> Key:
        return (self.check, self.gateway, self.subject)

    @property
    def state(self) -> State:
        return State.UP if self.up else State.DOWN


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    gateway: str
    target: str  # daemon or tunnel name
    reason: str

    @property
    def describe(self) -> str:
        return f"{self.kind} {self.target}"

    @property
    def tunnel(self) -> str | None:
        return self.target if self.kind is ActionKind.INITIATE else None


@dataclass(frozen=True, slots=True)
class Alert:
    time: str  # ISO 8601, UTC
    kind: AlertKind
    gateway: str
    reason: str
    check: Check | None = None
    subject: str | None = None
    tunnel: str | None = None
    from_state: State | None = None
    to_state: State | None = None
    action: str | None = None  # what watch does (or did, or may not do) about it
    result: str | None = None  # ok | failed (action alerts)
    detail: str | None = None  # what the action reported

    def as_dict(self) -> dict[str, str | None]:
        return {"time": self.time, "kind": str(self.kind), "gateway": self.gateway,
                "check": str(self.check) if self.check else None, "subject": self.subject,
                "tunnel": self.tunnel,
                "from": str(self.from_state) if self.from_state else None,
                "to": str(self.to_state) if self.to_state else None,
                "reason": self.reason, "action": self.action, "result": self.result,
                "detail": self.detail}


@dataclass(frozen=True, slots=True)
class HealPolicy:
    enabled: bool = True
    max_per_hour: int = 3
    heal_after: int = 2  # consecutive down cycles before a tunnel is re-initiated
    settle: float = 30.0  # seconds a healed daemon or tunnel is left alone
    healable: frozenset[str] = frozenset()  # gateways watch may act on
    restartable: frozenset[str] = RESTARTABLE
    # (gateway, action kind) -> why that device cannot do it (not-supported alerts)
    unsupported: Mapping[tuple[str, ActionKind], str] = field(default_factory=dict)

    def can(self, gateway: str, kind: ActionKind) -> bool:
        return gateway in self.healable and (gateway, kind) not in self.unsupported


@dataclass(frozen=True)
class WatchState:
    states: Mapping[Key, State] = field(default_factory=dict)
    down_cycles: Mapping[Key, int] = field(default_factory=dict)
    actions: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # gw -> times
    settling: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (gw, target)
    limited: frozenset[str] = frozenset()  # gateways already told they hit the limit

    def down(self) -> tuple[Key, ...]:
        return tuple(sorted(k for k, s in self.states.items() if s is State.DOWN))


@dataclass(frozen=True)
class Step:
    state: WatchState
    alerts: tuple[Alert, ...]
    actions: tuple[Action, ...]  # allowed: to be carried out now
    refused: tuple[Action, ...] = ()  # over the limit: not done


def stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


# --- the limit ----------------------------------------------------------------------------------

def recent(times: Sequence[float], now: float) -> tuple[float, ...]:
    """The actions still inside the sliding hour."""
    return tuple(t for t in times if now - WINDOW < t <= now)


def allowed(state: WatchState, gateway: str, now: float, limit: int) -> bool:
    return len(recent(state.actions.get(gateway, ()), now)) < limit


# --- what to heal -------------------------------------------------------------------------------

def _settling(state: WatchState, gateway: str, target: str, now: float) -> bool:
    return state.settling.get((gateway, target), float("-inf")) > now


def candidates(observations: Sequence[Observation], state: WatchState,
               down_cycles: Mapping[Key, int], policy: HealPolicy,
               now: float) -> list[Action]:
    """What would heal this cycle's faults, before the limit is applied."""
    if not policy.enabled:
        return []
    answering = {o.gateway for o in observations if o.check is Check.GATEWAY and o.up}
    dead = {(o.gateway, o.subject): o for o in observations
            if o.check is Check.DAEMON and not o.up}
    out: list[Action] = []
    restarting: set[str] = set()
    for (gw, daemon), obs in sorted(dead.items()):
        if (policy.can(gw, ActionKind.RESTART) and gw in answering
                and daemon in policy.restartable
                and not _settling(state, gw, daemon, now)):
            out.append(Action(ActionKind.RESTART, gw, daemon,
                              f"{daemon} is not running: {obs.reason}"))
            restarting.add(gw)
    charon_dead = {gw for gw, daemon in dead if daemon == CHARON}
    busy = restarting | {gw for gw in answering if _settling(state, gw, CHARON, now)}
    chosen: set[str] = set()
    for obs in sorted(observations, key=lambda o: (o.subject, o.gateway)):
        if (obs.check is not Check.TUNNEL or obs.up or obs.subject in chosen
                or down_cycles.get(obs.key, 0) < policy.heal_after):
            continue
        ends = {obs.gateway, obs.peer} - {None}
        if ends & busy or any(_settling(state, g, obs.subject, now) for g in ends if g):
            continue
        if obs.peer in charon_dead:
            continue  # nothing answers there: its charon needs starting first
        if (not policy.can(obs.gateway, ActionKind.INITIATE) or obs.gateway not in answering
                or obs.gateway in charon_dead):
            continue  # another end may still take it
        chosen.add(obs.subject)
        cycles = down_cycles[obs.key]
        out.append(Action(ActionKind.INITIATE, obs.gateway, obs.subject,
                          f"tunnel down for {cycles} cycles: {obs.reason}"))
    return out


def unsupported(observations: Sequence[Observation], down_cycles: Mapping[Key, int],
                policy: HealPolicy, wanted: Sequence[Action], at: str) -> list[Alert]:
    """One `not-supported` alert per outage that no end could heal for want of support."""
    if not policy.enabled or not policy.unsupported:
        return []
    out: list[Alert] = []
    said: set[str] = set()
    targets = {a.target for a in wanted}
    for obs in sorted(observations, key=lambda o: (o.subject, o.gateway)):
        cycles = down_cycles.get(obs.key, 0)
        if obs.up or obs.subject in targets or obs.subject in said:
            continue
        if obs.check is Check.TUNNEL and cycles == policy.heal_after:
            kind, reason = ActionKind.INITIATE, f"tunnel down for {cycles} cycles: {obs.reason}"
            ends = sorted({g for g in (obs.gateway, obs.peer) if g})
        elif (obs.check is Check.DAEMON and cycles == 1
              and obs.subject in policy.restartable):
            kind, reason = ActionKind.RESTART, f"{obs.subject} is not running: {obs.reason}"
            ends = [obs.gateway]
        else:
            continue
        why = [policy.unsupported[(g, kind)] for g in ends if (g, kind) in policy.unsupported]
        if not why or any(policy.can(g, kind) for g in ends):
            continue
        said.add(obs.subject)
        out.append(Alert(at, AlertKind.UNSUPPORTED, obs.gateway, reason, obs.check, obs.subject,
                         obs.tunnel, action=f"{kind} {obs.subject}", result="not-supported",
                         detail="; ".join(dict.fromkeys(why))))
    return out


# --- one cycle ----------------------------------------------------------------------------------

def _state_alert(obs: Observation, before: State | None, at: str,
                 planned: Mapping[tuple[str, str], Action]) -> Alert | None:
    now_state = obs.state
    if before is now_state or (before is None and now_state is State.UP):
        return None
    kind = AlertKind.RECOVERED if now_state is State.UP else AlertKind.DOWN
    action = planned.get((obs.gateway, obs.subject))
    return Alert(at, kind, obs.gateway, obs.reason, obs.check, obs.subject, obs.tunnel,
                 before, now_state, action.describe if action else None)


def step(state: WatchState, observations: Sequence[Observation], now: float,
         policy: HealPolicy) -> Step:
    """Alerts for every state change, and the heal actions the limit allows."""
    at = stamp(now)
    down_cycles = {o.key: state.down_cycles.get(o.key, 0) + 1
                   for o in observations if not o.up}
    wanted = candidates(observations, state, down_cycles, policy, now)
    actions = dict(state.actions)
    settling = {k: v for k, v in state.settling.items() if v > now}
    limited = set(state.limited)
    taken: list[Action] = []
    refused: list[Alert] = []
    over: list[Action] = []
    for action in wanted:
        times = recent(actions.get(action.gateway, ()), now)
        if len(times) >= policy.max_per_hour:
            over.append(action)
            if action.gateway not in limited:
                limited.add(action.gateway)
                refused.append(Alert(
                    at, AlertKind.RATE_LIMITED, action.gateway,
                    f"{len(times)} action(s) on {action.gateway} in the last hour (limit "
                    f"{policy.max_per_hour}): not done, {action.reason}",
                    tunnel=action.tunnel, action=action.describe))
            continue
        actions[action.gateway] = (*times, now)
        settling[(action.gateway, action.target)] = now + policy.settle
        limited.discard(action.gateway)
        taken.append(action)
    planned = {(a.gateway, a.target): a for a in taken}
    alerts = [a for o in observations
              if (a := _state_alert(o, state.states.get(o.key), at, planned)) is not None]
    refused += unsupported(observations, down_cycles, policy, wanted, at)
    states = {**state.states, **{o.key: o.state for o in observations}}
    new = WatchState(states, down_cycles, {g: t for g, t in actions.items() if t},
                     settling, frozenset(limited))
    return Step(new, (*alerts, *refused), tuple(taken), tuple(over))


def outcome(action: Action, ok: bool, detail: str, now: float) -> Alert:
    """The alert for an action carried out (or failed)."""
    return Alert(stamp(now), AlertKind.ACTION, action.gateway, action.reason,
                 tunnel=action.tunnel, action=action.describe,
                 result="ok" if ok else "failed", detail=detail)

