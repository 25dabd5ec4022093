"""Privileged exec commands of the IOS-XE CLI emulator that work on the device's state:
show, dir, verify, more, copy, delete, write, archive and the configure replace / confirm /
revert family (the napalm `ios` driver's commit-confirm path).

A handler gets the device, the session's user and the canonical words of the command, and
returns a Reply: output text, or a question whose answer (the next line typed) continues it.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from lab.emulators import iosxe_cli_show as show
from lab.emulators.iosxe_cli_commands import (
    AMBIGUOUS,
    ARCHIVE_NEEDED,
    ARCHIVE_OFF,
    FLASH_TOTAL,
    INCOMPLETE,
    INVALID,
    NO_PENDING,
    NVRAM_TOTAL,
    OPEN_ERROR,
    PENDING_EXISTS,
    REPLACE_DONE,
    REPLACE_QUESTION,
    RESTORED,
)
from lab.emulators.iosxe_cli_config import FileError, apply_text, parse_text
from lab.emulators.iosxe_cli_device import IosXeCliDevice, Url, dir_time, ios_time, parse_url
from lab.emulators.iosxe_cli_diff import contextual_diff, incremental_diff


@dataclass(frozen=True)
class Reply:
    text: str = ""
    question: "Question | None" = None


@dataclass(frozen=True)
class Question:
    prompt: str
    answer: Callable[[str], Reply]
    echo: bool = True


@dataclass(frozen=True)
class Ctx:
    device: IosXeCliDevice
    user: str
    session_id: int


Handler = Callable[[Ctx, tuple[str, ...]], Reply]


def caret_error(line: str, kind: str, column: int, offset: int = 0) -> str:
    """IOS's answer to a line it cannot parse (offset: the prompt's width before the echo)."""
    if kind == "incomplete":
        return INCOMPLETE
    if kind == "ambiguous":
        return AMBIGUOUS.format(line=line.strip())
    return f"{' ' * (offset + column)}^\n{INVALID}"


def file_errors(errors: list[FileError]) -> list[str]:
    lines: list[str] = []
    for error in errors:
        lines.append(error.line)
        lines.append(caret_error(error.line, error.error.kind, error.error.column))
    return lines


def _copied(size: int) -> str:
    return f"{size} bytes copied in 0.010 secs ({size * 100} bytes/sec)"


def _quiet(device: IosXeCliDevice) -> bool:
    return device.has_line("file prompt quiet")


# ---- show --------------------------------------------------------------------------------

def show_running(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    text = ctx.device.config_text()
    return Reply(f"Building configuration...\n\nCurrent configuration : {len(text)} bytes\n"
                 + text)


def show_startup(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    text = ctx.device.startup
    if text is None:
        return Reply("startup-config is not present")
    return Reply(f"Using {len(text)} out of {NVRAM_TOTAL} bytes\n" + text)


def show_archive(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    device = ctx.device
    if device.archive_path is None:
        return Reply(ARCHIVE_OFF)
    maximum = device.archive_maximum
    lines = [f"The maximum archive configurations allowed is {maximum}.",
             f"There are currently {len(device.archive)} archive configurations saved.",
             f"The next archive file will be named {device.next_archive_name()}",
             " Archive #  Name"]
    for number in range(1, maximum + 1):
        name = device.archive[number - 1] if number <= len(device.archive) else ""
        recent = " <- Most Recent" if name and number == len(device.archive) else ""
        lines.append(f"   {number:<8} {name}{recent}".rstrip())
    return Reply("\n".join(lines))


def show_rollback_timer(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    pending = ctx.device.pending
    if pending is None:
        return Reply(NO_PENDING)
    kind = "Idle timer" if pending.idle else "Revert timer"
    return Reply(f"Time configured(or reset)    : {ios_time(pending.reset_at)}\n"
                 f"Timer type: {kind}\nTimer value: {pending.minutes} min\n"
                 f"User: {pending.user}")


def show_differences(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    device = ctx.device
    urls = [parse_url(w) for w in words[4:]]
    if not urls:
        urls = [parse_url("nvram:startup-config"), parse_url("system:running-config")]
    elif len(urls) == 1:
        urls.append(parse_url("system:running-config"))
    trees = [device.tree_of(url) for url in urls]
    for url, tree in zip(urls, trees, strict=True):
        if tree is None:
            return Reply(OPEN_ERROR.format(url=url.text))
    first, second = trees
    assert first is not None and second is not None
    return Reply("\n".join(contextual_diff(first, second)))


def show_incremental(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    device = ctx.device
    url = parse_url(words[4])
    text = device.read(url)
    if text is None:
        return Reply(OPEN_ERROR.format(url=url.text))
    merged = device.running.copy()
    errors = apply_text(merged, text)
    return Reply("\n".join(file_errors(errors) + incremental_diff(device.running, merged)))


def show_ikev2_sa(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    return Reply(show.show_ikev2_sa(ctx.device, detailed="detailed" in words))


def _show(render: Callable[[IosXeCliDevice], str]) -> Handler:
    return lambda ctx, words: Reply(render(ctx.device))


# ---- files -------------------------------------------------------------------------------

def _dir_line(inode: int, size: int, mtime: float, name: str, perms: str = "-rw-") -> str:
    return f"{inode:>6}  {perms}  {size:>15}  {dir_time(mtime)}  {name}"


def dir_(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    device = ctx.device
    url = parse_url(words[1] if len(words) > 1 else "flash:")
    if url.kind != "flash":
        return Reply(OPEN_ERROR.format(url=url.text).replace("No such file or directory",
                                                             "Invalid argument"))
    flash = device.flash
    footer = f"\n{FLASH_TOTAL} bytes total ({flash.free} bytes free)"
    if url.name:
        found = flash.files.get(url.name)
        if found is None:
            return Reply(OPEN_ERROR.format(url=url.text))
        line = _dir_line(found.inode, len(found.data), found.mtime, url.name)
        return Reply(f"Directory of {url.text}\n\n{line}\n{footer}")
    root = url.text if url.text.endswith("/") else url.text.rstrip(":") + ":/"
    lines = [_dir_line(11, 16384, device.clock.boot_epoch, "lost+found", "drwx")]
    lines += [_dir_line(f.inode, len(f.data), f.mtime, name)
              for name, f in sorted(flash.files.items(), key=lambda item: item[1].inode)]
    return Reply(f"Directory of {root}\n\n" + "\n".join(lines) + f"\n{footer}")


def _file_bytes(device: IosXeCliDevice, url: Url) -> bytes | None:
    if url.kind == "flash":
        found = device.flash.files.get(url.name)
        return None if found is None else found.data
    text = device.read(url)
    return None if text is None else text.encode()


def verify_md5(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    url = parse_url(words[2])
    data = _file_bytes(ctx.device, url)
    if data is None:
        return Reply(OPEN_ERROR.format(url=url.text))
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if len(words) > 3:
        if words[3].lower() == digest:
            return Reply(f".MD5 of {url.text} Done!\nVerified ({url.text}) = {digest}")
        return Reply(f".MD5 of {url.text} Done!\n%Error verifying {url.text}\n"
                     f"Computed signature = {digest}\nSubmitted signature = {words[3]}")
    return Reply(f".MD5 of {url.text} Done!\nverify /md5 ({url.text}) = {digest}")


def more(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    url = parse_url(words[1])
    text = ctx.device.read(url)
    return Reply(OPEN_ERROR.format(url=url.text) if text is None else text)


def _copy(ctx: Ctx, source: Url, data: bytes, target: Url) -> Reply:
    device = ctx.device
    if target.kind == "running":
        errors = device.merge(data.decode(errors="replace"), ctx.user)
        return Reply("\n".join([*file_errors(errors), _copied(len(data))]))
    if target.kind == "startup":
        if source.kind == "running":
            device.save_startup()
            return Reply("Building configuration...\n[OK]")
        device.startup = data.decode(errors="replace")
        return Reply(f"[OK]\n{_copied(len(data))}")
    if target.kind == "flash" and target.name:
        device.write_file(target.name, data)
        return Reply(_copied(len(data)))
    if target.kind == "null":
        return Reply(_copied(len(data)))
    return Reply(f"%Error opening {target.text} (Invalid argument)")


def copy(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    source, target = parse_url(words[1]), parse_url(words[2])
    data = _file_bytes(ctx.device, source)
    if data is None:
        return Reply(OPEN_ERROR.format(url=source.text))
    if _quiet(ctx.device) or target.kind in ("null", "other"):
        return _copy(ctx, source, data, target)
    default = {"running": "running-config", "startup": "startup-config"}.get(target.kind,
                                                                              target.name)

    def answer(line: str) -> Reply:
        name = line.strip() or default
        chosen = target if name == default else parse_url(f"flash:{name}")
        return _copy(ctx, source, data, chosen)

    return Reply(question=Question(f"Destination filename [{default}]? ", answer))


def delete(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    url = parse_url(words[-1])
    files = ctx.device.flash.files

    def remove() -> Reply:
        if url.kind != "flash" or files.pop(url.name, None) is None:
            return Reply(f"%Error deleting {url.text} (No such file or directory)")
        return Reply("")

    if "/force" in words or _quiet(ctx.device):
        return remove()

    def confirm(line: str) -> Reply:
        return remove() if line.strip().lower() in ("", "y", "yes") else Reply("")

    return Reply(question=Question(
        f"Delete filename [{url.name}]? ",
        lambda line: Reply(question=Question(f"Delete {url.text}? [confirm]", confirm))))


def write_memory(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    ctx.device.save_startup()
    return Reply("Building configuration...\n[OK]")


def archive_config(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    if ctx.device.archive_config() is None:
        return Reply(f"{ARCHIVE_OFF}\n% Error caught by command handler")
    return Reply("")


# ---- configure replace / confirm / revert --------------------------------------------------

def _minutes(words: tuple[str, ...]) -> int | None:
    for index, word in enumerate(words[:-1]):
        if word in ("timer", "time") and words[index + 1].isdigit():
            return int(words[index + 1])
    return None


def configure_replace(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    device = ctx.device
    url = parse_url(words[2])
    options = words[3:]
    minutes = _minutes(options)
    if minutes is not None and device.archive_path is None:
        return Reply(ARCHIVE_NEEDED)
    if minutes is not None and device.pending is not None:
        return Reply(PENDING_EXISTS)
    text = device.read(url)
    if text is None or url.kind == "running":
        return Reply(OPEN_ERROR.format(url=url.text))
    trigger_error = "error" in options

    def replace() -> Reply:
        tree, errors = parse_text(text)
        messages = file_errors(errors)
        if errors and trigger_error:
            return Reply("\n".join([*messages, RESTORED]))
        before = device.running.copy()
        if "list" in options:
            messages += ["!Pass 1", *incremental_diff(before, tree)]
        device.set_running(tree, ctx.user)
        if minutes is not None:
            device.arm_revert(before, minutes, ctx.user)
        return Reply("\n".join([*messages, REPLACE_DONE]))

    if "force" in options:
        return replace()

    def answer(line: str) -> Reply:
        return replace() if line.strip().lower() in ("y", "yes") else Reply("")

    return Reply(question=Question(REPLACE_QUESTION, answer))


def configure_confirm(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    return Reply("" if ctx.device.confirm() else NO_PENDING)


def configure_revert(ctx: Ctx, words: tuple[str, ...]) -> Reply:
    device = ctx.device
    if words[2] == "now":
        return Reply(REPLACE_DONE if device.revert_now() else NO_PENDING)
    minutes = int(words[-1])
    return Reply("" if device.reset_revert(minutes, idle="idle" in words) else NO_PENDING)


HANDLERS: dict[str, Handler] = {
    "show_version": _show(show.show_version),
    "show_clock": _show(show.show_clock),
    "show_users": lambda ctx, words: Reply(show.show_users(ctx.device, ctx.session_id)),
    "show_hosts": _show(show.show_hosts),
    "show_ip_interface_brief": _show(show.show_ip_interface_brief),
    "show_running": show_running,
    "show_startup": show_startup,
    "show_archive": show_archive,
    "show_rollback_timer": show_rollback_timer,
    "show_differences": show_differences,
    "show_incremental": show_incremental,
    "show_ikev2_sa": show_ikev2_sa,
    "show_ipsec_sa": _show(show.show_ipsec_sa),
    "show_bgp_summary": _show(show.show_bgp_summary),
    "dir": dir_,
    "verify_md5": verify_md5,
    "more": more,
    "copy": copy,
    "delete": delete,
    "write_memory": write_memory,
    "archive_config": archive_config,
    "configure_replace": configure_replace,
    "configure_confirm": configure_confirm,
    "configure_revert": configure_revert,
}


# ---- output filters (`| include X`, `| section X`, ...) ------------------------------------

def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error:
        return re.compile(re.escape(text))


def _sections(lines: list[str], pattern: re.Pattern[str]) -> list[str]:
    """`| section`: each top-level block whose header matches, and matching nested lines
    (with their own sub-lines) under their block's header."""
    blocks: list[list[str]] = []
    for line in lines:
        if line.startswith(" ") and blocks:
            blocks[-1].append(line)
        else:
            blocks.append([line])
    out: list[str] = []
    for header, *body in blocks:
        if pattern.search(header):
            out += [header, *body]
            continue
        picked: list[str] = []
        depth: int | None = None
        for line in body:
            indent = len(line) - len(line.lstrip(" "))
            if depth is not None and indent > depth:
                picked.append(line)
                continue
            depth = indent if pattern.search(line) else None
            if depth is not None:
                picked.append(line)
        if picked:
            out += [header, *picked]
    return out


def apply_filter(text: str, kind: str, expression: str) -> str:
    lines = text.splitlines()
    pattern = _regex(expression)
    if kind == "include":
        kept = [line for line in lines if pattern.search(line)]
    elif kind == "exclude":
        kept = [line for line in lines if not pattern.search(line)]
    elif kind == "begin":
        start = next((i for i, line in enumerate(lines) if pattern.search(line)), len(lines))
        kept = lines[start:]
    elif kind == "section":
        kept = _sections(lines, pattern)
    else:
        return f"Number of lines which match regexp = {sum(1 for x in lines if pattern.search(x))}"
    return "\n".join(kept)
