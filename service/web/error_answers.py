"""JSON error answers: ``{"error": code, "message": what to fix}`` (+ ``field``)."""

from __future__ import annotations

from flask import Response, jsonify


class RequestRefused(Exception):
    """A request callwatch will not act on; carries the HTTP answer it gets."""

    def __init__(self, status: int, error: str, message: str, *, field: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.retry_after = retry_after

    def to_response(self) -> Response:
        body: dict[str, str] = {"error": self.error, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        response = jsonify(body)
        response.status_code = self.status
        if self.retry_after is not None:
            response.headers["Retry-After"] = str(self.retry_after)
        return response


def invalid_field(field: str, message: str) -> RequestRefused:
    return RequestRefused(400, "invalid_request", message, field=field)
