#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection, with no ignore entries.
#
# ansible-test insists on living in .../ansible_collections/<namespace>/<name>, so the files git
# tracks (plus untracked files that are not ignored, so new work is checked before it is
# committed) are copied into such a tree under a temporary directory. A copy, not a symlink: the
# symlinks sanity test and ansible-test's path handling both need real files.
#
# Usage (from .ci/run, inside the venv):  .ci/venv bash tests/sanity.sh [ansible-test options]
# Extra arguments go to ansible-test, e.g. `--test pylint` to run one test.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python_version=${DOCKHAND_SANITY_PYTHON:-3.11}

say() { printf '[sanity] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The shellcheck sanity test is skipped with only a warning when shellcheck is missing; our
# scripts deserve the check, so install it (Debian package) rather than lose it silently.
if ! command -v shellcheck >/dev/null 2>&1; then
  say "installing shellcheck (apt)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1 \
    || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }
fi

# ansible-test bootstraps pip into each test venv with a get-pip script it downloads from
# ci-files.testing.ansible.com, which this network does not reach (and must not). Its documented
# remedy is to place the script in its cache; ours does what get-pip does (run pip from a pip
# wheel to install the requested pip) with the wheel fetched from PyPI.
ansible_test_pip_version() {
  local file
  file=$(python -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')
  sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$file" | head -n 1
}

provide_get_pip() {
  local version cache script wheel
  version=$(ansible_test_pip_version)
  if [ -z "$version" ]; then
    say "cannot tell which pip ansible-test bootstraps; leaving its download to ansible-test"
    return 0
  fi
  cache="$HOME/.ansible/test/cache"
  script="$cache/get_pip_${version//./_}.py"
  [ -f "$script" ] && return 0
  mkdir -p "$cache"
  python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$cache" "pip==$version"
  wheel=$(ls "$cache"/pip-"$version"-*.whl)
  cat > "$script.tmp" <<PY
# Stand-in for get-pip-$version.py, written by dockhand's tests/sanity.sh: runs pip from its wheel.
import sys
sys.path.insert(0, "$wheel")
from pip._internal.cli.main import main
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall", *args]))
PY
  mv "$script.tmp" "$script"
  say "provided ansible-test's pip $version bootstrap script: $script"
}
provide_get_pip

work=$(mktemp -d "${TMPDIR:-/tmp}/dockhand-sanity.XXXXXX")
if [ "${DOCKHAND_KEEP_SANITY_TREE:-}" = "1" ]; then
  say "keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi
tree="$work/ansible_collections/dockhand/containers"
mkdir -p "$tree"

# Tracked files deleted in the working tree are still listed by git; skip what no longer exists.
git -C "$root" ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' path; do
      if [ -e "$root/$path" ] || [ -L "$root/$path" ]; then printf '%s\0' "$path"; fi
    done \
  | tar -C "$root" --null --no-recursion -T - -cf - \
  | tar -C "$tree" -xf -
say "copied $(find "$tree" -type f | wc -l) files to $tree"

# Results (tests/output) stay in the throwaway tree; ansible-test reads no user config from there.
cd "$tree"
unset ANSIBLE_CONFIG
ansible-test sanity --venv --python "$python_version" --color no "$@"
