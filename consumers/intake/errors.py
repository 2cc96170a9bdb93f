"""The intake API's error answers: every one an ErrorBody, with the fields at fault.

docs/intake.md ("Errors") lists them; checks happen in the order given there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from consumers.intake.models import ErrorBody, FieldProblem

# At most this many field errors, each field name cut to this length, go back to a client.
_MAX_FIELD_ERRORS = 50
_MAX_FIELD_CHARS = 200


class ApiError(Exception):
    """Raise to answer a request with an error status and an ErrorBody."""

    def __init__(
        self,
        status: int,
        error: str,
        *,
        fields: Sequence[FieldProblem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.body = ErrorBody(error=error, fields=list(fields))
        self.headers = dict(headers or {})


def field_error(status: int, error: str, field: str, message: str) -> ApiError:
    """Return an ApiError that blames one field."""
    return ApiError(status, error, fields=[FieldProblem(field=field, message=message)])


def too_many(wait_s: float) -> ApiError:
    """Return the 429 of a rate limit, with Retry-After in whole seconds."""
    return ApiError(
        429,
        "too many requests; retry after the time in Retry-After",
        headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
    )


def unauthorised() -> ApiError:
    """Return the 401 of a missing or inactive token."""
    # The same answer for every reason (unknown, revoked, expired, disabled): see docs/auth.md.
    return ApiError(401, "unauthorised", headers={"WWW-Authenticate": "Bearer"})


_ERROR_MEANINGS = {
    400: "The body is empty or not JSON.",
    401: "No token, or not an active one.",
    403: "The caller's role or enterprise does not allow this.",
    404: "No such alarm, or not one the caller may see (the same answer for both).",
    409: "The idempotency_key was already used with a different body.",
    413: "The body is larger than the limit.",
    422: "A field is invalid; `fields` names each.",
    429: "Past the caller's rate limit; see Retry-After.",
    503: "Kafka or PostgreSQL is unavailable; no receipt was given.",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI `responses` of these error statuses, each with the ErrorBody."""
    return {s: {"model": ErrorBody, "description": _ERROR_MEANINGS[s]} for s in statuses}


def _field_of(loc: Sequence[int | str]) -> str:
    # FastAPI prefixes where the value came from; the client knows its body by field names.
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "path", "query", "header"}:
        parts = parts[1:]
    return (".".join(parts) or "$")[:_MAX_FIELD_CHARS]


def validation_error(exc: RequestValidationError) -> ApiError:
    """Return the 400 (no JSON body) or 422 (fields named) of a request FastAPI refused."""
    errors = list(exc.errors())
    if any(error["type"] == "json_invalid" for error in errors):
        detail = next(e for e in errors if e["type"] == "json_invalid").get("ctx", {})
        return field_error(400, "the body is not valid JSON", "$", str(detail.get("error", "")))
    # FastAPI reports an empty body as the body missing, and a bare `null` as a body of None.
    if any(tuple(e["loc"]) == ("body",) and e.get("input") is None for e in errors):
        return field_error(400, "the body is empty", "$", "send the alarm as a JSON object")
    problems = [
        FieldProblem(field=_field_of(error["loc"]), message=str(error["msg"]))
        for error in errors[:_MAX_FIELD_ERRORS]
    ]
    names = ", ".join(problem.field for problem in problems[:3])
    return ApiError(422, f"invalid request: {names}", fields=problems)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of app with an ErrorBody: ApiError, validation, HTTP errors."""

    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body.model_dump(), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await on_api_error(request, validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = ErrorBody(error=str(exc.detail))
        return JSONResponse(body.model_dump(), exc.status_code, headers=exc.headers)
