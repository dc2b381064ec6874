"""The one exception type of the data layer."""

from __future__ import annotations

from collections.abc import Iterable

from grand_bench.errors import GrandBenchError
from grand_bench.errors import unknown_choice as choice_message


class DataError(GrandBenchError):
    """A dataset, split or rewiring request that cannot be served; the message is one actionable line.

    A RuntimeError (through GrandBenchError), so the CLI prints it as one line without a traceback.
    """


def unknown_choice(what: str, value: object, valid: Iterable[str]) -> DataError:
    """The one-line error for a value outside a fixed set of choices, e.g. an unknown loader name."""
    return DataError(choice_message(what, value, valid))
