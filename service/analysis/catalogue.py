"""What Voice SDK error codes and WARNING/ERROR SDK events mean, in one line each.

The classifier uses this to give every issue a ``description`` a person can act on,
and receivers can use ``category`` to route an alert (a denied microphone is the
user's, a failed ICE negotiation the network's). Sources: reference/twilio.md
section 4 (codes, from twilio-voice.js ``errors/generated.ts``) and 3.4 (events).
Unknown codes and events are normal; they simply have no entry.
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICE = "device/permission"
SIGNALING = "signaling/network"
MEDIA = "media/ICE"
AUTH = "auth/token"
OUTCOME = "call outcome"
OTHER = "other"
CATEGORIES = (DEVICE, SIGNALING, MEDIA, AUTH, OUTCOME, OTHER)


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
    (20101, "AccessTokenInvalid", "The access token could not be validated", AUTH),
    (20104, "AccessTokenExpired", "The access token has expired or has an invalid expiry", AUTH),
    (20151, "AuthenticationFailed", "Authentication with the access token (JWT) failed", AUTH),
    (31000, "UnknownError", "A generic Voice SDK error", OTHER),
    (31001, "ApplicationNotFound", "The TwiML App named in the token was not found", OTHER),
    (31002, "ConnectionDeclined", "The connection was declined", OUTCOME),
    (31003, "ConnectionTimeout", "The media connection timed out (legacy ICE failure)", MEDIA),
    (31005, "ConnectionError", "The signalling WebSocket ended unexpectedly", SIGNALING),
    (31006, "AudioDeviceError", "The audio device could not be started", DEVICE),
    (31008, "CallCancelled", "The call could not be answered: it had already ended", OUTCOME),
    (31009, "TransportError", "No transport was available to send or receive messages",
     SIGNALING),
    (31100, "MalformedRequest", "The request was malformed", OTHER),
    (31101, "MissingParameterArray", "The request was missing its parameter array", OTHER),
    (31102, "AuthorizationTokenMissing", "The request carried no authorization token", OTHER),
    (31103, "MaxParameterLengthExceeded", "A request parameter was too long", OTHER),
    (31104, "BadTwimlParameter", "The request carried an invalid bridge token", OTHER),
    (31105, "InvalidClientName", "The client name in the request is invalid", OTHER),
    (31107, "InvalidReconnectParameter", "The reconnect parameter is invalid", OTHER),
    (31201, "AuthorizationError", "The client was not authorized", AUTH),
    (31202, "AccessTokenSignatureValidationFailed",
     "The access token's signature could not be validated", AUTH),
    (31203, "NoValidAccount", "No valid account was found for the access token", AUTH),
    (31204, "InvalidJWTToken", "The access token (JWT) is invalid", AUTH),
    (31205, "JWTTokenExpired", "The access token (JWT) has expired", AUTH),
    (31206, "RateExceeded", "Too many requests with this token: rate exceeded", AUTH),
    (31207, "JWTTokenExpirationTooLong", "The access token's expiry is too far in the future",
     AUTH),
    (31208, "PermissionDenied", "The user denied access to the microphone", DEVICE),
    (31209, "ReconnectAttemptNotAuthorized", "The reconnect attempt was not authorized", AUTH),
    (31210, "CallMessageEventTypeInvalid", "A call message had an invalid event type", OTHER),
    (31212, "CallMessagePayloadSizeExceeded", "A call message's payload was too large", OTHER),
    (31400, "BadRequest", "The far end rejected the request as malformed (SIP 400)", OUTCOME),
    (31401, "PermissionDenied", "The user or browser denied access to the microphone", DEVICE),
    (31402, "AcquisitionFailed", "The microphone could not be acquired", DEVICE),
    (31404, "NotFound", "The called party was not found (SIP 404)", OUTCOME),
    (31429, "TooManyRequests", "Too many requests (SIP 429)", OUTCOME),
    (31480, "TemporarilyUnavailable", "The called party is temporarily unavailable (SIP 480)",
     OUTCOME),
    (31481, "CallTransactionDoesNotExist", "The call or transaction does not exist (SIP 481)",
     OUTCOME),
    (31486, "BusyHere", "The called party is busy (SIP 486)", OUTCOME),
    (31600, "BusyEverywhere", "The called party is busy everywhere (SIP 600)", OUTCOME),
    (31603, "Decline", "The called party declined the call (SIP 603)", OUTCOME),
    (31604, "DoesNotExistAnywhere", "The called party does not exist anywhere (SIP 604)",
     OUTCOME),
    (53000, "SignalingConnectionError", "The signalling connection could not be established",
     SIGNALING),
    (53001, "SignalingConnectionDisconnected", "The signalling connection was lost",
     SIGNALING),
    (53400, "ClientLocalDescFailed", "The client could not create or apply its local media "
     "description (SDP)", MEDIA),
    (53402, "ClientRemoteDescFailed", "The client could not apply the remote media "
     "description (SDP)", MEDIA),
    (53405, "MediaConnectionFailed", "The media connection failed: ICE found no working path",
     MEDIA),
)

#: One line per known WARNING/ERROR SDK event, keyed ``group/name``.
EVENT_DESCRIPTIONS: dict[str, str] = {
    "network-quality-warning-raised/high-rtt":
        "Round-trip time above 400 ms in 3 of the last 5 samples",
    "network-quality-warning-raised/low-mos":
        "Mean opinion score (MOS) below 3.5 in 3 of the last 5 samples",
    "network-quality-warning-raised/high-jitter":
        "Jitter above 30 ms in 3 of the last 5 samples",
    "network-quality-warning-raised/high-packet-loss":
        "Packet loss above 1 % in 3 of the last 5 samples",
    "network-quality-warning-raised/high-packets-lost-fraction":
        "Average packet loss above 3 % over the last 7 to 10 samples",
    "network-quality-warning-raised/low-bytes-received":
        "No audio bytes received for 3 consecutive seconds",
    "network-quality-warning-raised/low-bytes-sent":
        "No audio bytes sent for 3 consecutive seconds",
    "network-quality-warning-raised/ice-connectivity-lost":
        "ICE connectivity was lost (the media path went to disconnected)",
    "audio-level-warning-raised/constant-audio-input-level":
        "Microphone level flat: the microphone may be muted or silent",
    "audio-level-warning-raised/constant-audio-output-level":
        "Speaker level flat: no audio is reaching the caller",
    "audio/ringtone-devices-set-failed": "The ringtone output device could not be selected",
    "audio/speaker-devices-set-failed": "The speaker output device could not be selected",
    "connection/listening-error": "Cancelling a listen on the connection failed",
    "connection/error": "The SDK reported a connection error",
    "pc-connection-state/failed": "The peer connection failed (an ICE or DTLS transport failed)",
    "ice-gathering-state/none": "ICE gathering found no candidates",
    "ice-gathering-state/timeout": "ICE candidate gathering timed out",
    "ice-connection-state/failed": "ICE failed: no usable candidate pair",
    "get-user-media/failed": "The microphone could not be accessed",
    "get-user-media/denied": "The user or browser denied access to the microphone",
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
    "ice-connection-state": MEDIA, "ice-gathering-state": MEDIA, "pc-connection-state": MEDIA,
    "dtls-transport-state": MEDIA, "network-quality-warning-raised": SIGNALING,
    "connection": SIGNALING, "registration": SIGNALING,
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


def describe_event(group: str | None, name: str | None) -> str | None:
    """One line for a known WARNING/ERROR SDK event, or None."""
    return EVENT_DESCRIPTIONS.get(f"{group}/{name}")


def event_category(group: str | None, name: str | None, code: int | None = None) -> str:
    """The category of an event: its error code's when known, else its group's."""
    if lookup(code) is not None:
        return category(code)
    if (group or "").startswith("ice-") or (name or "").startswith("ice-"):
        return MEDIA
    return _GROUP_CATEGORIES.get(group or "", OTHER)
