"""The contract of the VPA dashlet pipeline (DESIGN.md section 4) as pydantic models.

Everything that crosses a topic or the HTTP API is described here; the services import these
models, other teams read the exported JSON Schema files in ``schemas/json/``.
"""
from schemas.envelope import Actor, Envelope, ENVELOPE_TYPES, TOPIC_OF_TYPE, topic_for_type
from schemas.task import HistoryEntry, Task

__all__ = ["Actor", "Envelope", "ENVELOPE_TYPES", "TOPIC_OF_TYPE", "topic_for_type", "HistoryEntry", "Task"]
