"""Model and author text made safe to print, store and log.

A model controls its stderr, the ids and cells of its predictions file, and
an author controls metadata, titles and reasons. Printed raw to an
operator's terminal, ESC sequences move the cursor, rewrite earlier lines
(a forged "PROMOTE"), set the window title or write the clipboard (OSC 52);
carriage returns and bidirectional overrides hide text. escape_control
turns every such character into a visible escape (\\x1b, \\u202e), keeping
newlines and tabs, so the text reads the same and controls nothing.

truncate bounds a text for a log line or a stored note, saying how much it
dropped.
"""
from __future__ import annotations

import io
import re

# Request and override reasons: one or two sentences for the audit trail.
MAX_REASON_CHARS = 1000
# The longest string value a log line carries (longer ones are cut in the middle).
MAX_LOG_VALUE_CHARS = 2000

# C0 controls but tab and newline, DEL, C1 controls (0x9b is a one-byte CSI),
# bidirectional embeddings, overrides and isolates, and the Unicode line and
# paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """text with every terminal-controlling character replaced by a visible escape (tab and newline kept)."""
    if not isinstance(text, str):
        text = str(text)
    return _CONTROL.sub(_visible, text)


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def truncate(text: str, limit: int, *, what: str = "characters") -> str:
    """At most about `limit` characters: the head and the tail, with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 2)
    head, tail = keep // 2, keep - keep // 2
    return f"{text[:head]}[... {len(text) - head - tail} {what} truncated ...]{text[len(text) - tail:]}"


def truncate_log_values(_logger, _method, event_dict: dict) -> dict:
    """structlog processor: no string value in a log line is longer than MAX_LOG_VALUE_CHARS."""
    for key, value in event_dict.items():
        if isinstance(value, str) and len(value) > MAX_LOG_VALUE_CHARS and key != "exception":
            event_dict[key] = truncate(value, MAX_LOG_VALUE_CHARS)
    return event_dict


def escape_log_values(_logger, _method, event_dict: dict) -> dict:
    """structlog processor for a terminal: control characters in string values become visible escapes."""
    for key, value in event_dict.items():
        if isinstance(value, str) and key != "exception":
            event_dict[key] = escape_control(value)
    return event_dict


class EscapingStream(io.TextIOBase):
    """A text stream that escapes control characters on the way to a terminal or pipe."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escape_control(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


def check_reason(reason: str, *, what: str = "reason") -> str:
    """The reason stripped, or ValueError when it is empty, too long, or holds control characters."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"the {what} must be a non-empty text")
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS:
        raise ValueError(f"the {what} is {len(reason)} characters, over the limit of {MAX_REASON_CHARS}")
    if has_control(reason.replace("\n", " ").replace("\t", " ")):
        raise ValueError(f"the {what} holds control characters (escape sequences); write plain text")
    return reason

