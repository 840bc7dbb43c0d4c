# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible side shared by the modules that converge a stack: stack, deploy_prepare and deploy_apply.

Their common options (name, services, prune, parallelism, the registry and connection options), the checks that
run before anything is touched, and the converge with its failures worded as stack's.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule, _load_params

from ._connection import ConnectionParams, connection_argument_spec
from ._engine import Engine, EngineError
from ._registry import REGISTRY_REQUIRED_TOGETHER, RegistryError, pull_auth, registry_argument_spec, tag_resolver
from ._service_spec import ServiceSpec, SpecError, service_options
from ._stack import StackError, StackResult, build_specs, converge_stack, services_shape_problem


def stack_module(extra: Optional[dict[str, Any]] = None, **module_args: Any) -> tuple[AnsibleModule, list[ServiceSpec]]:
    """The module with the stack options (and ``extra`` ones), and its services checked and built.

    A services value that is no list of dicts would get ansible-core's generic conversion message, which does not say
    which option is wrong: such a value is taken as it is, and refused with a message naming services.
    """
    argument_spec: dict[str, Any] = dict(
        name=dict(type="str", required=True),
        services=dict(type="list", elements="dict", required=True, options=service_options()),
        prune=dict(type="bool", default=False),
        parallelism=dict(type="int", default=4),
        **(extra or {}),
        **registry_argument_spec(),
        **connection_argument_spec(),
    )
    shape_problem = services_shape_problem((_load_params() or {}).get("services"))
    if shape_problem:
        argument_spec["services"] = dict(type="raw", required=True)
    module = AnsibleModule(argument_spec=argument_spec, required_together=REGISTRY_REQUIRED_TOGETHER,
                           supports_check_mode=True, **module_args)
    params = module.params
    if shape_problem:
        module.fail_json(msg="stack %s: %s" % (params["name"], shape_problem))
    if params["parallelism"] < 1:
        module.fail_json(msg="parallelism must be 1 or more (got %d)" % params["parallelism"])
    try:
        specs = build_specs(params["name"], params["services"])
    except SpecError as exc:
        module.fail_json(msg=str(exc))
    return module, specs


def converge(module: AnsibleModule, engine: Engine, specs: list[ServiceSpec], *, check_mode: bool) -> StackResult:
    """Converge (or, in check mode, predict) the stack; a failure fails the module with what was done so far."""
    params = module.params
    connection = ConnectionParams.from_params(params)
    try:
        result = converge_stack(engine, lambda: Engine(connection, engine.api_version), params["name"], specs,
                                resolve=tag_resolver(engine, params), check_mode=check_mode, prune=params["prune"],
                                parallelism=params["parallelism"], registry_auth=pull_auth(params))
    except StackError as exc:
        module.fail_json(msg="stack %s: %s" % (params["name"], exc), **exc.partial.as_dict(diff=False))
    except (EngineError, RegistryError) as exc:
        module.fail_json(msg="stack %s: %s" % (params["name"], exc))
    for service in result.results.values():
        for warning in service.warnings:
            module.warn(warning)
    return result
