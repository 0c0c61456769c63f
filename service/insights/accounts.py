"""``Accounts``: the Twilio accounts callwatch watches, and each one's credentials.

``TWILIO_ACCOUNT_SID`` (with ``TWILIO_AUTH_TOKEN``, ``TWILIO_AUTH_TOKEN_SECONDARY`` and
an optional API key) is the main account; ``TWILIO_ACCOUNTS`` adds more (an ISV's
sub-accounts) as ``AC…:<auth token>`` pairs, an account listed twice having both its
tokens accepted during a rotation. A callback is checked with its own account's tokens
only, so one account's token never validates another's callback; a call's Insights,
Summary and Calls requests use its own account's credentials. Each account keeps the
``InsightsCredentials`` that worked last, per process. Tokens never leave this module
except as HTTP Basic passwords and HMAC keys: the log names an account by its SID.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from service.errors import PermanentError
from service.insights.credentials import Credential, InsightsCredentials

if TYPE_CHECKING:
    from service.settings import Settings


class UnknownAccount(PermanentError):
    """A call of an account that is neither TWILIO_ACCOUNT_SID nor in TWILIO_ACCOUNTS."""

    def __init__(self, account_sid: str) -> None:
        super().__init__(f"account {account_sid} is neither TWILIO_ACCOUNT_SID nor listed in "
                         "TWILIO_ACCOUNTS", reason="unknown_account")


class Accounts:
    """The watched accounts: their signature tokens and their API credentials."""

    def __init__(self, primary_sid: str, primary: InsightsCredentials,
                 primary_tokens: Sequence[str],
                 more: Sequence[tuple[str, str]] = ()) -> None:
        tokens: dict[str, list[str]] = {primary_sid: list(primary_tokens)}
        for sid, token in more:
            tokens.setdefault(sid, []).append(token)
        self.primary_sid = primary_sid
        self._tokens = {sid: tuple(found) for sid, found in tokens.items()}
        self._credentials = {primary_sid: primary}
        for sid, found in self._tokens.items():
            if sid != primary_sid:
                self._credentials[sid] = InsightsCredentials(
                    [Credential(f"TWILIO_ACCOUNTS ({sid}, token {n})", sid, token)
                     for n, token in enumerate(found, start=1)],
                    rotation_hint=f"remove {sid}'s old token from TWILIO_ACCOUNTS")

    @classmethod
    def from_settings(cls, settings: Settings) -> Accounts:
        return cls(settings.twilio_account_sid, InsightsCredentials.from_settings(settings),
                   settings.auth_tokens, settings.twilio_accounts)

    def __repr__(self) -> str:  # never show the tokens
        return f"Accounts({sorted(self._tokens)!r})"

    def __contains__(self, account_sid: object) -> bool:
        return account_sid in self._tokens

    @property
    def sids(self) -> tuple[str, ...]:
        return tuple(self._tokens)

    def tokens(self) -> dict[str, tuple[str, ...]]:
        """Each account's tokens accepted for ``X-Twilio-Signature`` (the web edge's)."""
        return dict(self._tokens)

    def credentials(self, account_sid: str) -> InsightsCredentials:
        """The credentials ``account_sid``'s calls are read with; ``UnknownAccount`` else."""
        try:
            return self._credentials[account_sid]
        except KeyError:
            raise UnknownAccount(account_sid) from None
