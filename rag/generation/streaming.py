"""Streaming helpers: the answer prose inside a JSON answer that is still being written."""

from __future__ import annotations

import re


class AnswerTextStream:
    """Incrementally extracts the decoded value of the top-level "answer" string from a streamed JSON answer, so a
    UI can show the prose while the model writes it: feed(piece) -> the new answer text (maybe '')."""

    _ESC = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

    def __init__(self) -> None:
        self.buf = ""
        self.pos: int | None = None  # index in buf of the next unread char of the answer string
        self.closed = False

    def feed(self, piece: str) -> str:
        self.buf += piece
        if self.closed:
            return ""
        if self.pos is None:
            m = re.search(r'"answer"\s*:\s*"', self.buf)
            if not m:
                return ""
            self.pos = m.end()
        out: list[str] = []
        i, s = self.pos, self.buf
        while i < len(s):
            c = s[i]
            if c == '"':
                self.closed = True
                i += 1
                break
            if c == "\\":
                if i + 1 >= len(s):
                    break
                e = s[i + 1]
                if e == "u":
                    if i + 6 > len(s):
                        break
                    try:
                        out.append(chr(int(s[i + 2: i + 6], 16)))
                    except ValueError:
                        pass
                    i += 6
                    continue
                out.append(self._ESC.get(e, e))
                i += 2
                continue
            out.append(c)
            i += 1
        self.pos = i
        return "".join(out)
