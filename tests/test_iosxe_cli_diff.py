"""drivers.iosxe_cli_diff: skipping equal top-level statements changes no line of the diff."""

from lxml import etree

from drivers.iosxe_cli_diff import cli_diff, leaf_lines

NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-native"


def native(body: str) -> etree._Element:
    return etree.fromstring(f'<native xmlns="{NS}">{body}</native>')


def every_leaf(running: etree._Element, candidate: etree._Element) -> tuple[set[str], set[str]]:
    """The lines of the diff computed from every leaf, nothing skipped."""
    before, after = set(leaf_lines(running)), set(leaf_lines(candidate))
    return ({line.show() for line in before - after}, {line.show() for line in after - before})


def test_equal_statements_add_nothing_and_changed_ones_show_as_before() -> None:
    hostname = "<hostname>r1</hostname>"
    tunnel = "<interface><Tunnel><name>20</name><description>dcvpn x</description></Tunnel>" \
             "</interface>"
    running = native(hostname + tunnel + "<ip><domain><name>a.example</name></domain></ip>")
    candidate = native(hostname + tunnel.replace("dcvpn x", "dcvpn y")
                       + "<ip><domain><name>a.example</name></domain></ip>"
                       + "<ip><domain><name>b.example</name></domain></ip>")  # tag twice
    lines = cli_diff(running, candidate).splitlines()
    gone, new = every_leaf(running, candidate)
    assert {line[2:] for line in lines if line.startswith("- ")} == gone
    assert {line[2:] for line in lines if line.startswith("+ ")} == new
    assert "+ interface Tunnel20 / description dcvpn y" in lines
    assert "+ ip domain b.example" in lines  # a first child named like a key: a list entry
    assert not any("hostname" in line for line in lines)
    assert cli_diff(running, running) == ""
