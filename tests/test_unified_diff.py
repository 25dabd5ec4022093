"""tasks.semantic_diff.unified diffs only the changed middle of two texts: its output must be
a correct unified diff of the whole texts (applying it to the old text gives the new one,
line numbers included), with secrets masked only in the diff's own lines."""

import random
import re

from tasks.semantic_diff import unified

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply(old: str, patch: str) -> str:
    """Apply a unified diff strictly: every context and removed line must match."""
    a = old.splitlines(keepends=True)
    lines = patch.splitlines(keepends=True)[2:]
    out: list[str] = []
    pos = i = 0
    while i < len(lines):
        m = HUNK.match(lines[i])
        assert m, f"not a hunk header: {lines[i]!r}"
        start, length = int(m[1]), int(m[2] if m[2] is not None else 1)
        begin = start - 1 if length else start
        assert begin >= pos, "hunks overlap or go backwards"
        out += a[pos:begin]
        pos = begin
        i += 1
        while i < len(lines) and not lines[i].startswith("@@"):
            kind, body = lines[i][0], lines[i][1:]
            if kind in " -":
                assert a[pos] == body, f"line {pos + 1}: {a[pos]!r} != {body!r}"
                pos += 1
            if kind in " +":
                out.append(body)
            i += 1
    return "".join(out + a[pos:])


def test_random_edits_give_diffs_that_apply() -> None:
    rng = random.Random(6)
    checked = 0
    for _ in range(3000):  # bounded; short texts of few distinct lines stress alignment
        a = [f"l{rng.randint(0, 4)}\n" for _ in range(rng.randint(0, 40))]
        b = list(a)
        for _ in range(rng.randint(1, 4)):
            op = rng.choice("ida")
            if op == "i":
                b.insert(rng.randint(0, len(b)), f"l{rng.randint(0, 5)}\n")
            elif b and op == "d":
                del b[rng.randrange(len(b))]
            elif b:
                b[rng.randrange(len(b))] = f"x{rng.randint(0, 5)}\n"
        old, new = "".join(a), "".join(b)
        patch = unified(old, new, "f")
        if old == new:
            assert patch == ""
            continue
        assert patch.startswith("--- running/f\n+++ intended/f\n")
        assert apply(old, patch) == new
        checked += 1
    assert checked > 2500


def test_one_line_added_to_a_long_list_is_one_small_hunk() -> None:
    old = "".join(f"ip prefix-list L seq {i} permit 10.{i}.0.0/16\n" for i in range(500))
    lines = old.splitlines(keepends=True)
    new = "".join([*lines[:250], "ip prefix-list L seq 2505 permit 10.250.5.0/24\n",
                   *lines[250:]])
    patch = unified(old, new, "frr.conf")
    assert patch.splitlines()[2] == "@@ -248,6 +248,7 @@"
    assert len(patch.splitlines()) == 3 + 7
    assert apply(old, patch) == new


def test_secrets_are_masked_in_the_diff_lines() -> None:
    old = "a\nb\n  pre-shared-key local s3cret-one\nc\n"
    new = "a\nb\n  pre-shared-key local s3cret-two\nc\n"
    patch = unified(old, new, "config.cli")
    assert "s3cret" not in patch
    assert "-  pre-shared-key local <masked>\n+  pre-shared-key local <masked>\n" in patch
