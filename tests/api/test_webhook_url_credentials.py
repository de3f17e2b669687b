"""A webhook endpoint's URL may carry the ERP's credentials (``https://user:password@host/...``,
which requests sends as Basic auth, or a token in its query string). Where the daemon shows the URL
-- `webhooks status`, ``GET /v1/webhooks``, a sandbox run's refusal of a production file -- it
shows where the events go, never those credentials, nor the path after its first segment (where
Slack, Discord and Teams put their secret)."""
from __future__ import annotations

import json

import pytest

from connector.sandbox.loopback import remote_endpoints

from ..e2e.helpers import run_cli
from ..test_events_and_webhooks import SECRET

pytestmark = [pytest.mark.e2e]

URL = "https://erp-user:Pw-9f3kQ2@erp.example.com:8443/hooks/mfn?token=Tk-77aa91#part"
# Slack-style: the secret in the path
SLACK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/Sl4ckS3cr3tT0k3nXXXXXXXX"
HIDDEN = ("Pw-9f3kQ2", "Tk-77aa91", "erp-user", "Sl4ckS3cr3tT0k3n", "T0AAAAAAA", "B0BBBBBBB")


def test_a_webhook_urls_credentials_are_never_shown(api):
    a = api({"webhooks": {"endpoints": [{"name": "erp", "url": URL, "secret": SECRET},
                                        {"name": "slack", "url": SLACK, "secret": SECRET}]}})
    answered = a.get("/v1/webhooks", scope="admin")
    assert answered.status_code == 200
    shown, slack = answered.json()
    assert shown["url"] == "https://***@erp.example.com:8443/hooks/***?***"
    assert slack["url"] == "https://hooks.slack.com/services/***"

    text = run_cli(a.world, "webhooks", "status")
    as_json = run_cli(a.world, "webhooks", "status", "--json")
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    assert json.loads(as_json.stdout)["erp"]["url"] == shown["url"]
    refusal = "; ".join(remote_endpoints(a.rt.config))
    assert "webhooks.endpoints[0].url = https://***@erp.example.com:8443/hooks/***?***" in refusal
    assert "webhooks.endpoints[1].url = https://hooks.slack.com/services/***" in refusal
    for output in (answered.text, text.stdout, as_json.stdout, refusal):
        assert not [s for s in HIDDEN if s in output], output
