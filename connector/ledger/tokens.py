"""API tokens in the ledger: only a SHA-256 of each token is stored, never the token itself.

A token is 32 random bytes (``mfn_`` + URL-safe base64), so a plain SHA-256 is enough to make the
stored hash useless to a reader of the database (a slow password hash guards low-entropy secrets;
these are not). Mixed into the SQL ledger stores; uses their ``_conn``/``_write``/``_now``.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..model import parse_iso

SCOPES = ("read", "operate", "pii", "admin")
TOKEN_PREFIX = "mfn_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes),
                "created_at": self.created_at.isoformat(),
                "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def _token(row: Any) -> ApiToken:
    return ApiToken(id=row["id"], name=row["name"], scopes=tuple(json.loads(row["scopes"])),
                    created_at=parse_iso(row["created_at"]),
                    last_used_at=parse_iso(row["last_used_at"]) if row["last_used_at"] else None,
                    revoked_at=parse_iso(row["revoked_at"]) if row["revoked_at"] else None)


class TokenStore:
    """create / list / revoke / authenticate API tokens."""

    def create_token(self, name: str, scopes: list[str] | tuple[str, ...]) -> tuple[ApiToken, str]:
        """A new token: (its record, the secret, shown once and never stored)."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
        if not name.strip():
            raise ValueError("a token needs a name (who or what uses it)")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(4)
        ordered = [s for s in SCOPES if s in scopes]
        with self._write() as conn:
            now = self._now()
            conn.execute("INSERT INTO api_tokens (id, name, token_hash, scopes, created_at)"
                         " VALUES (?, ?, ?, ?, ?)", (token_id, name.strip(), token_hash(secret),
                                                     json.dumps(ordered), now))
            row = conn.execute("SELECT * FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        return _token(row), secret

    def tokens(self) -> list[ApiToken]:
        rows = self._conn().execute("SELECT * FROM api_tokens ORDER BY created_at, id").fetchall()
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str) -> bool:
        """Revoke by id; False when no live token has that id."""
        with self._write() as conn:
            cur = conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                               (self._now(), token_id))
        return cur.rowcount == 1

    def authenticate(self, secret: str) -> ApiToken | None:
        """The live token whose secret this is (its last use recorded), else None."""
        row = self._conn().execute(
            "SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash(secret),)).fetchone()
        if row is None:
            return None
        token = _token(row)
        if token.last_used_at is None or (self._clock() - token.last_used_at).total_seconds() > 60:
            with self._write() as conn:
                conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (self._now(), token.id))
        return token
