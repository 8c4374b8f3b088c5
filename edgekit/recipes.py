"""A recipe is everything that decides an artifact; its hash keys the conversion cache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "edgekit.recipe/1"


@dataclass(frozen=True)
class Recipe:
    source_sha256: str
    backend: str
    quantization: str
    calibration_sha256: str | None = None
    target_options: dict[str, Any] = field(default_factory=dict)
    toolchain: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}

    def key(self) -> str:
        """sha256 of the canonical JSON form: equal recipes, equal keys."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
