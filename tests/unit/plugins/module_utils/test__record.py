from __future__ import annotations

import json
from typing import Any

from ansible_collections.dockhand.containers.plugins.module_utils._record import (
    LABEL_SPEC, LABEL_SPEC_HASH, parse_updates, read_record, record_labels, spec_hash, updates_archive,
)

FIELDS = {"image": "reg/app@sha256:" + "1" * 64, "restart_policy": {"name": "on-failure", "retries": 3}}


def container(labels: dict[str, str]) -> dict[str, Any]:
    return {"Name": "/web", "Config": {"Labels": labels}}


def written(**overrides: Any) -> dict[str, str]:
    given: dict[str, Any] = dict(service="web", stack="shop", digest="sha256:" + "1" * 64, previous_image=None,
                                 previous_spec=None, rolled_back=False)
    given.update(overrides)
    return record_labels(FIELDS, **given)


def test_what_is_written_is_read_back() -> None:
    previous = dict(FIELDS, image="reg/app@sha256:" + "2" * 64)
    record = read_record(container(written(previous_image=previous["image"], previous_spec=previous,
                                           rolled_back=True)))
    assert record is not None
    assert (record.service, record.stack, record.spec, record.spec_hash) == ("web", "shop", FIELDS, spec_hash(FIELDS))
    assert (record.previous_image, record.previous_spec, record.rolled_back) == (previous["image"], previous, True)
    assert record.applied == FIELDS and record.applied_hash == record.spec_hash


def test_no_or_unreadable_spec_label_means_no_record() -> None:
    assert read_record(container({})) is None
    assert read_record(container({LABEL_SPEC: "not json"})) is None
    assert read_record(container({LABEL_SPEC: json.dumps(["a list"])})) is None


def test_in_place_updates_count_only_for_the_spec_they_were_written_for() -> None:
    labels = written()
    record = read_record(container(labels))
    assert record is not None
    update = {"restart_policy": {"name": "on-failure", "retries": 4}}
    content = parse_updates(updates_archive(record, update))
    assert content == {"spec_hash": labels[LABEL_SPEC_HASH], "fields": update}
    updated = read_record(container(labels), content)
    assert updated is not None and updated.applied == dict(FIELDS, **update)
    assert updated.applied_hash == spec_hash(dict(FIELDS, **update))
    other = read_record(container(dict(labels, **{LABEL_SPEC_HASH: "something else"})), content)
    assert other is not None and other.updates == {}


def test_a_later_update_keeps_the_earlier_ones() -> None:
    record = read_record(container(written()), {"spec_hash": spec_hash(FIELDS), "fields": {"memory": 1}})
    assert record is not None
    assert parse_updates(updates_archive(record, {"cpus": 0.5})) == {"spec_hash": spec_hash(FIELDS),
                                                                     "fields": {"memory": 1, "cpus": 0.5}}


def test_an_unreadable_archive_is_no_update() -> None:
    assert parse_updates(b"not a tar stream") is None
