"""A faster reading of an HTTP answer's header block, for the daemon's many small calls.

Every answer ``requests`` receives has its headers parsed by ``http.client.parse_headers``, which
hands them to the ``email`` package's general parser (built for mail: continuation lines, envelope
lines, MIME parts). In a profile of the daemon (py-spy, samples of the thread holding the
interpreter lock) that parser was 7% of its Python: more than any other single piece of the HTTP
stack. Read this way, a ten-header block costs a third of the time (docs/scaling.md).

:func:`parse_headers` gives the same message for a plain header block -- one ``Name: value`` per
line -- from a single regular expression per line. Anything else (a continuation line, a line
without a name, a multipart or message content type, an unfinished line) goes to the standard
library's own parser, unchanged, so the result is the standard one in every case
(tests/test_httpheaders.py compares the two over generated header blocks).

:func:`install` puts it in place of ``http.client.parse_headers``, which
``http.client.HTTPResponse`` calls for every answer; the daemon's HTTP sessions install it
(connector/httpsession.py).
"""
from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any, BinaryIO

_MAXLINE = getattr(http.client, "_MAXLINE", 65536)  # the standard library's limits, kept
_MAXHEADERS = getattr(http.client, "_MAXHEADERS", 100)
_STANDARD = http.client.parse_headers  # the standard library's own (tests compare with it)

# One header on one line, as the email parser splits it: a name of printable characters other than
# ':' and space, then a value (its leading blanks dropped, the rest kept), no CR or LF inside it.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*)\r?\n")
# Content types the email parser reads a body for (parts, an attached message): never here.
_PARSED_BODY = ("multipart/", "message/")


def parse_headers(fp: BinaryIO, _class: type = http.client.HTTPMessage) -> Any:
    """``http.client.parse_headers``, faster for a plain header block: see the module's doc."""
    lines = _read_lines(fp)
    fields = []
    for line in lines[:-1]:  # the last is the blank line that ends the block (or b'' at the end)
        found = _FIELD.fullmatch(line)
        if found is None:
            return _parsed_as_standard(lines, _class)
        name, value = (part.decode("iso-8859-1") for part in found.groups())
        # the type as the email parser reads it: Python's whitespace (\x1c, \x85, \xa0 too) stripped
        if name.lower() == "content-type" and value.lstrip().lower().startswith(_PARSED_BODY):
            return _parsed_as_standard(lines, _class)
        fields.append((name, value))
    message = _class()
    for name, value in fields:
        message.set_raw(name, value)
    message.set_payload("")  # as the email parser leaves it: no body after the block
    return message


def _read_lines(fp: BinaryIO) -> list[bytes]:
    """The block's lines up to the blank one, with the standard library's limits and errors."""
    lines = []
    while True:
        line = fp.readline(_MAXLINE + 1)
        if len(line) > _MAXLINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > _MAXHEADERS:
            raise http.client.HTTPException(f"got more than {_MAXHEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines


def _parsed_as_standard(lines: list[bytes], _class: type) -> Any:
    """What ``http.client.parse_headers`` makes of these lines."""
    return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))


def install() -> None:
    """Answers read through ``http.client`` (``requests``, ``urllib3``) use :func:`parse_headers`."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment]
