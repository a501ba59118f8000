"""Exception types of the project.

Every error a user can cause (config, data, request) is one of these, so entry points can
print the message without a traceback and exit non-zero.
"""

from __future__ import annotations


class LappError(Exception):
    """Base class for errors caused by user input; the CLI prints them without a traceback."""

    exit_code = 2


class ConfigError(LappError):
    """One or more configuration problems, reported together.

    Args:
        problems: one line per problem, each naming the full key, the value and what is allowed.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")

    def __reduce__(self):  # pickled from parallel workers: rebuild from the problems, not the text
        return (type(self), (self.problems,))


class DataError(LappError):
    """The data cannot be read or used as configured."""


class RunDirError(LappError):
    """A run directory or one of its artifacts is missing or unusable."""


class ArtifactError(LappError):
    """A model artifact cannot be served: not ONNX, unreadable, or not the exported contract."""


class RequestError(LappError):
    """A request to the model server (or a row of a `lapp predict` file) is unusable.

    Args:
        message: what was wrong and what is allowed.
        status: the HTTP status it maps to (400 malformed, 401 key, 413 too large, 422 invalid).
    """

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class ExportError(LappError):
    """A model cannot be exported or its exported artifact fails verification."""


class ParityError(ExportError):
    """An exported artifact disagrees with the torch model beyond the configured tolerance."""


class CompressionError(LappError):
    """A compression step cannot be applied as configured (model, calibration data, teacher)."""


class SweepError(LappError):
    """A hyperparameter sweep cannot start or must stop (study mismatch, too many failures)."""
