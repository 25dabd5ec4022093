"""Per-tunnel pre-shared keys (`dcvpn pki psk`) and resolving secret references at push time."""

import json
import os
from pathlib import Path

import pytest
from conftest import EXAMPLES
from pki_support import mode, snapshot

from inventory.loader import load_fabric
from inventory.topology import compile_fabric
from pipelines import pki_cmd
from tasks.pki.errors import MissingSecretError, PkiError
from tasks.pki.psk import PSK_BYTES, ensure_psks, resolve_secrets
from tasks.render_context import gateway_view, secret_ref

ACME = str(EXAMPLES / "acme-hybrid.yaml")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("DCVPN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def _tunnels() -> list[str]:
    return [t.name for t in compile_fabric(load_fabric(ACME).fabric).tunnels]


def psk(capsys: pytest.CaptureFixture[str], secrets: Path, *argv: str) -> tuple[int, str, str]:
    code = pki_cmd.main(["pki", "psk", "-f", ACME, "--secrets-dir", str(secrets), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _keys(secrets: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((secrets / "psk").iterdir())}


def test_one_key_per_tunnel_0600_and_never_printed(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    code, out, err = psk(capsys, secrets)
    assert code == 0
    keys = _keys(secrets)
    assert sorted(keys) == sorted(_tunnels())
    assert mode(secrets) == 0o700 and mode(secrets / "psk") == 0o700
    for name, value in keys.items():
        assert mode(secrets / "psk" / name) == 0o600
        assert len(bytes.fromhex(value)) == PSK_BYTES  # 64 hex characters, no newline
        assert value not in out + err
        assert value[:16] not in out + err
    assert len(set(keys.values())) == len(keys)
    assert out.count("created") == len(keys)
    assert "64 chars" in out and "sha256:" in out
    assert "${dcvpn-secret:psk/" in out


def test_keys_look_random(tmp_path: Path) -> None:
    ensure_psks(tmp_path, [f"t{i}" for i in range(40)])
    data = b"".join(bytes.fromhex(v) for v in _keys(tmp_path).values())
    ones = sum(bin(b).count("1") for b in data)
    bits = len(data) * 8  # 10240 bits: mean 5120, sigma ~51
    assert abs(ones - bits / 2) < 6 * (bits ** 0.5) / 2
    assert len(set(data)) > 200  # nearly every byte value occurs


def test_psk_is_idempotent_and_rotates_on_request(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    psk(capsys, secrets)
    first = snapshot(secrets)
    keys = _keys(secrets)
    code, out, _ = psk(capsys, secrets, "--format", "json")
    data = json.loads(out)
    assert code == 0 and {p["outcome"] for p in data["psks"]} == {"unchanged"}
    assert snapshot(secrets) == first
    code, out, _ = psk(capsys, secrets, "--rotate")
    assert code == 0 and out.count("rotated") == len(_tunnels())
    rotated = _keys(secrets)
    assert sorted(rotated) == sorted(keys)
    assert all(rotated[name] != keys[name] for name in keys)


def test_a_key_of_a_new_tunnel_is_added_and_the_others_kept(tmp_path: Path) -> None:
    names = _tunnels()
    ensure_psks(tmp_path, names[:-1])
    before = _keys(tmp_path)
    results = {r.tunnel: r.outcome for r in ensure_psks(tmp_path, names)}
    assert results[names[-1]] == "created"
    assert {results[n] for n in names[:-1]} == {"unchanged"}
    assert {k: v for k, v in _keys(tmp_path).items() if k in before} == before


def test_short_existing_keys_are_flagged(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    psk(capsys, secrets)
    name = _tunnels()[0]
    (secrets / "psk" / name).write_text("short\n")
    code, out, err = psk(capsys, secrets)
    assert code == 0 and f"{name}: existing key has only 5 characters" in err
    assert "short" not in out


def test_references_in_rendered_views_resolve(tmp_path: Path) -> None:
    compiled = compile_fabric(load_fabric(ACME).fabric)
    ensure_psks(tmp_path, [t.name for t in compiled.tunnels])
    keys = _keys(tmp_path)
    for _, gw in compiled.gateways():
        for view in gateway_view(compiled, gw.name).tunnels:
            text = f"secret = {view.psk_ref}\n"
            assert resolve_secrets(text, tmp_path) == f"secret = {keys[view.name]}\n"


def test_resolve_replaces_every_reference_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "psk").mkdir()
    (tmp_path / "psk" / "a-b-p0").write_text("K1\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("K2")
    text = (f"one {secret_ref('psk', 'a-b-p0')} two {secret_ref('other', 'x')} "
            f"again {secret_ref('psk', 'a-b-p0')} ${{not-a-secret}} $dcvpn")
    assert resolve_secrets(text, tmp_path) == "one K1 two K2 again K1 ${not-a-secret} $dcvpn"
    assert resolve_secrets("no references", tmp_path) == "no references"


def test_resolve_names_every_missing_reference(tmp_path: Path) -> None:
    text = f"{secret_ref('psk', 'x-y-p0')} {secret_ref('psk', 'x-z-p1')}"
    with pytest.raises(MissingSecretError) as info:
        resolve_secrets(text, tmp_path)
    assert "${dcvpn-secret:psk/x-y-p0}" in str(info.value)
    assert "${dcvpn-secret:psk/x-z-p1}" in str(info.value)
    assert "dcvpn pki psk" in str(info.value)


@pytest.mark.parametrize("ref", ["psk/../../etc/passwd", "../psk/x", "psk", "psk/.hidden",
                                 "psk/a/b"])
def test_resolve_refuses_references_outside_the_secrets_dir(tmp_path: Path, ref: str) -> None:
    (tmp_path / "psk").mkdir()
    (tmp_path / "psk" / ".hidden").write_text("no")
    with pytest.raises(PkiError):
        resolve_secrets("${dcvpn-secret:" + ref + "}", tmp_path)


def test_psk_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = psk(capsys, blocker)
    assert code == 2 and f"{blocker}: exists and is not a directory" in err
    assert pki_cmd.main(["pki", "psk"]) == 2
    assert "no fabric given" in capsys.readouterr().err
