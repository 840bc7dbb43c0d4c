# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options of one service, shared by dockhand.containers.service and the items of stack's services.
    DOCUMENTATION = r"""
options:
  name:
    description: Container name; also the service's name in labels and results.
    type: str
    required: true
  image:
    description:
      - Image to run, pinned by digest as C(repo@sha256:...) or C(repo:tag@sha256:...).
      - A reference without a digest is refused unless O(pin=true).
      - Required unless O(state=absent) or O(rollback=true).
    type: str
  pin:
    description:
      - Resolve a tag-only O(image) to its digest through the Docker Engine (its trust and insecure-registries apply) and
        deploy that digest.
      - Prefer resolving once on the controller with M(dockhand.containers.image_digest), so every host runs the same build.
    type: bool
    default: false
  state:
    description:
      - V(started) runs the container; V(present) creates it without starting a new one; V(stopped) keeps it stopped;
        V(absent) removes it. Named volumes are never removed.
    type: str
    default: started
    choices: [present, started, stopped, absent]
  command:
    description: Command, as a list (exec form) or a string (run by C(/bin/sh -c)). Defaults to the image's.
    type: raw
  entrypoint:
    description: Entrypoint, as a list or a single string. Defaults to the image's.
    type: raw
  env:
    description:
      - Environment variables. Values are shown in results and diffs; put secrets in O(secret_env).
      - Quote values YAML would convert (C("yes"), C("1.10")); an unquoted boolean or decimal is refused, since what
        was meant is lost by then. Whole numbers are fine.
    type: dict
    default: {}
  secret_env:
    description:
      - Environment variables whose values are never logged, shown in a diff, or stored in labels (only a fingerprint is).
    type: dict
    default: {}
  ports:
    description:
      - Published ports as C(docker run -p) takes them, C([host_ip:][published[-end]:]target[-end][/protocol]), or dicts
        with keys C(target), C(published), C(host_ip), C(protocol). Protocols are V(tcp), V(udp), V(sctp); write an IPv6
        address in brackets (C([::1]:8080:80)).
      - Without a host port (C(9001), C(127.0.0.1::9001)) the Engine picks a free one, returned in RV(ports); with a
        host range for one port (C(8000-8010:80)) it picks one of the range.
      - Two items, or two services of one M(dockhand.containers.stack), that publish the same host port are refused
        before anything changes.
    type: list
    elements: raw
    default: []
  volumes:
    description:
      - Mounts as C(docker run -v) takes them, C(source:target[:options]) (a source starting with C(/) is a bind mount,
        otherwise a named volume), where options are comma separated V(ro) or V(rw), V(z) or V(Z) (SELinux
        relabelling) and, for a bind mount, a propagation (V(rprivate), V(private), V(rshared), V(shared), V(rslave),
        V(slave)).
      - Or dicts with keys C(type) (V(volume), V(bind), V(tmpfs)), C(source), C(target), C(read_only), C(driver),
        C(driver_options), C(labels), C(selinux), C(propagation), C(tmpfs_size), C(tmpfs_mode) (octal text such as
        C("1777")).
      - A missing named volume is created with C(driver), C(driver_options) and C(labels). An existing volume whose
        driver or options differ is an error; it is never recreated. Data in named volumes survives every update.
    type: list
    elements: raw
    default: []
  networks:
    description: Networks to attach to (created as bridge networks when missing). The service name is its alias.
    type: list
    elements: str
    default: []
  labels:
    description: Labels of your own; the C(dockhand.) prefix is reserved. Quote values as for O(env).
    type: dict
    default: {}
  user:
    description: User (and group) the process runs as.
    type: str
  memory:
    description:
      - Memory limit such as C(256m) or C(1g).
      - Changed on the running container, as C(docker update) does (the swap limit follows at twice the memory, as
        for a new container). Removing the limit needs a new container; the diff says so.
    type: str
  memory_reservation:
    description:
      - Memory soft limit such as C(128m), at most O(memory). Changed on the running container like O(memory).
    type: str
  cpus:
    description:
      - CPU limit in cores, such as C(0.5). Changed on the running container like O(memory); removing it needs a new
        container.
    type: float
  healthcheck:
    description: Health check; defaults to the image's.
    type: dict
    suboptions:
      test:
        description: A shell command string, or a list starting with C(CMD) or C(CMD-SHELL).
        type: raw
      interval:
        description: Seconds, or a duration such as C(30s) or C(1m30s).
        type: raw
      timeout:
        description: Seconds, or a duration.
        type: raw
      retries:
        description: Consecutive failures before the container is unhealthy.
        type: int
      start_period:
        description: Seconds, or a duration, during which failures do not count.
        type: raw
      disable:
        description: Disable the image's health check.
        type: bool
        default: false
  stop_timeout:
    description: Seconds to wait for the container to stop before it is killed.
    type: int
    default: 10
  restart_policy:
    description:
      - When the Engine restarts the container. V(on-failure) with O(restart_retries) stops a crash loop;
        V(always) without a health check gives a warning.
      - Changing the restart policy, O(memory), O(memory_reservation) or O(cpus) updates the running container in place,
        without a restart.
        Such an update is recorded on the container, so M(dockhand.containers.service_info) reports no drift for it
        (a manual C(docker update) still is drift).
    type: str
    default: on-failure
    choices: ['no', on-failure, always, unless-stopped]
  restart_retries:
    description: Restarts allowed with O(restart_policy=on-failure) (default 5). Refused with any other policy.
    type: int
  log_driver:
    description:
      - Logging driver, any the Engine has (built in or a log-driver plugin).
      - V(json-file), V(local), V(syslog), V(journald), V(gelf), V(fluentd) and V(none) are validated with their
        options before anything changes; sizes are read as the Engine reads them (C(10m), C(10M), C(10k), C(10mb)).
        Other drivers and their options are validated by the Engine when the new container is created, before the
        running one is touched.
      - With V(json-file) and no C(max-size), logs rotate at C(max-size=10m), C(max-file=3).
    type: str
    default: json-file
  log_options:
    description:
      - Options of O(log_driver), for example C(max-size), C(max-file), C(compress) (json-file, local),
        C(syslog-address), C(gelf-address), C(fluentd-address), C(fluentd-async), C(tag), and for every driver
        C(mode) (V(blocking) or V(non-blocking)) with C(max-buffer-size).
    type: dict
    default: {}
  wait:
    description:
      - After starting a container, wait until it is V(running) or V(healthy). V(auto) waits for V(healthy) when the
        container has a health check, else V(running).
      - On timeout the error shows the last health check output and the last log lines.
    type: str
    default: auto
    choices: [auto, none, running, healthy]
  wait_timeout:
    description: Seconds O(wait) may take.
    type: int
    default: 60
  update_strategy:
    description:
      - V(stop-first) stops the old container, then starts the new one; if the new one fails to start or become
        healthy, the old one is put back.
      - V(start-first) starts the new container and waits for it before stopping the old one; refused when both would
        publish the same fixed host port.
    type: str
    default: stop-first
    choices: [stop-first, start-first]
  rollback:
    description:
      - Return to the previous deployment recorded on this host (its digest and settings) without pulling.
      - O(image) and the other settings are ignored.
    type: bool
    default: false
  adopt:
    description: Replace an existing container of the same name that this collection did not create.
    type: bool
    default: false
  depends_on:
    description: Names of services converged before this one (used by M(dockhand.containers.stack)).
    type: list
    elements: str
    default: []
"""
