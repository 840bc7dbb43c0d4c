# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The services option of dockhand.containers.stack, also taken by dockhand.containers.deploy_prepare.
    DOCUMENTATION = r"""
options:
  services:
    description:
      - The services; each item takes the options of M(dockhand.containers.service).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Same as O(dockhand.containers.service#module:name).
        type: str
        required: true
      image:
        description: Same as O(dockhand.containers.service#module:image).
        type: str
      pin:
        description: Same as O(dockhand.containers.service#module:pin).
        type: bool
        default: false
      state:
        description: Same as O(dockhand.containers.service#module:state).
        type: str
        default: started
        choices: [present, started, stopped, absent]
      command:
        description: Same as O(dockhand.containers.service#module:command).
        type: raw
      entrypoint:
        description: Same as O(dockhand.containers.service#module:entrypoint).
        type: raw
      env:
        description: Same as O(dockhand.containers.service#module:env).
        type: dict
        default: {}
      secret_env:
        description: Same as O(dockhand.containers.service#module:secret_env).
        type: dict
        default: {}
      ports:
        description: Same as O(dockhand.containers.service#module:ports).
        type: list
        elements: raw
        default: []
      volumes:
        description: Same as O(dockhand.containers.service#module:volumes).
        type: list
        elements: raw
        default: []
      networks:
        description: Same as O(dockhand.containers.service#module:networks).
        type: list
        elements: str
        default: []
      labels:
        description: Same as O(dockhand.containers.service#module:labels).
        type: dict
        default: {}
      user:
        description: Same as O(dockhand.containers.service#module:user).
        type: str
      memory:
        description: Same as O(dockhand.containers.service#module:memory).
        type: str
      memory_reservation:
        description: Same as O(dockhand.containers.service#module:memory_reservation).
        type: str
      cpus:
        description: Same as O(dockhand.containers.service#module:cpus).
        type: float
      healthcheck:
        description: Same as O(dockhand.containers.service#module:healthcheck).
        type: dict
        suboptions:
          test:
            description: Same as O(dockhand.containers.service#module:healthcheck.test).
            type: raw
          interval:
            description: Same as O(dockhand.containers.service#module:healthcheck.interval).
            type: raw
          timeout:
            description: Same as O(dockhand.containers.service#module:healthcheck.timeout).
            type: raw
          retries:
            description: Same as O(dockhand.containers.service#module:healthcheck.retries).
            type: int
          start_period:
            description: Same as O(dockhand.containers.service#module:healthcheck.start_period).
            type: raw
          disable:
            description: Same as O(dockhand.containers.service#module:healthcheck.disable).
            type: bool
            default: false
      stop_timeout:
        description: Same as O(dockhand.containers.service#module:stop_timeout).
        type: int
        default: 10
      restart_policy:
        description: Same as O(dockhand.containers.service#module:restart_policy).
        type: str
        default: on-failure
        choices: ['no', on-failure, always, unless-stopped]
      restart_retries:
        description: Same as O(dockhand.containers.service#module:restart_retries).
        type: int
      log_driver:
        description: Same as O(dockhand.containers.service#module:log_driver).
        type: str
        default: json-file
      log_options:
        description: Same as O(dockhand.containers.service#module:log_options).
        type: dict
        default: {}
      wait:
        description: Same as O(dockhand.containers.service#module:wait).
        type: str
        default: auto
        choices: [auto, none, running, healthy]
      wait_timeout:
        description: Same as O(dockhand.containers.service#module:wait_timeout).
        type: int
        default: 60
      update_strategy:
        description: Same as O(dockhand.containers.service#module:update_strategy).
        type: str
        default: stop-first
        choices: [stop-first, start-first]
      rollback:
        description: Same as O(dockhand.containers.service#module:rollback).
        type: bool
        default: false
      adopt:
        description: Same as O(dockhand.containers.service#module:adopt).
        type: bool
        default: false
      depends_on:
        description: Same as O(dockhand.containers.service#module:depends_on).
        type: list
        elements: str
        default: []
"""
