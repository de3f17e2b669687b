"""A minimal, valid single-page PDF writer for sandbox labels (no dependency needed).

Real carriers return PDFs; the emulators must too, so that "every label on disk is a valid PDF"
is checked against real files. Text is Latin-1 Helvetica; anything else is replaced by '?'.
"""
from __future__ import annotations


def _escape(text: str) -> str:
    text = text.encode("latin-1", "replace").decode("latin-1")
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_label_pdf(lines: list[str], *, width: int = 283, height: int = 425) -> bytes:
    """A 100x150 mm (4x6 in) label page with the given lines of text and a barcode-ish bar."""
    y = height - 30
    ops = ["BT /F1 11 Tf"]
    for i, line in enumerate(lines):
        size = 16 if i == 0 else 10
        ops.append(f"/F1 {size} Tf 1 0 0 1 20 {y} Tm ({_escape(line)}) Tj")
        y -= size + 8
    ops.append("ET")
    x = 20
    for i, ch in enumerate((lines[1] if len(lines) > 1 else "label").encode()):
        w = 1 + ch % 3
        if i % 2 == 0:
            ops.append(f"{x} 40 {w} 60 re f")
        x += w + 1
        if x > width - 20:
            break
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
        f"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".encode(),
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def looks_like_pdf(data: bytes) -> bool:
    """Cheap structural check: header, xref, trailer and EOF marker."""
    return data.startswith(b"%PDF-") and b"startxref" in data[-64:] and data.rstrip().endswith(b"%%EOF")
