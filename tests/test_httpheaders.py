"""connector.httpheaders: the fast header parser gives what the standard library's gives."""
from __future__ import annotations

import http.client
import http.server
import io
import threading

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connector import httpheaders
from connector.httpsession import Session


def _described(message):
    """Everything of a parsed header block that a reader of the answer can see."""
    payload = message.get_payload()
    if message.is_multipart():
        payload = [_described(part) for part in payload]
    return (type(message), message.items(), [type(d).__name__ for d in message.defects], payload,
            message.get_unixfrom(), message.get_content_type())


def _both(block: bytes):
    """(standard, fast): each parser's message, or the exception it raised, and what it left unread."""
    results = []
    for parse in (httpheaders._STANDARD, httpheaders.parse_headers):
        stream = io.BytesIO(block)
        try:
            found = _described(parse(stream))
        except http.client.HTTPException as exc:
            found = (type(exc), str(exc))
        results.append((found, stream.read()))
    return results


AMAZON_LIKE = (b"Date: Mon, 07 Dec 2026 09:00:00 GMT\r\n"
               b"Content-Type: application/json\r\nContent-Length: 27\r\nConnection: keep-alive\r\n"
               b"x-amzn-RequestId: 6a1c5a1e-0b4e-4b51-9a4e-1f2d3c4b5a69\r\nx-amzn-RateLimit-Limit: 2.0\r\n"
               b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\nX-Blanks: \t spaced out  \r\n\r\n"
               b'{"body": "not read"}')

_NAME = st.sampled_from([b"Content-Type", b"content-length", b"X-Amzn-RequestId", b"Set-Cookie", b"From",
                         b"a", b"X_Weird!#~", b"", b" Lead", b"Trail ", b"Na me", b"\xe9t\xe9"])
_VALUE = st.one_of(
    st.sampled_from([b"application/json", b"multipart/mixed; boundary=x", b"message/rfc822",
                     b" MULTIPART/alternative", b"\x1cmultipart/mixed", b"\x85message/rfc822",
                     b"\xa0Multipart/x", b"text/plain; charset=utf-8", b"", b"  \t", b"x: y",
                     b"caf\xe9", b"a\rb", b"trailing  "]),
    st.binary(max_size=12))
_LINE = st.one_of(
    st.builds(lambda n, sep, v, end: n + sep + v + end, _NAME, st.sampled_from([b":", b": ", b":\t", b" :"]),
              _VALUE, st.sampled_from([b"\r\n", b"\n", b"\r\n"])),
    st.sampled_from([b" continued\r\n", b"\tcontinued\n", b"From someone\r\n", b"no colon here\r\n",
                     b":no name\r\n", b"\r\n"]),
    st.binary(max_size=20).map(lambda b: b + b"\r\n"))


@settings(max_examples=600, deadline=None)
@given(lines=st.lists(_LINE, max_size=8), end=st.sampled_from([b"\r\n", b"\n", b""]),
       body=st.sampled_from([b"", b"{}", b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n"]))
@example(lines=[AMAZON_LIKE], end=b"", body=b"")
@example(lines=[b"Content-Type: multipart/mixed; boundary=x\r\n"], end=b"\r\n", body=b"")
@example(lines=[b"Content-Type: message/rfc822\r\n"], end=b"\r\n", body=b"")
@example(lines=[b"Content-Type: \x1cmultipart/mixed; boundary=x\r\n"], end=b"\r\n",
         body=b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n")
@example(lines=[b"Content-Type:\xa0message/rfc822\r\n"], end=b"\r\n", body=b"")
@example(lines=[b"X-Last: no line end"], end=b"", body=b"")
@example(lines=[b"From nobody\r\n", b"A: b\r\n"], end=b"\r\n", body=b"")
@example(lines=[b"A: one\r\n", b" two\r\n"], end=b"\r\n", body=b"")
def test_the_same_message_as_the_standard_parser(lines, end, body):
    standard, fast = _both(b"".join(lines) + end + body)
    assert fast == standard


def test_a_plain_block_takes_the_fast_path(monkeypatch):
    called = []
    monkeypatch.setattr(httpheaders, "_parsed_as_standard", lambda *args: called.append(args))
    message = httpheaders.parse_headers(io.BytesIO(AMAZON_LIKE))
    assert called == []
    assert message.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert message["x-amzn-ratelimit-limit"] == "2.0"
    assert message["X-Blanks"] == "spaced out  "  # leading blanks dropped, trailing kept, as email does
    assert message["X-Empty"] == ""


@pytest.mark.parametrize("block, error", [
    (b"A: " + b"x" * 70000 + b"\r\n\r\n", http.client.LineTooLong),
    (b"".join(b"H%d: v\r\n" % n for n in range(101)) + b"\r\n", http.client.HTTPException),
])
def test_the_standard_limits_hold(block, error):
    for parse in (httpheaders._STANDARD, httpheaders.parse_headers):
        with pytest.raises(error):
            parse(io.BytesIO(block))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the standard handler's name
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RateLimit-Limit", "0.5")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_daemons_sessions_read_answers_with_it():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        session = Session(loopback_only=True)
        assert http.client.parse_headers is httpheaders.parse_headers
        answer = session.get(f"http://127.0.0.1:{server.server_port}/", timeout=5)
        assert answer.json() == {"ok": True}
        assert answer.headers["X-Amzn-RateLimit-Limit"] == "0.5"
        assert answer.headers["content-type"] == "application/json"
    finally:
        server.shutdown()
        server.server_close()
