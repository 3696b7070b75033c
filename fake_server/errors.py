"""REST error envelopes (accord-protocol.md s.4)."""

from __future__ import annotations

from typing import Any

CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "already_exists",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal_error",
}


class ApiError(Exception):
    """Raised by handlers and operations; rendered as the error envelope."""

    def __init__(
        self, status: int, message: str, code: str | None = None, *, plain: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "internal_error")
        self.message = message
        self.plain = plain
        """Answered as text/plain, not the envelope (the reference's body errors 400/415/422)."""

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def body_error(status: int, message: str) -> ApiError:
    """A request-body error the reference answers in plain text (400, 415, 422)."""
    return ApiError(status, message, plain=True)


def unauthorized() -> ApiError:
    return ApiError(401, "invalid or missing authentication")
