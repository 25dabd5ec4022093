"""One interactive CLI session of the IOS-XE emulator: line discipline, prompts and modes.

Bytes arrive as typed (a client may send many lines at once); the session echoes them like a
vty, runs each complete line in user exec (`>`), privileged exec (`#`) or configuration mode
(`(config...)#`), and answers with the output and the next prompt, using CRLF line ends.
"""

import codecs
import re
from dataclasses import dataclass

from lab.emulators import iosxe_cli_pki as pki
from lab.emulators.iosxe_cli_commands import (
    ARCHIVE_NEEDED,
    BAD_SECRETS,
    CONFIG_BANNER,
    EXEC,
    MODES,
    NO_PASSWORD,
    PENDING_EXISTS,
    PIPE_FILTERS,
    UNKNOWN_EXEC,
    ExecCmd,
)
from lab.emulators.iosxe_cli_config import ConfigEditor, LineError
from lab.emulators.iosxe_cli_device import IosXeCliDevice
from lab.emulators.iosxe_cli_exec import (
    HANDLERS,
    Ctx,
    Question,
    Reply,
    apply_filter,
    caret_error,
)
from lab.emulators.iosxe_cli_syntax import Kw, Parsed, ParseError, match, resolve, split_words

_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[@-Z\\-_]")
_FILTERS = (Kw(PIPE_FILTERS),)
MAX_SECRET_TRIES = 3
MORE = " --More-- "
_ERASE_MORE = "\b" * len(MORE) + " " * len(MORE) + "\b" * len(MORE)


@dataclass
class Terminal:
    length: int = 24
    width: int = 80
    monitor: bool = False


class CliSession:
    def __init__(self, device: IosXeCliDevice, user: str, session_id: int, *,
                 enable_secret: str | None, privileged: bool) -> None:
        self.device = device
        self.user = user
        self.session_id = session_id
        self.enable_secret = enable_secret
        self.privileged = privileged
        self.editor: ConfigEditor | None = None
        self.question: Question | None = None
        self.terminal = Terminal()
        self.closed = False
        self._line = ""
        self._after_cr = False
        self._more: list[str] = []  # output lines held back by the pager
        self._more_tail = ""  # what follows them (the next prompt)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def ctx(self) -> Ctx:
        return Ctx(self.device, self.user, self.session_id)

    def prompt(self) -> str:
        host = self.device.hostname
        if self.editor is not None:
            return f"{host}{MODES[self.editor.mode].prompt}#"
        return f"{host}{'#' if self.privileged else '>'}"

    def greeting(self) -> bytes:
        return _crlf("\n" + self.prompt())

    # ---- line discipline -----------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Echo and run what the client typed; the bytes to send back."""
        out: list[str] = []
        text = _ESCAPE.sub("", self._decoder.decode(data))
        for char in text:
            if self.closed:
                break
            if char == "\n" and self._after_cr:
                self._after_cr = False
                continue
            self._after_cr = char == "\r"
            out.append(self._char(char))
        return _crlf("".join(out))

    def _char(self, char: str) -> str:
        if self._more:
            return self._more_key(char)
        echo = self.question is None or self.question.echo
        if char in "\r\n":
            line, self._line = self._line, ""
            return "\n" + self._run(line)
        if char in "\x7f\x08":
            if not self._line:
                return ""
            self._line = self._line[:-1]
            return "\b \b" if echo else ""
        if char == "\x1a" and self.editor is not None:
            self._line = ""
            self.editor = None
            return "^Z\n" + self.prompt()
        if char == "\x03":
            self._line = ""
            self.question = None
            self.editor = None
            return "\n" + self.prompt()
        if char < " " and char != "\t":
            return ""
        self._line += char
        return char if echo else ""

    def _run(self, line: str) -> str:
        """Output of one line, followed by the next prompt (or question)."""
        if self.question is not None:
            question, self.question = self.question, None
            reply = question.answer(line)
        elif self.editor is not None:
            reply = self._config(line)
        else:
            reply = self.exec_line(line)
        if self.closed:
            return reply.text
        text = reply.text + ("\n" if reply.text and not reply.text.endswith("\n") else "")
        if reply.question is not None:
            self.question = reply.question
            return text + reply.question.prompt
        return self._paged(text, self.prompt())

    # ---- the pager (`terminal length N`, 0 turns it off) -----------------------------------

    def _paged(self, text: str, tail: str) -> str:
        lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
        page = self.terminal.length - 1
        if page <= 0 or len(lines) <= page:
            return text + tail
        self._more, self._more_tail = lines[page:], tail
        return "".join(line + "\n" for line in lines[:page]) + MORE

    def _more_key(self, char: str) -> str:
        """Space: next page; Return: next line; anything else: stop."""
        if char == " ":
            count = self.terminal.length - 1
        elif char in "\r\n":
            count = 1
        else:
            count, self._more = 0, []
        shown, self._more = self._more[:count], self._more[count:]
        out = _ERASE_MORE + "".join(line + "\n" for line in shown)
        if self._more:
            return out + MORE
        tail, self._more_tail = self._more_tail, ""
        return out + tail

    # ---- exec mode ---------------------------------------------------------------------------

    def exec_line(self, line: str) -> Reply:
        command, bar, tail = line.partition("|")
        if not command.strip():
            return Reply("")
        commands = [e for e in EXEC if self.privileged or not e.privileged]
        parsed = resolve(commands, lambda e: e.template, command)
        if parsed is None:
            return Reply("")
        if isinstance(parsed, ParseError):
            return Reply(self._exec_error(line, parsed))
        reply = self._dispatch(parsed)
        if not bar or reply.question is not None:
            return reply
        return self._filter(line, len(command) + 1, tail, reply)

    def _exec_error(self, line: str, error: ParseError) -> str:
        words = split_words(line)
        if error.kind == "invalid" and words and error.column == words[0].column:
            return UNKNOWN_EXEC
        return caret_error(line, error.kind, error.column, len(self.prompt())) + "\n\n"

    def _filter(self, line: str, start: int, tail: str, reply: Reply) -> Reply:
        words = split_words(tail)
        outcome = match(_FILTERS, words[:1], tail)
        if not words or outcome.words is None:
            column = start + (words[0].column if words else len(tail))
            kind = "incomplete" if not words else "invalid"
            return Reply(caret_error(line, kind, column, len(self.prompt())) + "\n\n")
        expression = tail[words[0].column + len(words[0].text):].strip()
        if not expression and outcome.words[0] != "count":
            return Reply(caret_error(line, "incomplete", 0) + "\n\n")
        return Reply(apply_filter(reply.text, outcome.words[0], expression))

    def _dispatch(self, parsed: Parsed[ExecCmd]) -> Reply:
        words = parsed.words
        match parsed.entry.handler:
            case "enable":
                return self._enable()
            case "disable":
                self.privileged = False
                return Reply("")
            case "exit":
                self.closed = True
                return Reply("")
            case "terminal":
                return self._terminal(words)
            case "configure_terminal":
                return self._configure_terminal(words)
        handler = HANDLERS.get(parsed.entry.handler) or pki.HANDLERS[parsed.entry.handler]
        return handler(self.ctx, words)

    def _terminal(self, words: tuple[str, ...]) -> Reply:
        if words[1] in ("length", "width"):
            setattr(self.terminal, words[1], int(words[2]))
        else:
            self.terminal.monitor = words[1] != "no"
        return Reply("")

    def _enable(self, tries: int = 0) -> Reply:
        if self.privileged:
            return Reply("")
        if self.enable_secret is None:
            return Reply(NO_PASSWORD)

        def answer(secret: str) -> Reply:
            if secret == self.enable_secret:
                self.privileged = True
                return Reply("")
            if tries + 1 >= MAX_SECRET_TRIES:
                return Reply(BAD_SECRETS)
            return self._enable(tries + 1)

        return Reply(question=Question("Password: ", answer, echo=False))

    def _configure_terminal(self, words: tuple[str, ...]) -> Reply:
        device = self.device
        if "revert" in words:
            if device.archive_path is None:
                return Reply(ARCHIVE_NEEDED)
            if device.pending is not None:
                return Reply(PENDING_EXISTS)
            device.arm_revert(device.running.copy(), int(words[-1]), self.user,
                              idle="idle" in words)
        self.editor = ConfigEditor(device.running)
        return Reply(CONFIG_BANNER)

    # ---- configuration mode ------------------------------------------------------------------

    def _config(self, line: str) -> Reply:
        words = split_words(line)
        if words and words[0].text.lower() == "do" and len(words) > 1:
            return self.exec_line(" " * words[1].column + line[words[1].column:])
        assert self.editor is not None
        dialog = pki.config_line(self.ctx, line, self.editor.mode)  # crypto pki import
        if dialog is not None:
            return dialog
        result = self.editor.apply(line)
        if result in ("end", "exit"):
            self.editor = None
            return Reply("")
        if isinstance(result, LineError):
            return Reply(caret_error(line, result.kind, result.column, len(self.prompt()))
                         + "\n\n")
        if words and not words[0].text.startswith("!"):
            self.device.changed(self.user)
        return Reply("")


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
