"""drivers.known_hosts.KnownHosts answers as paramiko's HostKeys.lookup, by index."""

from pathlib import Path

import paramiko  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.known_hosts import KnownHosts


def test_lookup_answers_as_paramiko_for_plain_hashed_and_several_key_types(
        tmp_path: Path) -> None:
    p256 = paramiko.ECDSAKey.generate(curve=ec.SECP256R1())
    p384 = paramiko.ECDSAKey.generate(curve=ec.SECP384R1())
    other = paramiko.ECDSAKey.generate(curve=ec.SECP256R1())
    hashed_name = paramiko.HostKeys.hash_host("[10.0.0.9]:830")
    lines = [
        f"[127.0.0.1]:2201 {p256.get_name()} {p256.get_base64()}",
        f"[127.0.0.1]:2201 {p384.get_name()} {p384.get_base64()}",
        f"[127.0.0.1]:2202,gw2.example {other.get_name()} {other.get_base64()}",
        f"{hashed_name} {p384.get_name()} {p384.get_base64()}",
        "# a comment",
    ]
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    ours, theirs = KnownHosts(path), paramiko.HostKeys(str(path))
    for name in ("[127.0.0.1]:2201", "[127.0.0.1]:2202", "gw2.example", "[10.0.0.9]:830",
                 "127.0.0.1", "[127.0.0.1]:9999"):
        expected = theirs.lookup(name)
        found = ours.lookup(name)
        if expected is None:
            assert found is None, name
            continue
        assert found is not None, name
        assert {k: v.get_base64() for k, v in found.items()} == {
            k: expected[k].get_base64() for k in expected}, name
    both = ours.lookup("[127.0.0.1]:2201")
    assert both is not None and set(both) == {p256.get_name(), p384.get_name()}


def test_a_file_without_hashed_names_is_answered_from_the_index(tmp_path: Path) -> None:
    key = paramiko.ECDSAKey.generate(curve=ec.SECP256R1())
    path = tmp_path / "known_hosts"
    path.write_text("".join(f"[127.0.0.1]:{2000 + n} {key.get_name()} {key.get_base64()}\n"
                            for n in range(300)))
    ours = KnownHosts(path)
    ours.keys.lookup = None  # paramiko's linear lookup is not asked
    found = ours.lookup("[127.0.0.1]:2299")
    assert found is not None and found[key.get_name()].get_base64() == key.get_base64()
    assert ours.lookup("[127.0.0.1]:1999") is None
