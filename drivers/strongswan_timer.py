"""The rollback timer of a strongSwan+FRR gateway: a detached process ON THE HOST (pure text).

commit(confirm_timeout) starts, on the host and while it holds the state folder's lock,

    setsid sh <state>/timer.sh <token> <seconds> &

and records `pid`, `token`, `armed`, `started` and `deadline` (host epoch seconds) in
<state>/timer.state. The timer sleeps, then takes the lock (flock, so it waits for a commit
or confirm in progress), checks that timer.state still names its token, restores the backup
(restore.sh), reloads (apply.sh), writes <state>/expired (token, fired, restore_rc,
apply_rc) and removes timer.state. Nothing of dcvpn has to be alive for that: a new dcvpn
process reads timer.state to confirm (kill) or roll back.

Cancelling (confirm, rollback) also runs under the lock: the PID of timer.state is
signalled only if /proc/<pid>/cmdline is `sh <state>/timer.sh <token> ...` (a recycled PID
is never killed), and as a process group (setsid made it the leader; its `sleep` goes too).
"""

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

q = shlex.quote

TIMER_SCRIPT = "timer.sh"
TIMER_STATE = "timer.state"
EXPIRED = "expired"
LOCK = "lock"
LOCK_WAIT = 600  # seconds the timer waits for the lock before it gives up (logged)
LOCK_BUSY = 75  # flock's exit code when it could not take the lock in time
STOP_POLLS = 100  # x 0.05 s for a cancelled timer to exit before SIGKILL


@dataclass(frozen=True, slots=True)
class TimerState:
    pid: int
    token: str
    armed: int  # seconds
    started: int  # host epoch
    deadline: int  # host epoch


@dataclass(frozen=True, slots=True)
class Expired:
    token: str
    fired: int  # host epoch
    restore_rc: int
    apply_rc: int


@dataclass(frozen=True, slots=True)
class HostStatus:
    timer: TimerState | None
    alive: bool  # timer.state's PID is that timer process
    expired: Expired | None
    backup: bool  # a backup to roll back to exists

    @property
    def pending(self) -> bool:
        return self.timer is not None and self.alive


def _fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_timer_state(text: str) -> TimerState | None:
    f = _fields(text)
    try:
        return TimerState(int(f["pid"]), f["token"], int(f["armed"]), int(f["started"]),
                          int(f["deadline"]))
    except (KeyError, ValueError):
        return None


def parse_expired(text: str) -> Expired | None:
    f = _fields(text)
    try:
        return Expired(f["token"], int(f["fired"]), int(f.get("restore_rc", "0")),
                       int(f.get("apply_rc", "0")))
    except (KeyError, ValueError):
        return None


IS_TIMER = """is_timer() {{
  tr '\\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF "sh {timer} $2 "
}}
"""


def is_timer_function(state_dir: str) -> str:
    """sh function `is_timer PID TOKEN`: true if PID runs this folder's timer with TOKEN."""
    return IS_TIMER.format(timer=f"{state_dir}/{TIMER_SCRIPT}")


def status_command(state_dir: str) -> str:
    """One round trip: timer.state, expired, whether a backup exists, whether the timer
    process is alive. Sections start with `@@<name>`."""
    s = q(state_dir)
    return (is_timer_function(state_dir) + f"S={s}\n"
            'if [ -f "$S/timer.state" ]; then echo @@state; cat "$S/timer.state"; fi\n'
            'if [ -f "$S/expired" ]; then echo @@expired; cat "$S/expired"; fi\n'
            'if [ -d "$S/backup" ]; then echo @@backup; fi\n'
            'pid=$(sed -n "s/^pid=//p" "$S/timer.state" 2>/dev/null)\n'
            'token=$(sed -n "s/^token=//p" "$S/timer.state" 2>/dev/null)\n'
            'if [ -n "$pid" ] && is_timer "$pid" "$token"; then echo @@alive; fi\n')


def parse_status(output: str) -> HostStatus:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("@@"):
            current = sections.setdefault(line[2:].strip(), [])
        elif current is not None:
            current.append(line)
    timer = parse_timer_state("\n".join(sections["state"])) if "state" in sections else None
    expired = parse_expired("\n".join(sections["expired"])) if "expired" in sections else None
    return HostStatus(timer, "alive" in sections, expired, "backup" in sections)


def timer_script(gateway: str, state_dir: str) -> str:
    """timer.sh TOKEN SECONDS: sleep, then restore + reload unless cancelled meanwhile."""
    s = q(state_dir)
    fire = ('S=$1; token=$2\n'
            'grep -qx "token=$token" "$S/timer.state" 2>/dev/null || exit 0\n'
            'sh "$S/restore.sh"; r=$?\n'
            'sh "$S/apply.sh" > "$S/timer.apply.log" 2>&1; a=$?\n'
            '[ "$r" -ne 0 ] || rm -rf "$S/backup"\n'
            'printf "token=%s\\nfired=%s\\nrestore_rc=%s\\napply_rc=%s\\n" '
            '"$token" "$(date +%s)" "$r" "$a" > "$S/expired.new"\n'
            'mv -f "$S/expired.new" "$S/expired"\n'
            'rm -f "$S/timer.state"\n'
            'echo "dcvpn timer $token fired: restore $r, reload $a"\n')
    return (f"#!/bin/sh\n"
            f"# dcvpn rollback timer of {gateway} (generated): unless confirmed in time, put the\n"
            f"# files backed up before the commit back and reload strongSwan and FRR.\n"
            f"# Started as `setsid sh timer.sh TOKEN SECONDS`; `dcvpn confirm` kills it.\n"
            f"S={s}\n"
            f'sleep "$2"\n'
            f'flock -o -w {LOCK_WAIT} -E {LOCK_BUSY} "$S/lock" sh -c {q(fire)} sh "$S" "$1"\n'
            f'rc=$?\n'
            f'[ "$rc" -ne {LOCK_BUSY} ] || echo "dcvpn timer $1: lock busy for {LOCK_WAIT}s, '
            f'gave up"\n'
            f'exit "$rc"\n')


def arm_snippet(state_dir: str) -> str:
    """sh lines (inside commit.sh, lock held) that start the timer for $1 seconds with token
    $2 and record it; prints `@@timer <pid>`."""
    return ('if [ "$1" -gt 0 ]; then\n'
            f'  setsid sh "$S/{TIMER_SCRIPT}" "$2" "$1" </dev/null >>"$S/timer.log" 2>&1 &\n'
            '  pid=$!\n'
            '  now=$(date +%s)\n'
            '  printf "pid=%s\\ntoken=%s\\narmed=%s\\nstarted=%s\\ndeadline=%s\\n" '
            '"$pid" "$2" "$1" "$now" "$((now + $1))" > "$S/timer.state.new" || exit 11\n'
            '  mv -f "$S/timer.state.new" "$S/timer.state" || exit 11\n'
            '  echo "@@timer $pid"\n'
            'fi\n')


def cancel_function(state_dir: str) -> str:
    """sh function `cancel_timer PID TOKEN` (lock held): prints `@@cancel cancelled|dead|gone`.
    gone: timer.state no longer names TOKEN (it fired, or another confirm ran)."""
    return (is_timer_function(state_dir) +
            'cancel_timer() {\n'
            '  grep -qx "token=$2" "$S/timer.state" 2>/dev/null || { echo "@@cancel gone"; '
            'return 0; }\n'
            '  if is_timer "$1" "$2"; then\n'
            '    kill -TERM "-$1" 2>/dev/null\n'
            '    i=0\n'
            f'    while is_timer "$1" "$2" && [ "$i" -lt {STOP_POLLS} ]; do sleep 0.05; '
            'i=$((i + 1)); done\n'
            '    if is_timer "$1" "$2"; then kill -KILL "-$1" 2>/dev/null; fi\n'
            '    echo "@@cancel cancelled"\n'
            '  else\n'
            '    echo "@@cancel dead"\n'
            '  fi\n'
            '  rm -f "$S/timer.state"\n'
            '}\n')


def locked_argv(state_dir: str, script: str, args: Sequence[str], wait: int) -> list[str]:
    """argv running `sh script args...` holding the state folder's lock (flock exits
    LOCK_BUSY when it cannot take it within `wait` seconds)."""
    return ["flock", "-o", "-w", str(wait), "-E", str(LOCK_BUSY), f"{state_dir}/{LOCK}",
            "sh", script, *args]
