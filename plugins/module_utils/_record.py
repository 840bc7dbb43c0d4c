# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection records on a container: label names, writing them, reading them into a :class:`Record`.

Labels are fixed when a container is created. Settings the collection later changes in place
(``docker update``) are recorded in a small file inside the container (:data:`UPDATES_PATH`),
tied to the spec hash of the labels, so the collection's own updates are never mistaken for drift
while a manual ``docker update`` still is.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any, Optional

LABEL_PREFIX = "dockhand."
LABEL_MANAGED = "dockhand.managed"
LABEL_SERVICE = "dockhand.service"
LABEL_STACK = "dockhand.stack"
LABEL_SPEC = "dockhand.spec"
LABEL_SPEC_HASH = "dockhand.spec-hash"
LABEL_DIGEST = "dockhand.digest"
LABEL_PREVIOUS_IMAGE = "dockhand.previous-image"
LABEL_PREVIOUS_SPEC = "dockhand.previous-spec"
LABEL_ROLLED_BACK = "dockhand.rolled-back"

UPDATES_DIR = "/"
UPDATES_FILE = ".dockhand-updates.json"
UPDATES_PATH = UPDATES_DIR + UPDATES_FILE


@dataclass(frozen=True)
class Record:
    """One managed container's record: the deployed spec fields and the deployment it replaced."""

    service: str
    stack: Optional[str]
    spec: dict[str, Any]
    spec_hash: str
    digest: Optional[str] = None
    previous_image: Optional[str] = None
    previous_spec: Optional[dict[str, Any]] = None
    rolled_back: bool = False
    updates: dict[str, Any] = field(default_factory=dict)  # fields changed in place since the container was created

    @property
    def applied(self) -> dict[str, Any]:
        """What the collection last applied: the spec as created, with its in-place updates."""
        return dict(self.spec, **self.updates)

    @property
    def applied_hash(self) -> str:
        return spec_hash(self.applied) if self.updates else self.spec_hash


def spec_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def labels_of(container: dict[str, Any]) -> dict[str, str]:
    return (container.get("Config") or {}).get("Labels") or {}


def _json_label(labels: dict[str, str], key: str) -> Optional[dict[str, Any]]:
    text = labels.get(key)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def read_record(container: dict[str, Any], updates: Optional[dict[str, Any]] = None) -> Optional[Record]:
    """The record of a managed container, or None when it carries no (readable) spec label.

    ``updates`` is the content of :data:`UPDATES_PATH` (see :func:`parse_updates`); it only counts
    when it was written for this container's spec.
    """
    labels = labels_of(container)
    spec = _json_label(labels, LABEL_SPEC)
    if spec is None:
        return None
    recorded_hash = labels.get(LABEL_SPEC_HASH) or spec_hash(spec)
    own_updates = (updates or {}).get("fields") if (updates or {}).get("spec_hash") == recorded_hash else None
    return Record(
        service=labels.get(LABEL_SERVICE) or str(container.get("Name", "")).lstrip("/"),
        stack=labels.get(LABEL_STACK),
        spec=spec,
        spec_hash=recorded_hash,
        digest=labels.get(LABEL_DIGEST) or None,
        previous_image=labels.get(LABEL_PREVIOUS_IMAGE),
        previous_spec=_json_label(labels, LABEL_PREVIOUS_SPEC),
        rolled_back=labels.get(LABEL_ROLLED_BACK) == "true",
        updates=dict(own_updates) if isinstance(own_updates, dict) else {},
    )


def record_labels(desired: dict[str, Any], *, service: str, stack: Optional[str], digest: Optional[str],
                  previous_image: Optional[str], previous_spec: Optional[dict[str, Any]],
                  rolled_back: bool) -> dict[str, str]:
    """The collection's labels for a new container running ``desired`` (user labels not included)."""
    labels = {
        LABEL_MANAGED: "true",
        LABEL_SERVICE: service,
        LABEL_SPEC: json.dumps(desired, sort_keys=True),
        LABEL_SPEC_HASH: spec_hash(desired),
        LABEL_DIGEST: digest or "",
    }
    if stack:
        labels[LABEL_STACK] = stack
    if previous_image:
        labels[LABEL_PREVIOUS_IMAGE] = previous_image
    if previous_spec:
        labels[LABEL_PREVIOUS_SPEC] = json.dumps(previous_spec, sort_keys=True)
    if rolled_back:
        labels[LABEL_ROLLED_BACK] = "true"
    return labels


def updates_archive(record: Record, updates: dict[str, Any]) -> bytes:
    """A tar stream holding :data:`UPDATES_FILE` for ``record`` with ``updates`` (for the Engine's put_archive)."""
    data = json.dumps({"spec_hash": record.spec_hash, "fields": dict(record.updates, **updates)},
                      sort_keys=True).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(UPDATES_FILE)
        info.size = len(data)
        info.mode = 0o600
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def parse_updates(archive: bytes) -> Optional[dict[str, Any]]:
    """The content of :data:`UPDATES_FILE` from the Engine's get_archive tar stream (None if unreadable)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
            member = tar.extractfile(UPDATES_FILE)
            value = json.loads(member.read()) if member is not None else None
    except (tarfile.TarError, KeyError, ValueError):
        return None
    return value if isinstance(value, dict) else None
