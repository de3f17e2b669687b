"""Amazon refusing a seller account's login: an alert, raised once and cleared by the next call that
works.

When LWA refuses the account's refresh token (``invalid_grant``: the seller revoked the app's
authorisation, or it lapsed) or the app's client credentials (``invalid_client``: a wrong or
expired client secret), every SP-API call of that account fails alike -- no order is read, no
shipment confirmed -- until a person fixes the configuration. The order poll's ERROR line says so
at each poll; the ``amazon_credentials_refused`` alert (subject: the account name) makes it reach
``report alerts``, the ``mfn_alert`` hook and the webhooks, as a carrier refusing its credentials
does (``carrier_credentials_refused``, engine/shopping.py). The SP-API client reports every login
refused and every call that succeeded (:class:`~connector.amazon.client.LoginWatch`), whichever
step made the call: the poll, a confirmation, a read-back, a feed, a plugin's own call.

Neither the message nor the details carry the refresh token or the client secret.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..amazon.errors import AuthError

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger("connector.engine")


class AmazonLogins:
    """The SP-API clients' :class:`~connector.amazon.client.LoginWatch`, bound to a runtime."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def refused(self, account: str, error: AuthError) -> None:
        message = refusal_message(self.rt, account, error)
        details = {"account": account, "lwa_error": error.code or f"HTTP {error.status}"}
        if self.rt.amazon_login_alerts.raise_once(self.rt, account, message, **details):
            log.error("account %s: %s", account, message)  # once a run, not once per call

    def accepted(self, account: str) -> None:
        self.rt.amazon_login_alerts.clear(self.rt, account)


def refusal_message(rt: Runtime, account: str, error: AuthError) -> str:
    """What happened and what the operator does about it; never a secret (LWA's own description,
    already scrubbed of them, is left out: the code says it)."""
    where = _setting(rt, account)
    code = error.code or f"HTTP {error.status}"
    fix_token = (f"re-authorize the app for this seller in Seller Central (Apps and Services > Manage "
                 f"Your Apps, or Develop Apps > Authorize for a private app) and put the new refresh "
                 f"token in {where}.refresh_token")
    if code == "invalid_client":
        head = (f"Amazon refused the login of account {account}: LWA refused the app's client "
                f"credentials ({code})")
        fix = (f"put the app's current client id and secret (Developer Central; the secret must be "
               f"rotated every 180 days) in {where}.client_id and {where}.client_secret; if they are "
               f"right, {fix_token}")
    else:
        head = (f"Amazon refused the login of account {account}: LWA refused its refresh token ({code}: "
                "revoked, expired, or issued to another app)")
        fix = fix_token
    return (f"{head}; no order of the account is read and no shipment confirmed until it is fixed: "
            f"{fix}, then restart the daemon")


def _setting(rt: Runtime, account: str) -> str:
    """``accounts[i]`` of the account in the configuration (``accounts[]`` when not found)."""
    accounts = getattr(rt.config, "accounts", None) or ()
    for i, configured in enumerate(accounts):
        if configured.name == account:
            return f"accounts[{i}]"
    return "accounts[]"
