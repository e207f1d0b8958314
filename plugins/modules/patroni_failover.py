#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: patroni_failover
short_description: Forced failover of a Patroni cluster to a given member
version_added: 0.1.0
description:
  - Promotes O(candidate) with C(POST /failover), also when the cluster has no healthy leader.
  - A failover can lose transactions that did not reach the candidate, so it needs O(confirm=true);
    without it the module fails and sends nothing. Prefer M(pgha.cluster.patroni_switchover) when the leader is healthy.
  - C(POST /failover) goes first to the C(api_url) from C(GET /cluster) of the member that carries it out (the
    running leader, else O(candidate)), when O(api_url) lists it or it answers C(GET /liveness) within O(timeout);
    then to the members of O(api_url) in order.
  - The outcome is verified from the cluster state (C(GET /cluster) again), never from the HTTP status alone.
  - Idempotent - when O(candidate) already is the leader nothing is done.
options:
  candidate:
    description:
      - Member to promote.
    type: str
    required: true
  confirm:
    description:
      - Must be V(true); protects against running a forced failover by accident.
    type: bool
    default: false
  max_lag_bytes:
    description:
      - When set, refuse when the candidate lags more than this many bytes. Not checked by default.
    type: int
  wait:
    description:
      - Wait until the candidate is the running leader on a new timeline and - when the old leader was up
        before the failover - the old leader is back as a running or streaming replica on that timeline.
      - With V(false) the module still verifies that the candidate became the leader.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the verification.
    type: int
    default: 120
extends_documentation_fragment:
  - pgha.cluster.patroni
attributes:
  check_mode:
    support: full
    description: Reports what would be done and sends nothing.
  diff_mode:
    support: none
    description: No diff is produced.
author:
  - pgha.cluster maintainers (@pgha-cluster)
'''

EXAMPLES = r'''
- name: Promote pg3, the leader's host is lost
  pgha.cluster.patroni_failover:
    api_url: [http://pg2:8008, http://pg3:8008]
    api_username: patroni
    api_password: "{{ patroni_restapi_password }}"
    candidate: pg3
    confirm: true
'''

RETURN = r'''
old_leader:
  description: Leader before the failover, V(null) when there was none.
  returned: always
  type: str
  sample: pg1
new_leader:
  description: Leader after the failover.
  returned: always
  type: str
  sample: pg3
timeline_before:
  description: Leader timeline before the failover (highest member timeline when there was no leader).
  returned: always
  type: int
  sample: 3
timeline_after:
  description: Timeline of the new leader.
  returned: always
  type: int
  sample: 4
elapsed:
  description: Seconds from the request until the verification succeeded.
  returned: always
  type: float
members:
  description: Members (normalised) after the operation.
  returned: always
  type: list
  elements: dict
msg:
  description: What was done, or the reply of Patroni.
  returned: always
  type: str
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pgha.cluster.plugins.module_utils.patroni import (
    PATRONI_REQUIRED_TOGETHER,
    PatroniError,
    patroni_argument_spec,
    read_cluster_or_fail,
    verify_takeover_and_exit,
)


def main():
    argument_spec = patroni_argument_spec()
    argument_spec.update(
        candidate=dict(type='str', required=True),
        confirm=dict(type='bool', default=False),
        max_lag_bytes=dict(type='int'),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=120),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_together=PATRONI_REQUIRED_TOGETHER,
                           supports_check_mode=True)
    p = module.params
    candidate = p['candidate']
    if not p['confirm']:
        module.fail_json(msg='a forced failover to %s may lose transactions; set confirm=true to run it '
                             '(nothing was sent), or use pgha.cluster.patroni_switchover for a planned switchover'
                             % candidate)
    if p['wait_timeout'] <= 0:
        module.fail_json(msg='wait_timeout must be a positive number of seconds, got %s: set it to 1 or more (nothing was '
                             'sent)' % p['wait_timeout'])

    result = dict(changed=False, old_leader=None, new_leader=None, timeline_before=None, timeline_after=None,
                  elapsed=0.0, members=[])
    client, state = read_cluster_or_fail(module, result)

    leader = state.leader_name
    timelines = [m['timeline'] for m in state.members if isinstance(m['timeline'], int)]
    tl_before = state.timeline if state.timeline is not None else (max(timelines) if timelines else None)
    result.update(old_leader=leader, timeline_before=tl_before, members=state.members)

    member = state.member(candidate)
    if member is None:
        module.fail_json(msg='candidate %s is not a member of the cluster; valid members: %s'
                             % (candidate, ', '.join(state.names)), valid_members=state.names, **result)
    if leader == candidate:
        result.update(new_leader=leader, timeline_after=state.timeline,
                      msg='%s already is the leader; nothing to do' % candidate)
        module.exit_json(**result)
    problems = []
    if member['nofailover']:
        problems.append('it has the nofailover tag')
    if not member['up']:
        problems.append('it is %s, not running/streaming' % member['state'])
    if p['max_lag_bytes'] is not None:
        if member['lag'] is None:
            problems.append('its lag is unknown (%r)' % member['lag_raw'])
        elif member['lag'] > p['max_lag_bytes']:
            problems.append('it lags %d bytes, more than max_lag_bytes=%d' % (member['lag'], p['max_lag_bytes']))
    if problems:
        module.fail_json(msg='cannot fail over to %s: %s' % (candidate, '; '.join(problems)), **result)

    result['new_leader'] = candidate
    if module.check_mode:
        result.update(changed=True, msg='would fail over from %s to %s' % (leader or 'no leader', candidate))
        module.exit_json(**result)

    old_leader_up = bool(leader and state.leader['up'])
    start = time.monotonic()
    try:
        # Patroni answers POST /failover only after the promotion: allow up to wait_timeout.
        acting = state.leader if old_leader_up else next((m for m in state.members if m['name'] == candidate), {})
        status, reply = client.failover(candidate, timeout=max(p['timeout'], p['wait_timeout']),
                                        acting_url=acting.get('api_url'))
    except PatroniError as e:
        msg = 'failover to %s failed: %s' % (candidate, e)
        if e.kind == 'timeout':
            msg += '; the outcome is unknown, check the cluster with pgha.cluster.patroni_cluster_info'
        module.fail_json(msg=msg, **result)
    result['changed'] = True

    verify_takeover_and_exit(module, client, result, 'failover', leader, candidate, tl_before,
                             p['wait'] and old_leader_up, start, status, reply)


if __name__ == '__main__':
    main()
