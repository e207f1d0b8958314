#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: patroni_cluster_info
short_description: Gather the state and health of a Patroni cluster
version_added: 0.1.0
description:
  - Reads C(GET /cluster) from the first reachable Patroni member and returns the members with normalised roles,
    the leader, pause state, scheduled switchover, replication state and a health verdict.
  - Health is computed by explicit rules, see RV(healthy) and RV(reasons).
  - Works when any single member is down as long as another member of O(api_url) answers.
options:
  max_lag_bytes:
    description:
      - Largest replication lag in bytes that a healthy replica may have.
    type: int
    default: 1048576
  dynamic_config:
    description:
      - Also return the dynamic configuration (C(GET /config)) as RV(config).
    type: bool
    default: false
extends_documentation_fragment:
  - pgha.cluster.patroni
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
author:
  - pgha.cluster maintainers (@pgha-cluster)
'''

EXAMPLES = r'''
- name: Read the cluster state through any of the three members
  pgha.cluster.patroni_cluster_info:
    api_url:
      - http://pg1:8008
      - http://pg2:8008
      - http://pg3:8008
  register: patroni

- name: Stop when the cluster is not healthy
  ansible.builtin.assert:
    that: patroni.healthy
    fail_msg: "Cluster unhealthy: {{ patroni.reasons | join('; ') }}"
'''

RETURN = r'''
members:
  description: Cluster members, normalised.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Member name.
      type: str
    role:
      description: Normalised role, one of V(leader), V(standby_leader), V(sync_standby), V(quorum_standby), V(replica).
      type: str
    role_raw:
      description: Role as reported by Patroni.
      type: str
    is_leader:
      description: Whether the member holds the leader lock.
      type: bool
    state:
      description: State as reported by Patroni, for example V(running), V(streaming), V(stopped).
      type: str
    up:
      description: Whether the state is V(running) or V(streaming).
      type: bool
    timeline:
      description: PostgreSQL timeline.
      type: int
    host:
      description: PostgreSQL host.
      type: str
    port:
      description: PostgreSQL port.
      type: int
    api_url:
      description: REST API URL of the member.
      type: str
    lag:
      description: Replication lag in bytes; V(0) for the leader; V(null) when unknown.
      type: int
    tags:
      description: Member tags.
      type: dict
    pending_restart:
      description: Whether PostgreSQL needs a restart to apply a parameter.
      type: bool
  sample:
    - name: pg1
      role: leader
      role_raw: leader
      state: running
      timeline: 3
      lag: 0
leader:
  description: Name of the leader, V(null) when there is not exactly one.
  returned: always
  type: str
  sample: pg1
timeline:
  description: Timeline of the leader.
  returned: always
  type: int
  sample: 3
paused:
  description: Whether the cluster is in maintenance mode.
  returned: always
  type: bool
scheduled_switchover:
  description: The scheduled switchover (C(at), C(from), C(to)), or V(null).
  returned: always
  type: dict
replication:
  description: Per-replica summary (name, state, lag, timeline, sync).
  returned: always
  type: list
  elements: dict
pending_restart:
  description: Names of members with a pending restart.
  returned: always
  type: list
  elements: str
healthy:
  description:
    - V(true) when exactly one leader exists and is running, and every replica is V(running) or V(streaming)
      with a known lag of at most O(max_lag_bytes) on the leader's timeline.
  returned: always
  type: bool
reasons:
  description: Why the cluster is not healthy; empty when healthy.
  returned: always
  type: list
  elements: str
api_url_used:
  description: The REST API URL that answered.
  returned: always
  type: str
config:
  description: Dynamic configuration, when O(dynamic_config=true).
  returned: when requested
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pgha.cluster.plugins.module_utils.patroni import (
    PATRONI_REQUIRED_TOGETHER,
    PatroniClient,
    PatroniError,
    fetch_cluster,
    patroni_argument_spec,
)


def main():
    argument_spec = patroni_argument_spec()
    argument_spec.update(
        max_lag_bytes=dict(type='int', default=1048576),
        dynamic_config=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_together=PATRONI_REQUIRED_TOGETHER,
                           supports_check_mode=True)
    if module.params['max_lag_bytes'] < 0:
        module.fail_json(msg='max_lag_bytes must be 0 or more, got %s: set it to 0 or more' % module.params['max_lag_bytes'])
    try:
        client = PatroniClient.from_module(module)
        state = fetch_cluster(client)
        healthy, reasons = state.health(module.params['max_lag_bytes'])
        result = dict(
            changed=False,
            members=state.members,
            leader=state.leader_name,
            timeline=state.timeline,
            paused=state.paused,
            scheduled_switchover=state.scheduled_switchover,
            replication=state.replication(),
            pending_restart=[m['name'] for m in state.members if m['pending_restart']],
            healthy=healthy,
            reasons=reasons,
            api_url_used=state.source_url,
        )
        if module.params['dynamic_config']:
            result['config'] = client.config()
    except PatroniError as e:
        module.fail_json(msg='cannot read the Patroni cluster state: %s' % e)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
