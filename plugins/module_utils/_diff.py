# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired versus running: which fields differ, whether the running container can take each change in
place, and a before/after view with secrets masked.

What is observed comes from :mod:`._container_config` (the record for create-time settings, the Engine
for the settings ``docker update`` changes, so a manual change on the host shows up as drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ._container_config import in_place_update
from ._service_spec import SECRET_FIELDS, SECRET_MASK


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any
    in_place: bool = False
    update: Optional[dict[str, Any]] = None  # the Engine body that makes the change in place
    why_recreate: Optional[str] = None  # set when an updatable setting cannot change on this container


def compare(desired: dict[str, Any], observed: dict[str, Any],
            container: Optional[dict[str, Any]] = None) -> list[Change]:
    """Fields of ``desired`` that ``observed`` lacks or holds differently; with ``container`` (the running one),
    each change says whether and how that container takes it in place."""
    changes = []
    for name, value in desired.items():
        if observed.get(name) == value:
            continue
        how = in_place_update(name, value, container) if container is not None else None
        if isinstance(how, dict):
            changes.append(Change(name, observed.get(name), value, in_place=True, update=how))
        else:
            changes.append(Change(name, observed.get(name), value, why_recreate=how))
    return changes


def masked(field_name: str, value: Any) -> Any:
    if field_name in SECRET_FIELDS and isinstance(value, dict):
        return {key: SECRET_MASK for key in value}
    return value


def diff_view(changes: list[Change], before_state: Optional[str], after_state: Optional[str]) -> dict[str, Any]:
    """Ansible's diff dict: only the fields that differ, secrets masked (a changed secret is flagged), and why
    a change that is normally made in place needs a new container."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for change in changes:
        before[change.field] = masked(change.field, change.before)
        after[change.field] = masked(change.field, change.after)
        if change.field in SECRET_FIELDS:
            changed_keys = sorted(k for k in set(change.before or {}) | set(change.after or {})
                                  if (change.before or {}).get(k) != (change.after or {}).get(k))
            after[change.field + "_changed"] = changed_keys
    reasons = ["%s: %s" % (c.field, c.why_recreate) for c in changes if c.why_recreate]
    if reasons:
        after["recreate_reason"] = reasons
    if before_state != after_state:
        before["state"] = before_state
        after["state"] = after_state
    return {"before": before, "after": after}
