#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: haproxy_server
short_description: Read or set HAProxy server states, and wait for a routing
version_added: 0.2.0
description:
  - Reads the servers of HAProxy backends with their status, sessions and last check.
  - Forces one server's health up or down (C(set server <backend>/<server> health up|down)) or sets its admin state
    (V(ready), V(drain), V(maint)). Forced health lasts until the next health check says otherwise - the regular
    checks keep running and correct a wrong state.
  - Waits, bounded and polling at sub-second intervals, until a backend's UP servers equal a list (or include it),
    or until servers are drained (not UP, no session).
  - Two transports - the runtime API over its Unix socket (O(socket), when the module runs on the balancer), or the
    stats page over HTTP(S) with basic auth (O(stats_url), from anywhere that reaches the page; actions need
    C(stats admin if <condition>) in the stats listener, which the C(pgha.cluster.haproxy) role sets with
    C(haproxy_stats_admin)).
options:
  socket:
    description:
      - Path of the HAProxy runtime API socket (C(stats socket ... level admin)), for example V(/run/haproxy/admin.sock).
      - Mutually exclusive with O(stats_url); one of them is required.
    type: path
  stats_url:
    description:
      - URL of the HAProxy stats page, for example V(https://10.0.0.21:7000/). The CSV is read from C(<url>;csv);
        actions are posted to the page's admin form.
    type: str
  stats_user:
    description: User of the stats page (C(stats auth)).
    type: str
  stats_password:
    description: Password of O(stats_user).
    type: str
  ca_path:
    description: PEM file of the CA that signed the stats page's certificate (HTTPS).
    type: path
  validate_certs:
    description: Whether to validate the stats page's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Timeout in seconds of every single request to HAProxy.
    type: float
    default: 5.0
  backend:
    description:
      - Backend (or C(listen) section) of O(server), O(wait_for_up) and O(wait_for_drained).
      - When omitted, the servers of every backend are read (and O(wait_for_drained) looks in every backend).
    type: str
  server:
    description: Server to read or change. Requires O(backend).
    type: str
  state:
    description:
      - V(up) or V(down) force the server's health; V(ready), V(drain) and V(maint) set its admin state.
      - Nothing is sent when the server already shows that state (V(up) - status C(UP); V(down) - C(DOWN);
        V(maint) - C(MAINT...); V(drain) - C(DRAIN); V(ready) - neither of the last two).
      - Omitted - the server is only read.
    type: str
    choices: [up, down, ready, drain, maint]
  wait_for_up:
    description:
      - After the change, wait until the UP servers of O(backend) equal this list (see O(wait_match)).
    type: list
    elements: str
  wait_match:
    description:
      - V(exact) - the UP servers are exactly O(wait_for_up); V(contains) - they include all of O(wait_for_up).
    type: str
    choices: [exact, contains]
    default: exact
  wait_for_drained:
    description:
      - Wait until every listed server (in O(backend), or in every backend) is not UP and has no session, and at
        least one of them exists.
    type: list
    elements: str
  wait_timeout:
    description: Seconds to wait for O(wait_for_up) or O(wait_for_drained); the module fails after that.
    type: float
    default: 30
  poll_interval:
    description: Seconds between two reads while waiting.
    type: float
    default: 0.2
attributes:
  check_mode:
    support: full
    description: Reads the servers and reports whether O(state) would change; sends no change and does not wait.
  diff_mode:
    support: none
    description: No diff is produced.
author:
  - pgha.cluster maintainers (@pgha-cluster)
'''

EXAMPLES = r'''
- name: Read every server of the postgres listeners, on the balancer
  pgha.cluster.haproxy_server:
    socket: /run/haproxy/admin.sock
  register: haproxy

- name: Force pg2's write server up and wait until it alone takes writes, through the stats page
  pgha.cluster.haproxy_server:
    stats_url: https://10.0.0.21:7000/
    stats_user: admin
    stats_password: "{{ haproxy_stats_password }}"
    ca_path: /etc/pgha/tls/ca.crt
    backend: postgres_write
    server: pg2
    state: up
    wait_for_up: [pg2]
    wait_timeout: 10
  delegate_to: localhost

- name: Wait until pg1 takes no connection any more
  pgha.cluster.haproxy_server:
    socket: /run/haproxy/admin.sock
    wait_for_drained: [pg1, pg1_leader]
    wait_timeout: 60
'''

RETURN = r'''
servers:
  description: Servers of O(backend) (of every backend without it), as last read.
  returned: always
  type: list
  elements: dict
  contains:
    backend:
      description: Backend name.
      type: str
    server:
      description: Server name.
      type: str
    status:
      description: HAProxy's status, for example C(UP), C(UP 1/2), C(DOWN), C(DRAIN), C(MAINT), C(no check).
      type: str
    scur:
      description: Current sessions.
      type: int
    check:
      description: Last health check status, for example C(L7OK).
      type: str
  sample: [{"backend": "postgres_write", "server": "pg2", "status": "UP", "scur": 3, "check": "L7OK"}]
server:
  description: The row of O(server) before the change.
  returned: when O(server) is given
  type: dict
  sample: {"backend": "postgres_write", "server": "pg2", "status": "DOWN", "scur": 0, "check": "L7STS"}
up:
  description: UP servers of O(backend), as last read.
  returned: when O(backend) is given
  type: list
  elements: str
  sample: [pg2]
elapsed:
  description: Seconds the wait took.
  returned: when O(wait_for_up) or O(wait_for_drained) is given and not in check mode
  type: float
  sample: 0.4
haproxy:
  description: Where HAProxy was reached (the socket path or the stats page URL).
  returned: always
  type: str
  sample: https://10.0.0.21:7000/
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pgha.cluster.plugins.module_utils.haproxy import (
    HAProxyClient,
    HAProxyError,
    haproxy_argument_spec,
    in_state,
)


def main():
    argument_spec = haproxy_argument_spec()
    argument_spec.update(
        backend=dict(type='str'),
        server=dict(type='str'),
        state=dict(type='str', choices=['up', 'down', 'ready', 'drain', 'maint']),
        wait_for_up=dict(type='list', elements='str'),
        wait_match=dict(type='str', choices=['exact', 'contains'], default='exact'),
        wait_for_drained=dict(type='list', elements='str'),
        wait_timeout=dict(type='float', default=30),
        poll_interval=dict(type='float', default=0.2),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('socket', 'stats_url'), ('wait_for_up', 'wait_for_drained')],
        required_one_of=[('socket', 'stats_url')],
        required_by={'server': 'backend', 'wait_for_up': 'backend', 'state': 'server'},
        required_together=[('stats_user', 'stats_password')],
        supports_check_mode=True,
    )
    p = module.params
    if p['wait_timeout'] <= 0 or p['poll_interval'] <= 0 or p['timeout'] <= 0:
        module.fail_json(msg='wait_timeout, poll_interval and timeout must be positive numbers of seconds (nothing was '
                             'sent)')
    client = HAProxyClient.from_params(p)
    result = dict(changed=False, servers=[], haproxy=client.name)
    try:
        rows = client.servers(p['backend'])
    except HAProxyError as e:
        module.fail_json(msg=str(e), **result)
    result['servers'] = rows
    if p['backend']:
        if not rows:
            module.fail_json(msg='HAProxy (%s) has no server in backend %s: check the backend name (the haproxy role '
                                 'names them postgres_write and postgres_read)' % (client.name, p['backend']), **result)
        result['up'] = client.up_servers(p['backend'], rows)

    if p['server']:
        row = [r for r in rows if r['server'] == p['server']]
        if not row:
            module.fail_json(msg='HAProxy (%s) has no server %s in backend %s; servers: %s'
                                 % (client.name, p['server'], p['backend'], ', '.join(r['server'] for r in rows)),
                             **result)
        result['server'] = row[0]
        if p['state'] and not in_state(row[0]['status'], p['state']):
            result['changed'] = True
            if not module.check_mode:
                try:
                    client.set_server(p['backend'], p['server'], p['state'])
                except HAProxyError as e:
                    module.fail_json(msg=str(e), **result)

    if module.check_mode:
        module.exit_json(**result)

    if p['wait_for_up'] is not None:
        done, up, elapsed, error = client.wait_up(p['backend'], p['wait_for_up'], p['wait_timeout'],
                                                  p['poll_interval'], p['wait_match'])
        result.update(elapsed=round(elapsed, 3), up=up or [])
        if not done:
            module.fail_json(msg='HAProxy (%s): the UP servers of %s are %s after %ss, expected %s%s%s'
                                 % (client.name, p['backend'], up, p['wait_timeout'],
                                    'exactly ' if p['wait_match'] == 'exact' else 'at least ', sorted(p['wait_for_up']),
                                    ' (last error: %s)' % error if error else ''), **result)
    elif p['wait_for_drained'] is not None:
        done, drained_rows, elapsed, error = client.wait_drained(p['wait_for_drained'], p['backend'], p['wait_timeout'],
                                                                 p['poll_interval'])
        result.update(elapsed=round(elapsed, 3), servers=drained_rows)
        if not done:
            module.fail_json(msg='HAProxy (%s): %s not drained after %ss: %s%s'
                                 % (client.name, ', '.join(p['wait_for_drained']), p['wait_timeout'],
                                    '; '.join('%s/%s %s sessions=%s' % (r['backend'], r['server'], r['status'], r['scur'])
                                              for r in drained_rows) or 'no such server',
                                    ' (last error: %s)' % error if error else ''), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
