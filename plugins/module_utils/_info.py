# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What runs on a host, per managed service: the data behind a fleet drift report."""

from __future__ import annotations

from typing import Any, Optional

from ._container_config import observed_fields, read_record
from ._diff import compare
from ._engine import Engine
from ._image_ref import ImageRefError, parse_image_ref
from ._record import LABEL_MANAGED, LABEL_STACK, labels_of


def describe(engine: Engine, container: dict[str, Any]) -> dict[str, Any]:
    state = container["State"]
    record = read_record(engine, container)
    # Drift: what the Engine reports against what the collection last applied (its in-place updates included).
    drift = [c.field for c in compare(record.applied, observed_fields(container, record))] if record else []
    image = container["Config"].get("Image")
    try:
        digest: Optional[str] = parse_image_ref(image).digest
    except ImageRefError:
        digest = None
    return dict(
        name=record.service if record else container["Name"].lstrip("/"),
        container_id=container["Id"],
        image=image,
        digest=digest,
        spec_hash=record.applied_hash if record else None,
        previous_image=record.previous_image if record else None,
        stack=labels_of(container).get(LABEL_STACK),
        state=state.get("Status"),
        health=(state.get("Health") or {}).get("Status"),
        restart_count=container.get("RestartCount", 0),
        started_at=state.get("StartedAt"),
        volumes=[dict(name=m.get("Name"), target=m.get("Destination"), driver=m.get("Driver"))
                 for m in container.get("Mounts", []) if m.get("Type") == "volume"],
        drift=drift,
    )


def managed_services(engine: Engine, names: list[str], stack: Optional[str]) -> list[dict[str, Any]]:
    label = "%s=%s" % (LABEL_STACK, stack) if stack else "%s=true" % LABEL_MANAGED
    found = [describe(engine, c) for c in engine.containers_with_label(label)]
    if names:
        found = [s for s in found if s["name"] in names]
    return sorted(found, key=lambda s: s["name"])
