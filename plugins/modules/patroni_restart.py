#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: patroni_restart
short_description: Rolling restart of PostgreSQL members managed by Patroni
version_added: 0.1.0
description:
  - Restarts PostgreSQL on one member (O(member)) or on every member with a pending restart (O(pending_only=true))
    with C(POST /restart) sent to that member's own REST API.
  - Members are restarted one at a time, replicas first and the leader last, and each restart is verified
    (the member is running or streaming again with a new postmaster start time) before the next one.
  - Reports a change only when something was restarted.
options:
  member:
    description:
      - Name of the member to restart. With O(pending_only=true) it is restarted only when it has a pending restart.
    type: str
  pending_only:
    description:
      - Restart only members that report C(pending_restart). Without O(member), all of them.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for each member to be running again.
    type: int
    default: 300
extends_documentation_fragment:
  - pgha.cluster.patroni
attributes:
  check_mode:
    support: full
    description: Reports which members would be restarted, in order, and sends nothing.
  diff_mode:
    support: none
    description: No diff is produced.
author:
  - pgha.cluster maintainers (@pgha-cluster)
'''

EXAMPLES = r'''
- name: Apply parameters that need a restart, replicas first, leader last
  pgha.cluster.patroni_restart:
    api_url: [http://pg1:8008, http://pg2:8008, http://pg3:8008]
    api_username: patroni
    api_password: "{{ patroni_restapi_password }}"
    pending_only: true

- name: Restart pg2
  pgha.cluster.patroni_restart:
    api_url: [http://pg1:8008, http://pg2:8008, http://pg3:8008]
    api_username: patroni
    api_password: "{{ patroni_restapi_password }}"
    member: pg2
'''

RETURN = r'''
restarted:
  description: Members restarted (or that would be restarted in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [pg2, pg3, pg1]
members:
  description: Members (normalised) after the restarts.
  returned: always
  type: list
  elements: dict
msg:
  description: What was done.
  returned: always
  type: str
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pgha.cluster.plugins.module_utils import patroni as pu
from ansible_collections.pgha.cluster.plugins.module_utils.patroni import (
    PATRONI_REQUIRED_TOGETHER,
    PatroniClient,
    PatroniError,
    fetch_cluster,
    member_summary,
    patroni_argument_spec,
)


def start_time(client, api_url):
    try:
        status = client.member_status(api_url)
    except PatroniError:
        return None
    return status.get('postmaster_start_time') if isinstance(status, dict) else None


def wait_restarted(client, name, api_url, before, timeout):
    deadline = time.monotonic() + timeout
    detail = 'no state yet'
    state = None
    while True:
        try:
            state = fetch_cluster(client)
            m = state.member(name)
            if m is None:
                detail = '%s is not listed in GET /cluster' % name
            elif not m['up']:
                detail = '%s is %s' % (name, m['state'])
            else:
                now = start_time(client, api_url)
                if before is not None and now is not None and now == before:
                    detail = '%s still has postmaster start time %s' % (name, now)
                else:
                    return True, state, detail
        except PatroniError as e:
            detail = 'last error: %s' % e
        if time.monotonic() >= deadline:
            return False, state, detail
        time.sleep(pu.POLL_INTERVAL)


def main():
    argument_spec = patroni_argument_spec()
    argument_spec.update(
        member=dict(type='str'),
        pending_only=dict(type='bool', default=False),
        wait_timeout=dict(type='int', default=300),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_together=PATRONI_REQUIRED_TOGETHER,
                           required_if=[('pending_only', False, ('member',))],
                           supports_check_mode=True)
    p = module.params
    if p['wait_timeout'] <= 0:
        module.fail_json(msg='wait_timeout must be a positive number of seconds, got %s: set it to 1 or more (nothing was '
                             'sent)' % p['wait_timeout'])
    result = dict(changed=False, restarted=[], members=[])
    try:
        client = PatroniClient.from_module(module)
        state = fetch_cluster(client)
    except PatroniError as e:
        module.fail_json(msg='cannot read the Patroni cluster state: %s' % e, **result)
    result['members'] = state.members

    if p['member']:
        m = state.member(p['member'])
        if m is None:
            module.fail_json(msg='member %s is not part of the cluster; valid members: %s'
                                 % (p['member'], ', '.join(state.names)), **result)
        candidates = [m]
    else:
        candidates = list(state.members)
    if p['pending_only']:
        candidates = [m for m in candidates if m['pending_restart']]
    # replicas first, leader last
    targets = sorted(candidates, key=lambda m: (m['is_leader'], m['name']))
    for m in targets:
        if not m['api_url']:
            module.fail_json(msg='member %s does not publish its REST API URL; cannot restart it' % m['name'], **result)

    if not targets:
        result['msg'] = 'no member needs a restart'
        module.exit_json(**result)
    if module.check_mode:
        result.update(changed=True, restarted=[m['name'] for m in targets],
                      msg='would restart %s' % ', '.join(m['name'] for m in targets))
        module.exit_json(**result)

    for m in targets:
        before = start_time(client, m['api_url'])
        try:
            # Patroni answers POST /restart only after PostgreSQL is back: allow up to wait_timeout.
            client.restart(m['api_url'], restart_pending=p['pending_only'],
                           timeout=max(p['timeout'], p['wait_timeout']))
        except PatroniError as e:
            module.fail_json(msg='restart of %s failed: %s; already restarted: %s'
                                 % (m['name'], e, ', '.join(result['restarted']) or 'none'), **result)
        result['changed'] = True
        result['restarted'].append(m['name'])
        done, new_state, detail = wait_restarted(client, m['name'], m['api_url'], before, p['wait_timeout'])
        if new_state is not None:
            result['members'] = new_state.members
        if not done:
            module.fail_json(msg='%s did not come back within %ss after the restart: %s; members: %s; '
                                 'stopping the rolling restart' % (m['name'], p['wait_timeout'], detail,
                                                                   member_summary(new_state)), **result)
    result['msg'] = 'restarted %s' % ', '.join(result['restarted'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
