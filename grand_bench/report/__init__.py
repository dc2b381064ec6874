"""Results store and reporting."""

from .store import SCHEMA_VERSION, append_record, read_records, summarise

__all__ = ["SCHEMA_VERSION", "append_record", "read_records", "summarise"]
