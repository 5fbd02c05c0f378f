"""``vpa schemas export``: one JSON Schema file per message type, plus the task shape."""
from __future__ import annotations

import json
from pathlib import Path

from schemas.envelope import ENVELOPE_TYPES
from schemas.task import Task

DEFAULT_DIR = Path(__file__).resolve().parent / "json"


def render_all() -> dict[str, str]:
    """File name -> JSON text, deterministic so the committed files can be compared in a test."""
    files = {}
    for type_, model in sorted(ENVELOPE_TYPES.items()):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["title"] = type_
        schema["properties"]["type"] = {"const": type_, "title": "Type", "type": "string"}
        files[f"{type_}.json"] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    task = Task.model_json_schema(mode="serialization")
    task["title"] = "task"
    files["task.json"] = json.dumps(task, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return files


def export(out_dir: Path = DEFAULT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for stale in out_dir.glob("*.json"):
        if stale.name not in render_all():
            stale.unlink()
    return written
