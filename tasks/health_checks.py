"""IKE and CHILD SA checks for gateways read through ConfigDriver.get_state (pure).

Like tasks.validate_checks.check_ike / check_child, with one difference: a device may not
report every field (a Junos summary shows no algorithms and no peer identity). A field that is
reported must equal the intent; a field that is not is not compared and the observed text says
so ("proposal not reported"), so a reader never passes a check on something it did not see
without saying it. dcvpn renders exactly one proposal and one identity per tunnel, so an
ESTABLISHED SA on a device running the rendered configuration can only have negotiated those.
"""

from collections.abc import Sequence

from tasks.validate_checks import (
    ESTABLISHED,
    INSTALLED,
    CheckResult,
    Kind,
    Status,
)
from tasks.validate_expect import Proposal, TunnelExpect
from tasks.validate_observed import ChildSa, IkeSa, ReadError


def _result(kind: Kind, exp: TunnelExpect, ok: bool, expected: str,
            observed: str) -> CheckResult:
    return CheckResult(kind, exp.gateway, exp.name, Status.PASS if ok else Status.FAIL,
                       expected, observed, tuple(sorted(set(exp.sites))),
                       tuple(sorted({exp.gateway, exp.peer_gateway})))


def _compare(expected: Proposal, observed: Proposal) -> tuple[bool, str]:
    """(matches, description) comparing only what was reported."""
    if observed.encryption in ("", "?"):
        return True, "proposal not reported"
    same = (expected.encryption == observed.encryption
            and (observed.key_size is None or expected.key_size == observed.key_size)
            and expected.integrity == observed.integrity
            and (observed.prf is None or expected.prf == observed.prf)
            and (observed.dh_group is None or expected.dh_group == observed.dh_group))
    return same, observed.describe()


def check_ike_state(exp: TunnelExpect, sas: Sequence[IkeSa] | ReadError) -> CheckResult:
    expected = f"IKE SA {ESTABLISHED} with {exp.remote_id} ({exp.ike.describe()})"
    if isinstance(sas, ReadError):
        return _result(Kind.IKE, exp, False, expected, f"unreadable: {sas}")
    mine = [sa for sa in sas if sa.name == exp.name]
    up = [sa for sa in mine if sa.state == ESTABLISHED]
    if not up:
        states = ", ".join(sorted({sa.state for sa in mine}))
        return _result(Kind.IKE, exp, False, expected,
                       f"IKE SA {states}" if mine else f"no IKE SA with {exp.remote_host}")
    for sa in up:
        seen = Proposal(sa.encryption or "", sa.key_size, sa.integrity, sa.prf, sa.dh_group)
        same, described = _compare(exp.ike, seen)
        identity_ok = not sa.remote_id or sa.remote_id == exp.remote_id
        peer = sa.remote_id or f"{sa.remote_host} (identity not reported)"
        if same and identity_ok:
            return _result(Kind.IKE, exp, True, expected,
                           f"IKE SA {ESTABLISHED} with {peer} ({described})")
    sa = up[0]
    seen = Proposal(sa.encryption or "", sa.key_size, sa.integrity, sa.prf, sa.dh_group)
    return _result(Kind.IKE, exp, False, expected,
                   f"IKE SA {ESTABLISHED} with {sa.remote_id or sa.remote_host} "
                   f"({_compare(exp.ike, seen)[1]})")


def check_child_state(exp: TunnelExpect, sas: Sequence[IkeSa] | ReadError) -> CheckResult:
    expected = f"CHILD SA {INSTALLED} ({exp.esp.describe()})"
    if isinstance(sas, ReadError):
        return _result(Kind.CHILD, exp, False, expected, f"unreadable: {sas}")
    children: list[ChildSa] = [c for sa in sas if sa.name == exp.name for c in sa.children]
    installed = [c for c in children if c.state == INSTALLED]
    if not installed:
        what = (f"CHILD SA {', '.join(sorted({c.state for c in children}))}" if children
                else "no CHILD SA")
        return _result(Kind.CHILD, exp, False, expected, what)
    for child in installed:
        seen = Proposal(child.encryption, child.key_size, child.integrity, None, child.dh_group)
        same, described = _compare(exp.esp, seen)
        if same:
            return _result(Kind.CHILD, exp, True, expected, f"CHILD SA {INSTALLED} ({described})")
    child = installed[0]
    seen = Proposal(child.encryption, child.key_size, child.integrity, None, child.dh_group)
    return _result(Kind.CHILD, exp, False, expected,
                   f"CHILD SA {INSTALLED} ({_compare(exp.esp, seen)[1]})")
