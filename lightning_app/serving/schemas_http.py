"""Request and response bodies of the HTTP API, as pydantic models for the OpenAPI docs.

The ``/predict`` handler parses bodies itself (a malformed body must answer 400, not
FastAPI's 422, and numpy validates arrays far faster than pydantic); these models document the
format and type the small JSON endpoints.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

REQUEST_KEYS = ("instances", "top_k", "probabilities")


class PredictRequest(BaseModel):
    """``POST /predict`` body."""

    instances: list[Any] = Field(
        description=(
            "One or more samples, each as the model's input spec says (GET /metadata): a list of "
            "numbers, a nested image array, an object of named columns, token ids or a string. "
            "null marks a missing value where the preprocessing imputes."
        ),
    )
    top_k: int | None = Field(
        None, ge=1, description="Classes listed per prediction (classification)."
    )
    probabilities: bool | None = Field(None, description="Include every class probability.")


class Ranked(BaseModel):
    label: str
    index: int
    score: float


class Prediction(BaseModel):
    """One prediction: classification fills label..top_k, regression value or values."""

    label: str | None = None
    index: int | None = None
    score: float | None = None
    top_k: list[Ranked] | None = None
    probabilities: list[float] | None = None
    value: float | None = None
    values: list[float] | None = None


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model_version: str


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: what went wrong and what is allowed."""

    error: ErrorDetail


class Status(BaseModel):
    status: str


class Metadata(BaseModel):
    """``GET /metadata``: what the served model takes and returns."""

    model_version: str
    artifact: str
    task: str
    classes: list[str]
    input: dict[str, Any]
    metrics: dict[str, Any]
    config_hash: str | None
    serving: dict[str, Any]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed JSON"},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
    413: {"model": ErrorResponse, "description": "Body or instance count over the limit"},
    415: {"model": ErrorResponse, "description": "Body is not JSON"},
    422: {
        "model": ErrorResponse,
        "description": "Wrong shape, type or column, naming what is expected",
    },
    503: {"model": ErrorResponse, "description": "Busy, timed out or shutting down; retry"},
}


def request_body_doc(example: dict[str, Any]) -> dict[str, Any]:
    """The ``openapi_extra`` request-body entry for ``/predict``, with a valid example."""
    schema = PredictRequest.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }
