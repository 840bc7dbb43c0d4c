"""Unit tests import the collection as Ansible does: ansible_collections.dockhand.containers.

.ci/venv links the checkout at .cache/collections/ansible_collections/dockhand/containers; this
makes the same link when pytest is run on its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".cache" / "collections"
LINK = COLLECTIONS / "ansible_collections" / "dockhand" / "containers"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(REPO, LINK.parent), LINK)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
