"""What the IOS-XE NETCONF driver needs to know about the device: capabilities, the two ways
to arm a dead-man switch, and the device's wording of the answers that matter.

Wording marked [U] is the emulator's (lab/emulators/iosxe*.py) and RFC 6241's sense, not
checked on a real device; each pattern is a regular expression searched case-insensitively.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

from drivers.timers import TimerKind

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
CISCO_IA_NS = "http://cisco.com/yang/cisco-ia"
CLI_RPC_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-cli-rpc"
CAPABILITY = "urn:ietf:params:netconf:capability:"


class Strategy(StrEnum):
    """How a confirmed commit is armed (target option `commit`, default: by the hello)."""

    CONFIRMED = "confirmed"  # RFC 6241 :confirmed-commit:1.1 with <persist>
    REVERT = "revert"  # cisco-ia checkpoint + rollback revert-timer, then a plain commit


@dataclass(frozen=True, slots=True)
class StrategySpec:
    timer: TimerKind
    # every capability the hello must list for the strategy (prefix match)
    needs: tuple[str, ...]


STRATEGIES: dict[Strategy, StrategySpec] = {
    Strategy.CONFIRMED: StrategySpec(TimerKind.NETCONF_CONFIRMED,
                                     (f"{CAPABILITY}candidate:1.0",
                                      f"{CAPABILITY}confirmed-commit:1.1")),
    Strategy.REVERT: StrategySpec(TimerKind.IOSXE_REVERT,
                                  (f"{CAPABILITY}candidate:1.0", f"{CISCO_IA_NS}?")),
}
STRATEGY_PREFERENCE = (Strategy.CONFIRMED, Strategy.REVERT)

# datastores locked for an edit, in this order (released in reverse): IOS-XE keeps running
# and candidate in step, and a commit needs both unlocked by others
LOCK_ORDER = ("running", "candidate")
LOCK_DENIED_TAGS = frozenset({"lock-denied", "in-use"})
# session-id 0 in a lock-denied reply: nobody holds the lock, the candidate is dirty
DIRTY_CANDIDATE_HOLDER = "0"

PERSIST_PREFIX = "dcvpn-"  # persist tokens dcvpn makes: dcvpn-<32 hex>
PROBE_PERSIST_ID = "dcvpn-probe-never-a-token"


def _patterns(*texts: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(t, re.IGNORECASE) for t in texts)


# [U] cancel-commit with a persist-id that is no token: the answer when nothing is pending
NOTHING_PENDING = _patterns(r"\bno (pending |ongoing )?confirmed commit",
                            r"\bnot in (a )?confirmed commit")
# [U] answers that say a confirmed commit is pending (someone else's or a persistent one)
PENDING_ANSWERS = _patterns(r"persist-id", r"confirmed commit of session \d+ is pending",
                            r"belongs to session \d+")
# [U] a commit or cancel-commit naming a persist-id the device does not have pending
WRONG_PERSIST_ID = _patterns(r"persist-id does not match")
# [U] cisco-ia / CLI: no timed rollback is armed
NO_TIMED_ROLLBACK = _patterns(r"no rollback confirmed change pending")
# cisco-ia checkpoint without `archive path` configured
NO_ARCHIVE_PATH = _patterns(r"archive path not specified")
# cisco-ia checkpoint <result>: the archive file it wrote
CHECKPOINT_RESULT = re.compile(r"checkpoint\s+(?P<name>\S+)\s+created", re.IGNORECASE)

# [U] cisco-ia has no confirm: the exec command goes through Cisco-IOS-XE-cli-rpc
CONFIRM_CLI = "do configure confirm"
