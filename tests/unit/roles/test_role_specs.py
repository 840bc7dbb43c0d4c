"""Each role's defaults/main.yml and meta/argument_specs.yml agree, and every variable carries the role's prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROLES = Path(__file__).resolve().parents[3] / "roles"
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "meta" / "argument_specs.yml").is_file())


def load(role: str, *parts: str) -> Any:
    return yaml.safe_load((ROLES / role).joinpath(*parts).read_text())


def test_there_are_roles_to_check() -> None:
    assert {"deploy", "rolling_update", "volume_backup"} <= set(ROLE_NAMES)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_default_is_in_the_main_spec_with_the_same_value(role: str) -> None:
    defaults = load(role, "defaults", "main.yml")
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        if isinstance(value, str) and "{{" in value:
            assert "default" not in options[name], f"{name}: a templated default belongs in defaults/main.yml only"
        elif options[name]["type"] == "list" and options[name].get("elements") == "str":
            assert [str(v) for v in value] == options[name]["default"], name
        else:
            assert options[name]["default"] == value, name


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_variable_carries_the_role_prefix(role: str) -> None:
    names = set(load(role, "defaults", "main.yml"))
    vars_file = ROLES / role / "vars" / "main.yml"
    if vars_file.is_file():
        names |= set(yaml.safe_load(vars_file.read_text()))
    assert [n for n in names if not n.startswith(role + "_")] == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_entry_point_has_a_spec_and_a_task_file(role: str) -> None:
    specs = load(role, "meta", "argument_specs.yml")["argument_specs"]
    for entry, spec in specs.items():
        assert (ROLES / role / "tasks" / f"{entry}.yml").is_file(), entry
        assert spec["options"], entry


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_survey_strings_pass_where_a_bool_or_an_int_is_expected(role: str) -> None:
    # AWX surveys give every answer as a string; the spec converts "true" and "3" rather than refuse them.
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    survey = {name: {"bool": "true", "int": "3"}[spec["type"]] for name, spec in options.items()
              if spec.get("type") in ("bool", "int")}
    result = ArgumentSpecValidator(options).validate(survey)
    assert result.error_messages == []
    assert {name: result.validated_parameters[name] for name in survey} == {
        name: True if value == "true" else 3 for name, value in survey.items()}


def test_volume_backup_spec_rejects_an_unknown_action_and_a_non_number_keep() -> None:
    options = load("volume_backup", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    errors = ArgumentSpecValidator(options).validate(
        {"volume_backup_action": "copy", "volume_backup_keep": "seven"}).error_messages
    assert any("volume_backup_action" in e and "backup, restore" in e for e in errors), errors
    assert any("volume_backup_keep" in e for e in errors), errors
