"""Bad input gives clear `file:line: path: ...` lines (and exit 2 from the CLI), never a
traceback; crypto profiles with field-by-field overrides."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXAMPLES

from inventory.errors import FabricLoadError
from inventory.loader import load_fabric, parse_fabric
from inventory.model import Crypto
from pipelines.cli import main

LAB3 = (EXAMPLES / "lab3.yaml").read_text(encoding="utf-8")
SCHEMA = "error DCV001"


def _edit(old: str, new: str, text: str = LAB3) -> str:
    assert old in text, f"{old!r} is not in the example any more: update the test"
    return text.replace(old, new, 1)


def _line(text: str, fragment: str, occurrence: int = 1) -> int:
    """1-based line of the `occurrence`-th line containing `fragment`."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    return hits[occurrence - 1]


@dataclass(frozen=True)
class Bad:
    id: str
    text: str
    # the lines the user must see: (line number, start of the rest after "file:line: ");
    # only YAML syntax messages are cut short (libyaml and PyYAML word their ends differently)
    expected: tuple[tuple[int, str], ...]
    exact: bool = True  # False: other lines may be there too (see the xfail test below)


def _bad_cases() -> list[Bad]:
    wrong_type = _edit("    id: 1\n", "    id: abc\n")
    unknown = _edit("        public_ip: 192.0.2.2\n", "        publc_ip: 192.0.2.2\n")
    unknown_top = _edit("fabric:\n", "fabrc:\n")
    missing = _edit("    id: 2\n", "")
    dup = _edit("    id: 2\n", "    id: 2\n    id: 4\n")
    syntax = _edit("    asn: 65002\n", "    asn: 65002: x\n")
    tab = _edit("    id: 3\n", "\tid: 3\n")
    unclosed = "fabric:\n  name: x\n  hubs: [a, b\n  topology: full_mesh\nsites: []\n"
    bad_value = _edit("    profile: strict\n", "    profile: strict\n    ike: {dh_group: 7}\n")
    bad_duration = _edit("    profile: strict\n",
                         "    profile: strict\n    esp: {lifetime: 1 hour}\n")
    bad_ip = _edit("public_ip: 192.0.2.3", "public_ip: 192.0.2.300")
    bad_enum = _edit("        platform: strongswan\n", "        platform: vyos\n")
    return [
        Bad("wrong-type", wrong_type, ((_line(wrong_type, "id: abc"),
                                        f"sites[0].id: {SCHEMA}: Input should be a valid "
                                        "integer, unable to parse string as an integer "
                                        "(got 'abc')"),)),
        Bad("unknown-key", unknown, (
            (_line(unknown, "- name: lon1-gw1"),
             f"sites[1].gateways[0].public_ip: {SCHEMA}: required field is missing"),
            (_line(unknown, "publc_ip"), f"sites[1].gateways[0].publc_ip: {SCHEMA}: "
                                         "unknown key 'publc_ip' (did you mean 'public_ip'?)"),
        ), exact=False),
        Bad("unknown-top-level-key", unknown_top, (
            (_line(unknown_top, "fabrc:"), f"fabric: {SCHEMA}: required field is missing"),
            (_line(unknown_top, "fabrc:"),
             f"fabrc: {SCHEMA}: unknown key 'fabrc' (did you mean 'fabric'?)"),
        )),
        Bad("missing-key", missing, ((_line(missing, "- name: lon1"),
                                      f"sites[1].id: {SCHEMA}: required field is missing"),)),
        Bad("duplicate-key", dup, ((_line(dup, "id: 4"),
                                    f"sites[1].id: {SCHEMA}: key appears twice in the same "
                                    "mapping"),)),
        Bad("yaml-syntax", syntax, ((_line(syntax, "asn: 65002: x"),
                                     "YAML syntax error: mapping values are not allowed"),)),
        Bad("yaml-tab", tab, ((_line(tab, "\tid: 3"), "YAML syntax error: found a tab "
                                                      "character that violates indentation"),)),
        Bad("yaml-unclosed", unclosed, ((4, "YAML syntax error: did not find expected ',' or "
                                            "']'"),)),
        Bad("two-documents", "fabric: {}\n---\nsites: []\n",
            ((2, "YAML syntax error: but found another document"),)),
        Bad("python-tag", "fabric: !!python/object/apply:os.system ['true']\n",
            ((1, "YAML syntax error: could not determine a constructor for the tag "
                 "'tag:yaml.org,2002:python/object/apply:os.system'"),)),
        Bad("empty", "", ((1, "expected a mapping with 'fabric:' and 'sites:' at the top "
                              "level"),)),
        Bad("comments-only", "# nothing yet\n",
            ((1, "expected a mapping with 'fabric:' and 'sites:' at the top level"),)),
        Bad("top-level-list", "- fabric\n- sites\n",
            ((1, "expected a mapping with 'fabric:' and 'sites:' at the top level"),)),
        Bad("top-level-scalar", "fabric\n",
            ((1, "expected a mapping with 'fabric:' and 'sites:' at the top level"),)),
        Bad("unknown-dh-group", bad_value, (
            (_line(bad_value, "dh_group: 7"), f"fabric.crypto.ike.dh_group: {SCHEMA}: unknown "
                                              "DH group 7; known: 1, 2, 5, 14, 15, 16, 17, 18, "
                                              "19, 20, 21, 22, 23, 24, 31, 32 (got 7)"),)),
        Bad("bad-duration", bad_duration, (
            (_line(bad_duration, "1 hour"), f"fabric.crypto.esp.lifetime: {SCHEMA}: '1 hour' "
                                            "is not a duration such as 8h, 30m or 10s "
                                            "(got '1 hour')"),)),
        Bad("bad-ip", bad_ip, ((_line(bad_ip, "192.0.2.300"),
                                f"sites[2].gateways[0].public_ip: {SCHEMA}: Input is not a "
                                "valid IPv4 address (got '192.0.2.300')"),), exact=False),
        Bad("bad-platform", bad_enum, ((_line(bad_enum, "vyos"),
                                        f"sites[0].gateways[0].platform: {SCHEMA}: Input should "
                                        "be 'strongswan', 'iosxe' or 'junos' (got 'vyos')"),),
            exact=False),
    ]


BAD = _bad_cases()


@pytest.mark.parametrize("case", BAD, ids=[b.id for b in BAD])
def test_bad_input_names_file_line_and_path(tmp_path: Path, case: Bad) -> None:
    path = tmp_path / "fabric.yaml"
    path.write_text(case.text, encoding="utf-8")
    with pytest.raises(FabricLoadError) as info:
        load_fabric(path)
    want = [f"{path}:{line}: {rest}" for line, rest in case.expected]
    got = info.value.lines
    matched = [g for g in got if any(g.startswith(w) for w in want)]
    assert len(matched) == len(want)
    assert all(g.startswith(w) for g, w in zip(matched, want, strict=True))
    if case.exact:
        assert got == matched
    assert str(info.value) == "\n".join(got)


@pytest.mark.parametrize("case", BAD, ids=[b.id for b in BAD])
def test_cli_reports_bad_input_with_exit_2(tmp_path: Path, case: Bad,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fabric.yaml"
    path.write_text(case.text, encoding="utf-8")
    assert main(["lint", "-f", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    for line, rest in case.expected:
        assert any(g.startswith(f"{path}:{line}: {rest}") for g in lines)
    if case.exact:
        assert len(lines) == len(case.expected)


def test_an_invalid_only_gateway_is_one_problem_not_two() -> None:
    text = _edit("        public_ip: 192.0.2.2\n", "        public_ip: 192.0.2.2\n        x: 1\n")
    with pytest.raises(FabricLoadError) as info:
        parse_fabric(text, "f.yaml")
    assert info.value.lines == [f"f.yaml:{_line(text, 'x: 1')}: sites[1].gateways[0].x: "
                                f"{SCHEMA}: unknown key 'x'"]


def _unreadable(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"fabric:\n  name: caf\xe9\n")
    return path, ("cannot read: 'utf-8' codec can't decode byte 0xe9 in position 19: "
                  "invalid continuation byte")


FILE_CASES: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "missing-file": lambda tmp: (tmp / "nope.yaml", "no such fabric file"),
    "directory": lambda tmp: (tmp, "is a directory, expected a fabric YAML file"),
    "not-utf8": _unreadable,
}


@pytest.mark.parametrize("kind", sorted(FILE_CASES))
def test_unreadable_files(tmp_path: Path, kind: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    path, message = FILE_CASES[kind](tmp_path)
    with pytest.raises(FabricLoadError) as info:
        load_fabric(path)
    assert info.value.lines == [f"{path}: {message}"]
    assert main(["lint", "-f", str(path)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{path}: {message}\n")


def test_all_schema_errors_are_reported_at_once() -> None:
    text = _edit("    id: 1\n", "    id: abc\n", _edit("    asn: 65003\n", "    asn: -5\n"))
    with pytest.raises(FabricLoadError) as info:
        parse_fabric(text, "f.yaml")
    paths = sorted(line.split(": ")[1] for line in info.value.lines)
    assert paths == ["sites[0].id", "sites[2].asn"]


# --- crypto profiles -------------------------------------------------------------------------

def _crypto(block: str) -> Crypto:
    text = _edit("  crypto:\n    profile: strict\n    dpd: {interval: 10s, action: restart}\n",
                 block)
    return parse_fabric(text, "f.yaml").fabric.fabric.crypto


STRICT = {"ike": {"encryption": "aes256gcm16", "prf": "sha384", "integrity": None,
                  "dh_group": 20, "lifetime": 8 * 3600},
          "esp": {"encryption": "aes256gcm16", "integrity": None, "pfs_group": 20,
                  "lifetime": 3600, "esn": False},
          "dpd": {"interval": 10, "action": "restart"}}


@pytest.mark.parametrize("block", ["  crypto: strict\n", "  crypto: {profile: strict}\n", ""],
                         ids=["name", "mapping", "omitted"])
def test_strict_profile_is_the_default(block: str) -> None:
    crypto = _crypto(block)
    assert crypto.profile == "strict"
    assert crypto.model_dump(exclude={"profile"}) == STRICT


def test_explicit_field_overrides_one_field_of_the_profile() -> None:
    crypto = _crypto("  crypto: {profile: cbc, esp: {lifetime: 30m}}\n")
    assert crypto.profile == "cbc"
    assert crypto.esp.model_dump() == {"encryption": "aes256", "integrity": "sha384",
                                       "pfs_group": 20, "lifetime": 1800, "esn": False}
    assert crypto.ike.model_dump() == {"encryption": "aes256", "prf": "sha384",
                                       "integrity": "sha384", "dh_group": 20,
                                       "lifetime": 8 * 3600}


def test_override_without_profile_name_starts_from_strict() -> None:
    crypto = _crypto("  crypto:\n    ike: {dh_group: 21}\n")
    assert crypto.ike.dh_group == 21
    dumped = crypto.model_dump(exclude={"profile"})
    dumped["ike"]["dh_group"] = 20
    assert dumped == STRICT


def test_pfs_can_be_switched_off_explicitly() -> None:
    assert _crypto("  crypto: {esp: {pfs_group: none}}\n").esp.pfs_group is None


def test_unknown_profile_is_a_schema_error() -> None:
    text = _edit("    profile: strict\n", "    profile: paranoid\n")
    with pytest.raises(FabricLoadError) as info:
        parse_fabric(text, "f.yaml")
    assert info.value.lines == [f"f.yaml:{_line(text, '  crypto:')}: fabric.crypto: {SCHEMA}: "
                                "unknown crypto profile 'paranoid'; known: strict, cbc, compat"]


def test_unknown_key_inside_a_profile_section_gets_a_hint() -> None:
    text = _edit("    profile: strict\n", "    profile: strict\n    esp: {lifetme: 30m}\n")
    with pytest.raises(FabricLoadError) as info:
        parse_fabric(text, "f.yaml")
    assert info.value.lines == [f"f.yaml:{_line(text, 'lifetme')}: fabric.crypto.esp.lifetme: "
                                f"{SCHEMA}: unknown key 'lifetme' (did you mean 'lifetime'?)"]


def test_the_model_is_frozen() -> None:
    loaded = parse_fabric(LAB3, "f.yaml")
    with pytest.raises(ValueError, match="frozen"):
        loaded.fabric.sites[0].gateways[0].name = "x"  # type: ignore[misc]
