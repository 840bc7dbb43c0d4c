# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired versus running: which fields differ, whether the Engine can change them in place,
and a before/after view with secrets masked.

A container's create-time settings cannot change, so the spec recorded in its ``dockhand.spec``
label is the truth for them; the settings ``docker update`` can change (restart policy, memory,
cpus) are read from the Engine, so a manual change on the host shows up as drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from ._service_spec import IN_PLACE_FIELDS, LABEL_SPEC, SECRET_FIELDS, SECRET_MASK


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any

    @property
    def in_place(self) -> bool:
        return self.field in IN_PLACE_FIELDS


def recorded_fields(container: dict[str, Any], label: str = LABEL_SPEC) -> Optional[dict[str, Any]]:
    """The spec fields recorded in a label of a managed container, or None if there is none."""
    text = (container.get("Config", {}).get("Labels") or {}).get(label)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def observed_fields(container: dict[str, Any]) -> Optional[dict[str, Any]]:
    """What the container runs with: the recorded spec, overlaid with what the Engine reports live."""
    recorded = recorded_fields(container)
    if recorded is None:
        return None
    host = container.get("HostConfig", {})
    policy = host.get("RestartPolicy") or {}
    nano_cpus = host.get("NanoCpus") or 0
    observed = dict(recorded)
    observed.update(
        image=container.get("Config", {}).get("Image", recorded.get("image")),
        restart_policy={"name": policy.get("Name") or "no", "retries": policy.get("MaximumRetryCount") or 0},
        memory=host.get("Memory") or None,
        cpus=nano_cpus / 1e9 if nano_cpus else None,
    )
    return observed


def compare(desired: dict[str, Any], observed: dict[str, Any]) -> list[Change]:
    return [Change(name, observed.get(name), value) for name, value in desired.items() if observed.get(name) != value]


def masked(field_name: str, value: Any) -> Any:
    if field_name in SECRET_FIELDS and isinstance(value, dict):
        return {key: SECRET_MASK for key in value}
    return value


def diff_view(changes: list[Change], before_state: Optional[str], after_state: Optional[str]) -> dict[str, Any]:
    """Ansible's diff dict: only the fields that differ, secrets masked (a changed secret is flagged)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for change in changes:
        before[change.field] = masked(change.field, change.before)
        after[change.field] = masked(change.field, change.after)
        if change.field in SECRET_FIELDS:
            changed_keys = sorted(k for k in set(change.before or {}) | set(change.after or {})
                                  if (change.before or {}).get(k) != (change.after or {}).get(k))
            after[change.field + "_changed"] = changed_keys
    if before_state != after_state:
        before["state"] = before_state
        after["state"] = after_state
    return {"before": before, "after": after}
