"""The collection as users get it: build the tarball, install it, let ansible-doc read it.

Runs without the lab: it needs only ansible-core and the working tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.nolab

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "dockhand"
NAME = "containers"
COLLECTION = f"{NAMESPACE}.{NAME}"
# The modules issue 2 promises; more may follow, so these are a floor, not the full list.
PROMISED_MODULES = {"image_digest", "service", "stack", "service_info"}
# Modules that never talk to a Docker Engine: the load balancer, the host's lock and audit files, the controller's run
# journal, and the ssh-to-ssh volume stream the controller joins. They stay out of the docker action group.
ENGINE_FREE_MODULES = {"haproxy_server", "deploy_lock", "deploy_audit", "deploy_audit_info", "deploy_run",
                       "volume_transfer"}


def tool(name: str) -> str:
    """The venv's own Ansible command, next to the running Python, whatever PATH says."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


@dataclass(frozen=True)
class InstalledCollection:
    tarball: Path
    collections_path: Path
    install_dir: Path
    env: dict[str, str]


def isolated_env(work: Path, collections_path: Path) -> dict[str, str]:
    """Environment in which Ansible can only find the installed copy, never the checkout."""
    empty_config = work / "ansible.cfg"
    empty_config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(empty_config),
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_NOCOLOR="1",
    )
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def source_modules() -> set[str]:
    return {p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__"}


def version_in_galaxy_yml() -> str:
    return str(yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> InstalledCollection:
    work = tmp_path_factory.mktemp("packaging")
    collections_path = work / "collections"
    env = isolated_env(work, collections_path)
    run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(work), str(REPO_ROOT)], cwd=work, env=env)
    tarball = work / f"{NAMESPACE}-{NAME}-{version_in_galaxy_yml()}.tar.gz"
    assert tarball.is_file(), f"build did not produce {tarball.name}: {sorted(p.name for p in work.iterdir())}"
    # --offline: the collection has no dependencies, so Galaxy has nothing to answer.
    run([tool("ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections_path), str(tarball)],
        cwd=work, env=env)
    install_dir = collections_path / "ansible_collections" / NAMESPACE / NAME
    return InstalledCollection(tarball, collections_path, install_dir, env)


def test_tarball_ships_the_collection_and_no_dev_clutter(installed: InstalledCollection) -> None:
    with tarfile.open(installed.tarball) as tar:
        names = set(tar.getnames())
    for required in ("MANIFEST.json", "FILES.json", "README.md", "COPYING", "meta/runtime.yml",
                     "meta/execution-environment.yml", "requirements.txt", "bindep.txt"):
        assert required in names
    assert {f"plugins/modules/{m}.py" for m in source_modules()} <= names
    # The repository's tooling, tests and lab are for its developers, not for the collection's users.
    dev_only = {".venv", ".cache", ".ci", ".config", ".git", ".gitignore", ".ansible-lint", ".yamllint", "ansible.cfg",
                "benchmarks", "molecule", "mypy.ini", "tests"}
    clutter = {n for n in names if n.split("/")[0] in dev_only or "__pycache__" in n}
    assert not clutter, f"dev files in the tarball: {sorted(clutter)[:10]}"


def test_tarball_carries_the_gpl_text(installed: InstalledCollection) -> None:
    text = (installed.install_dir / "COPYING").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text


def test_installed_copy_matches_galaxy_yml(installed: InstalledCollection) -> None:
    manifest = json.loads((installed.install_dir / "MANIFEST.json").read_text())
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (NAMESPACE, NAME, version_in_galaxy_yml())
    assert info["license"] == ["GPL-3.0-or-later"]


def test_ansible_doc_lists_every_module_of_the_installed_copy(installed: InstalledCollection) -> None:
    result = run([tool("ansible-doc"), "-t", "module", "-l", "--json", COLLECTION],
                 cwd=installed.collections_path, env=installed.env)
    listed = {name.removeprefix(f"{COLLECTION}.") for name in json.loads(result.stdout)}
    assert PROMISED_MODULES <= listed
    assert listed == source_modules()


def docker_group() -> list[str]:
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    return list(runtime["action_groups"]["docker"])


def test_docker_action_group_holds_every_module() -> None:
    assert set(docker_group()) == source_modules() - ENGINE_FREE_MODULES


def test_every_module_in_the_docker_group_accepts_the_connection_options(installed: InstalledCollection) -> None:
    # module_defaults for group/dockhand.containers.docker hands docker_host & co. to every member;
    # a member without those options fails with "Unsupported parameters".
    fqcns = [f"{COLLECTION}.{m}" for m in docker_group()]
    result = run([tool("ansible-doc"), "-t", "module", "--json", *fqcns], cwd=installed.collections_path, env=installed.env)
    docs = json.loads(result.stdout)
    missing = {fqcn for fqcn in fqcns
               if "docker_host" not in ((docs.get(fqcn) or {}).get("doc") or {}).get("options", {})}
    assert not missing, f"in the docker action group but without a docker_host option: {sorted(missing)}"


@pytest.mark.parametrize("module", sorted(PROMISED_MODULES))
def test_ansible_doc_renders_module(installed: InstalledCollection, module: str) -> None:
    fqcn = f"{COLLECTION}.{module}"
    result = run([tool("ansible-doc"), "-t", "module", fqcn],
                 cwd=installed.collections_path, env=installed.env)
    assert fqcn in result.stdout
    assert str(installed.install_dir) in result.stdout, "ansible-doc read some other copy of the module"
    for section in ("OPTIONS", "EXAMPLES", "RETURN VALUES"):
        assert section in result.stdout, f"{fqcn}: no {section} section rendered"
    assert "ERROR" not in result.stderr and "WARNING" not in result.stderr, result.stderr


def test_execution_environment_gets_the_collections_dependencies(
        installed: InstalledCollection, tmp_path: Path) -> None:
    # What ansible-builder finds in the installed collection (meta/execution-environment.yml) goes into an EE.
    found = run([tool("ansible-builder"), "introspect", "--sanitize", str(installed.collections_path)],
                cwd=tmp_path, env=installed.env)
    deps = yaml.safe_load(found.stdout)
    requirements = [line.strip() for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert [entry.split("  #")[0] for entry in deps["python"]] == requirements
    assert all(entry.endswith(f"# from collection {COLLECTION}") for entry in deps["python"] + deps["system"])
    assert any(entry.startswith("ca-certificates") for entry in deps["system"])

    # The EE definition docs/awx.md shows: pinned to the version galaxy.yml builds, and ansible-builder accepts it.
    definition_file = REPO_ROOT / "docs" / "execution-environment.yml"
    definition = yaml.safe_load(definition_file.read_text())
    assert definition["dependencies"]["galaxy"]["collections"] == [{"name": COLLECTION,
                                                                   "version": version_in_galaxy_yml()}]
    assert definition_file.read_text().split("version: 3", 1)[1] in (REPO_ROOT / "docs" / "awx.md").read_text()
    context = tmp_path / "context"
    run([tool("ansible-builder"), "create", "-f", str(definition_file), "--context", str(context)],
        cwd=tmp_path, env=installed.env)
    containerfile = next(p for p in (context / "Containerfile", context / "Dockerfile") if p.exists()).read_text()
    assert definition["images"]["base_image"]["name"] in containerfile
    assert yaml.safe_load((context / "_build" / "requirements.yml").read_text()) == \
        definition["dependencies"]["galaxy"]


def test_module_docs_declare_the_action_group_and_what_each_module_needs(installed: InstalledCollection) -> None:
    fqcns = [f"{COLLECTION}.{m}" for m in docker_group()]
    result = run([tool("ansible-doc"), "-t", "module", "--json", *fqcns], cwd=installed.collections_path, env=installed.env)
    docs = {fqcn: json.loads(result.stdout)[fqcn]["doc"] for fqcn in fqcns}
    for fqcn, doc in docs.items():
        assert doc["attributes"]["action_group"]["membership"] == [f"{COLLECTION}.docker"], fqcn
    # image_digest talks to the registry only: no Docker SDK promised or required.
    assert not any("SDK for Python >=" in line for line in docs[f"{COLLECTION}.image_digest"]["requirements"])
    for module in ("service", "stack", "service_info"):
        assert any("5.0.3" in line for line in docs[f"{COLLECTION}.{module}"]["requirements"]), module
    assert {s["module"] for s in docs[f"{COLLECTION}.image_digest"]["seealso"]} >= {f"{COLLECTION}.service"}
    assert {s["module"] for s in docs[f"{COLLECTION}.service"]["seealso"]} >= {f"{COLLECTION}.image_digest"}


def test_modules_that_take_registry_credentials_take_all_the_registry_options(installed: InstalledCollection) -> None:
    fqcns = [f"{COLLECTION}.{m}" for m in docker_group()]
    result = run([tool("ansible-doc"), "-t", "module", "--json", *fqcns], cwd=installed.collections_path, env=installed.env)
    registry_options = {"registry_username", "registry_password", "platform", "registry_ca_path", "registry_validate_certs"}
    takers = {}
    for fqcn, entry in json.loads(result.stdout).items():
        options = set(entry["doc"]["options"])
        if "registry_username" in options:
            takers[fqcn] = registry_options - options
    assert {f"{COLLECTION}.{m}" for m in ("image_digest", "service", "stack")} <= set(takers)
    assert all(not missing for missing in takers.values()), takers
