#!/usr/bin/env bash
# PID 1 of a lab node: install the lab's per-run files from /lab, then run sshd and the node's own dockerd.
#
# /lab is a bind mount of $DOCKHAND_LAB_DIR/nodes/<node> on the host. lab.py puts ca.crt, docker-config.json and
# authorized_keys there; dockerd also listens on /lab/docker.sock so the host can talk to this node's engine.
set -euo pipefail

registry=${DOCKHAND_LAB_REGISTRY:?DOCKHAND_LAB_REGISTRY must name the lab registry host:port}

install -D -m 0644 /lab/ca.crt "/etc/docker/certs.d/${registry}/ca.crt"
install -D -m 0600 /lab/docker-config.json /root/.docker/config.json
install -d -m 0700 /root/.ssh
install -m 0600 /lab/authorized_keys /root/.ssh/authorized_keys

# DOCKHAND_LAB_SDK=pip: the pip-installed Docker SDK 7.x comes before Debian's python3-docker (5.0.3) on python3's path;
# debian: only Debian's package is there.
pth=/usr/local/lib/python3.11/dist-packages/dockhand-lab-pip-sdk.pth
if [ "${DOCKHAND_LAB_SDK:-pip}" = pip ]; then
    echo /opt/dockhand-lab/pip-sdk >"${pth}"
else
    rm -f "${pth}"
fi

# Host keys are made per node on first start (the image has none, so nodes don't share them).
ssh-keygen -A >/dev/null
install -d -m 0755 /run/sshd
/usr/sbin/sshd -D -e 2>>/var/log/sshd.log &
sshd_pid=$!

# The lab's volume plugin (driver dockhand-lab) runs as long as this node's engine: started before dockerd,
# stopped after it (an engine whose legacy plugin went away waits ~15 s on every volume listing).
python3 /usr/local/sbin/dockhand-lab-volume-plugin /run/docker/plugins/dockhand-lab.sock \
    /var/lib/docker/dockhand-lab-plugin 2>>/var/log/volume-plugin.log &
plugin_pid=$!

rm -f /lab/docker.sock /var/run/docker.sock /var/run/docker.pid
# vfs: overlayfs cannot nest on the outer fuse-overlayfs. --iptables=false: the node needs no NAT rules;
# published ports work through docker-proxy.
insecure=()
[ -n "${DOCKHAND_LAB_INSECURE_REGISTRY:-}" ] && insecure=(--insecure-registry "${DOCKHAND_LAB_INSECURE_REGISTRY}")
dockerd --storage-driver=vfs --iptables=false "${insecure[@]}" \
    -H unix:///var/run/docker.sock -H unix:///lab/docker.sock >>/var/log/dockerd.log 2>&1 &
dockerd_pid=$!

# On `docker stop`, let dockerd stop its containers cleanly before the node goes away.
stop_node() {
    kill -TERM "${dockerd_pid}" 2>/dev/null || true
    wait "${dockerd_pid}" 2>/dev/null || true
    kill -TERM "${plugin_pid}" "${sshd_pid}" 2>/dev/null || true
    exit 0
}
trap stop_node TERM INT

# If a daemon dies the node is broken: exit so `docker ps` shows it and `lab.py up` repairs it.
wait -n "${sshd_pid}" "${dockerd_pid}" "${plugin_pid}" || true
echo "dockhand-node: a daemon exited; stopping the node" >&2
stop_node
