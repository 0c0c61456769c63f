"""Fixed development credentials the simulator accepts when none are given.

They are not secrets: they exist so ``make run`` and the tests can talk to the
simulator without a Twilio account. Never use them against real Twilio.
"""

from __future__ import annotations

DEV_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEV_AUTH_TOKEN = "dev-auth-token-not-secret"
DEV_API_KEY_SID = "SK" + "0" * 31 + "1"
DEV_API_KEY_SECRET = "dev-api-key-secret-not-secret"
DEFAULT_PORT = 8010
