"""Body text the ledger cannot store: a NUL (JSON's ``\\u0000``), which PostgreSQL's text refuses.

Annotate a request field with :data:`Storable` when its text is stored as it is or looked up in
the ledger: the request is then a 422 naming the field, on either store, not a 500 on PostgreSQL.
(A lone surrogate never gets this far: FastAPI's model validation refuses it.)
"""
from __future__ import annotations

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from ..ledger.base import unstorable_text


def _storable(value: str) -> str:
    problem = unstorable_text(value)
    if problem:
        raise PydanticCustomError("unstorable", "is {problem}, which the ledger cannot store",
                                  {"problem": problem})
    return value


Storable = AfterValidator(_storable)
