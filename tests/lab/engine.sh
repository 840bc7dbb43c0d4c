#!/usr/bin/env bash
# Ensure a Docker Engine answers `docker info`.
#
# Uses the engine that is already there when there is one. Otherwise installs Debian's docker.io
# and starts dockerd in the background (no systemd in CI sandboxes), then waits for it.
set -euo pipefail

readonly LOG=/var/log/dockhand-dockerd.log
readonly PIDFILE=/var/run/dockhand-dockerd.pid
readonly WAIT_SECONDS=60

say() { printf 'engine: %s\n' "$*"; }

describe_engine() {
    local version
    version=$(docker info --format '{{.ServerVersion}} (storage {{.Driver}}, cgroup v{{.CgroupVersion}})')
    say "using Docker Engine ${version} at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
}

engine_answers() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
    describe_engine
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    say "no Docker Engine installed: installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

# The package's postinst may have started the service already.
if engine_answers; then
    describe_engine
    exit 0
fi

if [[ -s ${PIDFILE} ]] && kill -0 "$(cat "${PIDFILE}")" 2>/dev/null; then
    say "dockerd (pid $(cat "${PIDFILE}")) is starting; waiting for it"
else
    say "no running engine: starting dockerd in the background (log ${LOG})"
    rm -f "${PIDFILE}"
    nohup dockerd --pidfile "${PIDFILE}" >>"${LOG}" 2>&1 </dev/null &
fi

for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
    if engine_answers; then
        say "started dockerd ourselves (pid $(cat "${PIDFILE}" 2>/dev/null || echo '?'))"
        describe_engine
        exit 0
    fi
    sleep 0.5
done

say "dockerd did not answer within ${WAIT_SECONDS} s; last lines of ${LOG}:" >&2
tail -n 30 "${LOG}" >&2 || true
exit 1
