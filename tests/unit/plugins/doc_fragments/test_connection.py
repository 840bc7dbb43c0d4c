from __future__ import annotations

import yaml

from ansible_collections.dockhand.containers.plugins.doc_fragments.connection import ModuleDocFragment


def test_without_engine_is_the_connection_fragment_without_its_requirements() -> None:
    full = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)
    without = yaml.safe_load(ModuleDocFragment.WITHOUT_ENGINE)
    assert "requirements" in full and "requirements" not in without
    assert without == {k: v for k, v in full.items() if k != "requirements"}
    assert full["attributes"]["action_group"]["membership"] == ["dockhand.containers.docker"]
