#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: patroni_switchover
short_description: Planned switchover of the Patroni leader
version_added: 0.1.0
description:
  - Moves the leader role of a healthy Patroni cluster to a replica with C(POST /switchover).
  - The current leader is detected from C(GET /cluster); the request always names it (Patroni 4 requires it).
  - Without O(candidate) the best replica is chosen - running or streaming, without the C(nofailover) tag,
    lag at most O(max_lag_bytes), least lag first; in synchronous mode only a sync standby.
  - C(POST /switchover) goes to the leader's own C(api_url) from C(GET /cluster) first, when O(api_url) lists it
    or it answers C(GET /liveness) within O(timeout); then to the members of O(api_url) in order. Another member
    only stores the request, and the leader acts on it at its next HA cycle, up to C(loop_wait) seconds later.
  - The outcome is verified from the cluster state (C(GET /cluster) again), never from the HTTP status alone.
  - Idempotent - when O(candidate) already is the leader nothing is done.
options:
  candidate:
    description:
      - Member that should become the leader. When omitted the best replica is chosen - running, no
        C(nofailover) tag, not in O(exclude), within O(max_lag_bytes), a synchronous or quorum standby in
        synchronous mode, least lag first - and returned in RV(new_leader), also in check mode.
    type: str
  exclude:
    description:
      - Members that must not take over, for example the member a maintenance takes out. A O(candidate)
        listed here is refused.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  scheduled_at:
    description:
      - Schedule the switchover at this ISO 8601 timestamp with time zone, for example V(2026-11-24T03:00:00+00:00).
      - The module then only verifies that the switchover is scheduled; O(wait) does not apply.
    type: str
  max_lag_bytes:
    description:
      - Refuse when the candidate lags more than this many bytes behind the leader.
    type: int
    default: 1048576
  wait:
    description:
      - Wait until the new leader is running on a new timeline and the old leader is back as a running or
        streaming replica on that timeline.
      - With V(false) the module still verifies that the leader changed, but does not wait for the old leader.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the verification.
      - Also the bound of the C(POST /switchover) request itself when it exceeds O(timeout) - Patroni answers only
        after the old leader has demoted.
    type: int
    default: 120
extends_documentation_fragment:
  - pgha.cluster.patroni
attributes:
  check_mode:
    support: full
    description: Reports which member would take over and sends nothing.
  diff_mode:
    support: none
    description: No diff is produced.
author:
  - pgha.cluster maintainers (@pgha-cluster)
'''

EXAMPLES = r'''
- name: Switch over to the best replica and wait for the old leader to follow
  pgha.cluster.patroni_switchover:
    api_url: [http://pg1:8008, http://pg2:8008, http://pg3:8008]
    api_username: patroni
    api_password: "{{ patroni_restapi_password }}"

- name: Switch over to pg2 tonight
  pgha.cluster.patroni_switchover:
    api_url: [http://pg1:8008, http://pg2:8008]
    api_username: patroni
    api_password: "{{ patroni_restapi_password }}"
    candidate: pg2
    scheduled_at: "2026-11-24T03:00:00+00:00"
'''

RETURN = r'''
old_leader:
  description: Leader before the switchover.
  returned: always
  type: str
  sample: pg1
new_leader:
  description: Leader after the switchover (the chosen candidate in check mode or when scheduled).
  returned: always
  type: str
  sample: pg2
timeline_before:
  description: Timeline of the leader before the switchover.
  returned: always
  type: int
  sample: 3
timeline_after:
  description: Timeline of the leader after the switchover (V(null) in check mode or when scheduled).
  returned: always
  type: int
  sample: 4
elapsed:
  description: Seconds from the request until the verification succeeded.
  returned: always
  type: float
  sample: 7.3
scheduled:
  description: Whether the switchover was only scheduled.
  returned: always
  type: bool
scheduled_switchover:
  description: The scheduled switchover as reported by C(GET /cluster) (C(at), C(from), C(to)).
  returned: when O(scheduled_at) is set and the switchover was scheduled
  type: dict
  sample: {"at": "2026-11-24T03:00:00+00:00", "from": "pg1", "to": "pg2"}
valid_members:
  description: Member names, when the candidate is unknown or unsuitable.
  returned: on failure about the candidate
  type: list
  elements: str
members:
  description: Members (normalised, see M(pgha.cluster.patroni_cluster_info)) after the operation.
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
    candidate_problems,
    choose_candidate,
    is_synchronous_mode,
    patroni_argument_spec,
    read_cluster_or_fail,
    verify_takeover_and_exit,
    wait_for,
)


def same_schedule(existing, leader, candidate, scheduled_at):
    if not existing:
        return False
    if existing.get('from') not in (None, leader) or existing.get('to') not in (None, candidate):
        return False
    return str(existing.get('at', '')).replace(' ', 'T') == str(scheduled_at).replace(' ', 'T')


def main():
    argument_spec = patroni_argument_spec()
    argument_spec.update(
        candidate=dict(type='str'),
        exclude=dict(type='list', elements='str', default=[]),
        scheduled_at=dict(type='str'),
        max_lag_bytes=dict(type='int', default=1048576),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=120),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_together=PATRONI_REQUIRED_TOGETHER,
                           supports_check_mode=True)
    p = module.params
    if p['wait_timeout'] <= 0:
        module.fail_json(msg='wait_timeout must be a positive number of seconds, got %s: set it to 1 or more (nothing was '
                             'sent)' % p['wait_timeout'])
    if p['max_lag_bytes'] < 0:
        module.fail_json(msg='max_lag_bytes must be 0 or more, got %s: set it to 0 or more (nothing was sent)'
                             % p['max_lag_bytes'])

    result = dict(changed=False, old_leader=None, new_leader=None, timeline_before=None, timeline_after=None,
                  elapsed=0.0, scheduled=False, members=[])
    client, state = read_cluster_or_fail(module, result)

    leader = state.leader_name
    result.update(old_leader=leader, timeline_before=state.timeline, members=state.members)
    candidate = p['candidate']

    if candidate and leader == candidate:
        result.update(new_leader=leader, timeline_after=state.timeline,
                      msg='%s already is the leader; nothing to do' % candidate)
        module.exit_json(**result)

    if state.paused:
        module.fail_json(msg='the cluster is paused (maintenance mode); resume it (patronictl resume) '
                             'before a switchover', **result)
    if leader is None:
        names = [m['name'] for m in state.leaders]
        module.fail_json(msg='no leader: the cluster has %s; a switchover needs exactly one running leader, '
                             'use pgha.cluster.patroni_failover to promote a member'
                             % ('leaders %s' % ', '.join(names) if names else 'no leader'), **result)
    if state.leader['state'] != 'running':
        module.fail_json(msg='leader %s is %s, not running; a switchover needs a running leader'
                             % (leader, state.leader['state']), **result)

    synchronous = is_synchronous_mode(client, state)
    if candidate:
        problems = candidate_problems(state, candidate, p['max_lag_bytes'], synchronous, p['exclude'])
        if problems:
            module.fail_json(msg='cannot switch over to %s: %s' % (candidate, '; '.join(problems)),
                             valid_members=state.names, **result)
    else:
        candidate, rejected = choose_candidate(state, p['max_lag_bytes'], synchronous, p['exclude'])
        if candidate is None:
            module.fail_json(msg='no replica can take over: %s'
                                 % ('; '.join('; '.join(v) for v in rejected.values()) or 'the cluster has no replicas'),
                             **result)
    result['new_leader'] = candidate

    if p['scheduled_at']:
        result['scheduled'] = True
        if same_schedule(state.scheduled_switchover, leader, candidate, p['scheduled_at']):
            result['msg'] = 'switchover to %s is already scheduled at %s' % (candidate, p['scheduled_at'])
            module.exit_json(**result)
        if state.scheduled_switchover:
            module.fail_json(msg='another switchover is already scheduled: %s; cancel it first (DELETE /switchover '
                                 'or patronictl flush <cluster> switchover)' % state.scheduled_switchover, **result)

    if module.check_mode:
        result.update(changed=True, msg='would switch over from %s to %s%s' % (
            leader, candidate, ' at %s' % p['scheduled_at'] if p['scheduled_at'] else ''))
        module.exit_json(**result)

    start = time.monotonic()
    try:
        # Patroni answers POST /switchover only after the old leader has demoted: the general
        # timeout (meant for quick GETs) is too short for that, so allow up to wait_timeout.
        status, reply = client.switchover(leader, candidate, p['scheduled_at'],
                                          timeout=None if p['scheduled_at'] else max(p['timeout'], p['wait_timeout']),
                                          leader_url=state.leader.get('api_url'))
    except PatroniError as e:
        # the request may have been processed (timeout); report what the cluster says now
        msg = 'switchover from %s to %s failed: %s' % (leader, candidate, e)
        if e.kind == 'timeout':
            msg += '; the outcome is unknown, check the cluster with pgha.cluster.patroni_cluster_info'
        module.fail_json(msg=msg, **result)
    result['changed'] = True

    if p['scheduled_at']:
        def scheduled(s):
            return bool(s.scheduled_switchover), 'scheduled switchover: %s' % s.scheduled_switchover
        done, state, detail, elapsed = wait_for(client, scheduled, min(p['wait_timeout'], 30))
        result.update(elapsed=round(elapsed, 3), members=state.members if state else [])
        if not done:
            module.fail_json(msg='Patroni answered %s "%s" but GET /cluster shows no scheduled switchover (%s)'
                                 % (status, reply, detail), **result)
        result.update(scheduled_switchover=state.scheduled_switchover, msg=reply)
        module.exit_json(**result)

    verify_takeover_and_exit(module, client, result, 'switchover', leader, candidate, state.timeline,
                             p['wait'], start, status, reply)


if __name__ == '__main__':
    main()
