# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What runs on a host, per managed service: the data behind a fleet drift report."""

from __future__ import annotations

from typing import Any, Optional

from ._diff import compare, observed_fields, recorded_fields
from ._engine import Engine
from ._image_ref import ImageRefError, parse_image_ref
from ._service_spec import LABEL_MANAGED, LABEL_PREVIOUS_IMAGE, LABEL_SERVICE, LABEL_SPEC_HASH, LABEL_STACK


def describe(container: dict[str, Any]) -> dict[str, Any]:
    labels = container["Config"].get("Labels") or {}
    state = container["State"]
    recorded = recorded_fields(container) or {}
    observed = observed_fields(container) or {}
    image = container["Config"].get("Image")
    try:
        digest: Optional[str] = parse_image_ref(image).digest
    except ImageRefError:
        digest = None
    return dict(
        name=labels.get(LABEL_SERVICE) or container["Name"].lstrip("/"),
        container_id=container["Id"],
        image=image,
        digest=digest,
        spec_hash=labels.get(LABEL_SPEC_HASH),
        previous_image=labels.get(LABEL_PREVIOUS_IMAGE),
        stack=labels.get(LABEL_STACK),
        state=state.get("Status"),
        health=(state.get("Health") or {}).get("Status"),
        restart_count=container.get("RestartCount", 0),
        started_at=state.get("StartedAt"),
        volumes=[dict(name=m.get("Name"), target=m.get("Destination"), driver=m.get("Driver"))
                 for m in container.get("Mounts", []) if m.get("Type") == "volume"],
        drift=[change.field for change in compare(recorded, observed)],
    )


def managed_services(engine: Engine, names: list[str], stack: Optional[str]) -> list[dict[str, Any]]:
    label = "%s=%s" % (LABEL_STACK, stack) if stack else "%s=true" % LABEL_MANAGED
    found = [describe(c) for c in engine.containers_with_label(label)]
    if names:
        found = [s for s in found if s["name"] in names]
    return sorted(found, key=lambda s: s["name"])
