"""What Voice SDK error codes and WARNING/ERROR SDK events mean, in one line each.

The classifier uses this to give every issue a ``description`` a person can act on
and a ``category`` receivers can route on (a denied microphone is the user's
device, a failed ICE negotiation the media path). Code meanings follow the
twilio-voice.js error classes (``errors/generated.ts``: each class's description
and explanation); the few codes only the mobile SDKs use keep their documented
meaning. Quality warnings are described from the threshold and values the event
carries, since thresholds differ between SDKs and versions. Unknown codes and
events are normal; they simply have no entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEVICE = "device"
NETWORK = "network"
MEDIA = "media"
AUTH = "auth"
OUTCOME = "outcome"
OTHER = "other"
#: ConversationRelay (voice AI agent) sessions: ``service.analysis.voice_agent``.
VOICE_AGENT = "voice-agent"
CATEGORIES = (DEVICE, NETWORK, MEDIA, AUTH, OUTCOME, OTHER, VOICE_AGENT)

#: Codes that only say how a call ended (busy, declined, unavailable, cancelled):
#: ordinary outcomes, like the ``busy`` status, not faults.
OUTCOME_CODES = frozenset({31002, 31008, 31480, 31486, 31600, 31603})
#: The media-connection error the JS SDK publishes at WARNING when a reconnection
#: starts and at ERROR when the media connection is given up.
MEDIA_CONNECTION_CODE = 53405


@dataclass(frozen=True)
class ErrorCode:
    """One Voice SDK error code: its SDK name, what it means, and its category."""

    code: int
    name: str
    meaning: str
    category: str


def _codes(*rows: tuple[int, str, str, str]) -> dict[int, ErrorCode]:
    return {code: ErrorCode(code, name, meaning, cat) for code, name, meaning, cat in rows}


ERROR_CODES: dict[int, ErrorCode] = _codes(
    (20101, "AccessTokenInvalid", "Twilio could not validate the access token", AUTH),
    (20104, "AccessTokenExpired",
     "The access token has expired, or its expiry time is invalid or too far ahead", AUTH),
    (20151, "AuthenticationFailed", "Authentication with the access token (JWT) failed", AUTH),
    (31000, "UnknownError", "An unknown error occurred (the SDK's message has the details)",
     OTHER),
    (31001, "ApplicationNotFoundError", "The TwiML application was not found", OTHER),
    (31002, "ConnectionDeclinedError", "The connection was declined", OUTCOME),
    (31003, "ConnectionTimeoutError",
     "The server did not respond in time (a signalling timeout)", NETWORK),
    (31005, "ConnectionError", "A connection error occurred during the call "
     "(the Twilio gateway hung up with an error)", NETWORK),
    (31006, "AudioDeviceError", "The audio device could not be started", DEVICE),
    (31008, "CallCancelledError", "The call could not be answered: it had already ended",
     OUTCOME),
    (31009, "TransportError", "No transport was available to send or receive signalling "
     "messages", NETWORK),
    (31100, "MalformedRequestError", "The request could not be understood: malformed syntax",
     OTHER),
    (31101, "MissingParameterArrayError", "The request had no parameter array", OTHER),
    (31102, "AuthorizationTokenMissingError", "The request carried no authorization token",
     AUTH),
    (31103, "MaxParameterLengthExceededError", "The request's parameters were too long", OTHER),
    (31104, "InvalidBridgeTokenError", "The bridge token is invalid", OTHER),
    (31105, "InvalidClientNameError", "The client name is invalid (control, space or "
     "delimiter characters)", OTHER),
    (31107, "ReconnectParameterInvalidError", "The reconnect parameter is invalid", OTHER),
    (31201, "AuthorizationError", "Authorization error: the request requires user "
     "authentication (in twilio.js 1.x: the microphone could not be used)", AUTH),
    (31202, "AccessTokenSignatureValidationFailed",
     "The access token failed signature validation", AUTH),
    (31203, "NoValidAccountError", "No valid account was found for the access token", AUTH),
    (31204, "InvalidJWTTokenError", "The access token (JWT) is invalid", AUTH),
    (31205, "JWTTokenExpiredError", "The access token (JWT) has expired", AUTH),
    (31206, "RateExceededError", "Requests exceeded the authorized rate limit", AUTH),
    (31207, "JWTTokenExpirationTooLongError",
     "The access token's expiry is too far in the future", AUTH),
    (31208, "PermissionDenied", "The user denied access to the microphone", DEVICE),
    (31209, "ReconnectAttemptError", "The reconnect attempt was not authorized", AUTH),
    (31210, "CallMessageEventTypeInvalidError",
     "A call message had an event type Twilio Voice does not understand", OTHER),
    (31212, "PayloadSizeExceededError", "A call message's payload exceeded the size limit",
     OTHER),
    (31400, "BadRequest", "Bad request (SIP 400): the request could not be understood", OTHER),
    (31401, "PermissionDeniedError", "The browser or the user denied access to the microphone",
     DEVICE),
    (31402, "AcquisitionFailedError", "Microphone access was allowed but getting audio "
     "failed (constraints, browser, OS or hardware)", DEVICE),
    (31404, "NotFound", "Not found (SIP 404): nothing matches the request", OTHER),
    (31429, "TooManyRequests", "Too many requests (SIP 429)", OTHER),
    (31480, "TemporarilyUnavailable", "The callee is currently unavailable (SIP 480)", OUTCOME),
    (31481, "CallTransactionDoesNotExist", "The call or transaction does not exist (SIP 481)",
     OTHER),
    (31486, "BusyHere", "The callee is busy (SIP 486)", OUTCOME),
    (31600, "BusyEverywhere", "The callee is busy everywhere (SIP 600)", OUTCOME),
    (31603, "Decline", "The callee declined the call (SIP 603)", OUTCOME),
    (31604, "DoesNotExistAnywhere", "The callee does not exist anywhere (SIP 604)", OTHER),
    (53000, "SignalingConnectionError", "A signalling connection error occurred", NETWORK),
    (53001, "SignalingConnectionDisconnected",
     "The signalling connection was unexpectedly disconnected", NETWORK),
    (53400, "ClientLocalDescFailed", "The client could not create or apply a local media "
     "description (SDP)", MEDIA),
    (53402, "ClientRemoteDescFailed", "The client could not apply the remote media "
     "description (SDP)", MEDIA),
    (53405, "ConnectionError", "The media connection failed and was not restored", MEDIA),
)

#: The issue a media reconnection is when the SDK restored the connection.
RECOVERED_MEDIA = ("The media connection was interrupted and the SDK reconnected it "
                   "(an ICE restart)")


@dataclass(frozen=True)
class QualityWarning:
    """A quality warning: what it measures, its unit, and which way is bad."""

    measure: str
    unit: str = ""
    low: bool = False  # True when values below the threshold are the problem

    def describe(self, threshold: float | None, values: Sequence[float]) -> str:
        """``Round-trip time above the SDK's threshold of 400 ms (worst sample 512 ms)``."""
        side = "below" if self.low else "above"
        text = f"{self.measure} {side} the SDK's threshold"
        if threshold is not None:
            text += f" of {_figure(threshold)}{self.unit}"
        if values:
            worst = min(values) if self.low else max(values)
            text += f" (worst sample {_figure(worst)}{self.unit})"
        return text


#: Quality warnings (``*-warning-raised`` names), keyed by name.
WARNINGS: dict[str, QualityWarning] = {
    "high-rtt": QualityWarning("Round-trip time (RTT)", " ms"),
    "high-jitter": QualityWarning("Jitter", " ms"),
    "low-mos": QualityWarning("Mean opinion score (MOS)", low=True),
    "high-packet-loss": QualityWarning("Packet loss", " %"),
    "high-packets-lost-fraction": QualityWarning("Average packet loss", " %"),
    "low-bytes-received": QualityWarning("Audio bytes received per second", low=True),
    "low-bytes-sent": QualityWarning("Audio bytes sent per second", low=True),
    "constant-audio-input-level": QualityWarning(
        "Microphone level flat (muted, silent or broken microphone): its variation", low=True),
    "constant-audio-output-level": QualityWarning(
        "Speaker level flat (no audio reaching the caller): its variation", low=True),
}

#: One line per known WARNING/ERROR SDK event without a measured value, keyed ``group/name``.
EVENT_DESCRIPTIONS: dict[str, str] = {
    "network-quality-warning-raised/ice-connectivity-lost":
        "ICE connectivity was lost (the media path went to disconnected)",
    "audio/ringtone-devices-set-failed": "The ringtone output device could not be selected",
    "audio/speaker-devices-set-failed": "The speaker output device could not be selected",
    "connection/listening-error": "Cancelling a listen on the connection failed",
    "connection/error": "The SDK reported a connection error",
    "pc-connection-state/failed": "The peer connection failed (an ICE or DTLS transport failed)",
    "ice-gathering-state/none": "ICE gathering found no candidates",
    "ice-gathering-state/timeout": "ICE candidate gathering timed out",
    "ice-connection-state/failed": "ICE failed: no usable candidate pair",
    "get-user-media/failed": "The microphone request (getUserMedia) failed",
    "get-user-media/denied": "The microphone request (getUserMedia) was denied",
    "registration/unsupported-cancel-message-error":
        "Push registration failed: unsupported cancel message",
    "registration/registration-error": "Push notification registration failed",
    "registration/unregistration-error": "Push notification unregistration failed",
    "registration/unregistration-registration-error":
        "Push notification unregistration and re-registration failed",
    "dtls-transport-state/failed": "The DTLS transport failed: media could not be secured",
    "call-message/error": "A user-defined call message could not be sent",
}

_GROUP_CATEGORIES = {
    "get-user-media": DEVICE, "audio": DEVICE, "audio-level-warning-raised": DEVICE,
    "audio-level-warning": DEVICE, "ice-connection-state": MEDIA, "ice-gathering-state": MEDIA,
    "pc-connection-state": MEDIA, "dtls-transport-state": MEDIA,
    "network-quality-warning-raised": NETWORK, "network-quality-warning": NETWORK,
    "connection": NETWORK,
}


def lookup(code: int | None) -> ErrorCode | None:
    """The catalogue entry for ``code``, or None when it is unknown or missing."""
    return ERROR_CODES.get(code) if code is not None else None


def describe(code: int | None) -> str | None:
    """One line saying what ``code`` means, or None when it is unknown."""
    entry = lookup(code)
    return entry.meaning if entry else None


def category(code: int | None) -> str:
    """The category of ``code``; ``other`` when it is unknown or missing."""
    entry = lookup(code)
    return entry.category if entry else OTHER


def is_outcome(code: int | None) -> bool:
    """Whether ``code`` only says how the call ended (busy, declined, ...)."""
    return code in OUTCOME_CODES


def describe_event(group: str | None, name: str | None, threshold: float | None = None,
                   values: Sequence[float] = ()) -> str | None:
    """One line for a known WARNING/ERROR SDK event, or None.

    A quality warning is described with the threshold and values it carries, else
    as "above (below) the SDK's threshold".
    """
    if (group or "").endswith("-warning-raised") and name in WARNINGS:
        return WARNINGS[name].describe(threshold, values)
    return EVENT_DESCRIPTIONS.get(f"{group}/{name}")


def event_category(group: str | None, name: str | None, code: int | None = None) -> str:
    """The category of an event: its error code's when known, else its group's."""
    if lookup(code) is not None:
        return category(code)
    if (name or "").startswith("ice-") or (group or "").startswith("ice-"):
        return MEDIA
    return _GROUP_CATEGORIES.get(group or "", OTHER)


def _figure(value: float) -> str:
    """A threshold or sample as people write it: ``400``, ``3``, ``327.67``."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
