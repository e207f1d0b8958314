#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: pgbouncer_admin
short_description: Run commands on the PgBouncer admin console
version_added: 0.1.0
description:
  - Connects to the PgBouncer admin console (the virtual database C(pgbouncer)) with psycopg2 in autocommit mode,
    using only simple queries (the console has no transactions and no extended protocol).
  - Runs one of C(PAUSE), C(RESUME), C(RECONNECT), C(RELOAD), C(KILL), C(WAIT_CLOSE) or C(SHOW).
  - C(PAUSE) waits for server connections to be released; when that takes longer than O(pause_timeout) the module
    sends C(RESUME), so no half-done pause is left behind, and fails.
  - C(PAUSE) of an already paused pooler and C(RESUME) of a running one report no change.
options:
  login_host:
    description: Host of PgBouncer.
    type: str
    default: 127.0.0.1
  login_port:
    description: Port of PgBouncer.
    type: int
    default: 6432
  login_user:
    description: Admin user (listed in C(admin_users) of C(pgbouncer.ini)).
    type: str
    default: pgbouncer
  login_password:
    description: Password of O(login_user).
    type: str
  login_db:
    description: Admin console database name.
    type: str
    default: pgbouncer
  connect_timeout:
    description: Connection timeout in seconds.
    type: int
    default: 10
  ssl_mode:
    description:
      - libpq C(sslmode) of the connection to the admin console. V(verify-ca) or V(verify-full) with O(ca_cert)
        verify PgBouncer's certificate (the C(pgbouncer) role serves the cluster CA's with C(client_tls_sslmode)).
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: PEM file of the CA that signed PgBouncer's certificate (libpq C(sslrootcert)).
    type: path
    aliases: [ssl_rootcert]
  ssl_cert:
    description: Client certificate (libpq C(sslcert)), when PgBouncer asks for one.
    type: path
  ssl_key:
    description: Private key of O(ssl_cert) (libpq C(sslkey)).
    type: path
  command:
    description: Admin console command to run.
    type: str
    required: true
    choices: [PAUSE, RESUME, RECONNECT, RELOAD, KILL, WAIT_CLOSE, SHOW]
  database:
    description:
      - Database the command applies to, for V(PAUSE), V(RESUME), V(RECONNECT), V(KILL) and V(WAIT_CLOSE).
        All databases when omitted (V(KILL) needs it).
    type: str
  show:
    description: What to show with O(command=SHOW).
    type: str
    choices: [pools, clients, servers, stats, databases, lists]
  pause_timeout:
    description:
      - Seconds to wait for C(PAUSE) to complete before cancelling it with C(RESUME) and failing.
    type: int
    default: 30
requirements:
  - psycopg2
attributes:
  check_mode:
    support: partial
    description: C(SHOW) runs normally; other commands are not sent and reported as changed.
    details: C(SHOW) runs normally; other commands are not sent and reported as changed.
  diff_mode:
    support: none
    description: No diff is produced.
author:
  - pgha.cluster maintainers (@pgha-cluster)
'''

EXAMPLES = r'''
- name: Pause all databases, giving transactions 20 seconds to finish
  pgha.cluster.pgbouncer_admin:
    login_password: "{{ pgbouncer_admin_password }}"
    command: PAUSE
    pause_timeout: 20

- name: Resume
  pgha.cluster.pgbouncer_admin:
    login_password: "{{ pgbouncer_admin_password }}"
    command: RESUME

- name: Reconnect the app database after a switchover
  pgha.cluster.pgbouncer_admin:
    login_password: "{{ pgbouncer_admin_password }}"
    command: RECONNECT
    database: app

- name: Show the pools
  pgha.cluster.pgbouncer_admin:
    login_password: "{{ pgbouncer_admin_password }}"
    command: SHOW
    show: pools
  register: pools
'''

RETURN = r'''
query:
  description: The admin command sent (or that would be sent in check mode).
  returned: always
  type: str
  sample: PAUSE "app"
rows:
  description: Rows returned by C(SHOW), one dict per row keyed by column name.
  returned: always
  type: list
  elements: dict
  sample: [{"database": "app", "user": "app", "cl_active": 3}]
elapsed:
  description: Seconds the command took.
  returned: when a command other than C(SHOW) was run
  type: float
msg:
  description: PgBouncer's notice when the command was a no-op (already paused, not paused).
  returned: when nothing changed
  type: str
'''

import threading
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.pgha.cluster.plugins.module_utils.pgbouncer import (
    HAS_PSYCOPG2,
    PSYCOPG2_IMPORT_ERROR,
    connect,
    pgbouncer_argument_spec,
    quote_ident,
    run,
)

DB_COMMANDS = ('PAUSE', 'RESUME', 'RECONNECT', 'KILL', 'WAIT_CLOSE')
NOOP_ERRORS = {
    'PAUSE': ('already suspended/paused', 'already paused'),
    'RESUME': ('pooler is not paused/suspended', 'is not paused'),
}


def build_query(command, database, show):
    if command == 'SHOW':
        return 'SHOW %s' % show.upper()
    if database and command in DB_COMMANDS:
        return '%s %s' % (command, quote_ident(database))
    return command


def pause_with_timeout(module, conn, query, timeout):
    """Run PAUSE in a worker thread; on timeout send RESUME on a second connection."""
    outcome = {}

    def worker():
        try:
            run(conn, query)
            outcome['ok'] = True
        except Exception as e:  # pylint: disable=broad-except
            outcome['error'] = e

    thread = threading.Thread(target=worker)
    thread.daemon = True
    thread.start()
    thread.join(timeout)
    if not thread.is_alive():
        return outcome
    resume = 'RESUME %s' % query.split(' ', 1)[1] if ' ' in query else 'RESUME'
    resume_error = None
    try:
        conn2 = connect(module.params)
        try:
            run(conn2, resume)
        finally:
            conn2.close()
    except Exception as e:  # pylint: disable=broad-except
        resume_error = to_native(e)
    try:
        conn.cancel()
    except Exception:  # pylint: disable=broad-except
        pass
    thread.join(5)
    msg = ('%s did not complete within pause_timeout=%ss (server connections still busy: check SHOW SERVERS and '
           'long transactions, or raise pause_timeout); ' % (query, timeout))
    if resume_error:
        msg += 'sending %s to cancel the pause FAILED: %s - run it by hand' % (resume, resume_error)
    else:
        msg += 'sent %s, the pooler is not left paused' % resume
    module.fail_json(msg=msg, query=query, rows=[], changed=resume_error is not None)


def main():
    argument_spec = pgbouncer_argument_spec()
    argument_spec.update(
        command=dict(type='str', required=True, choices=['PAUSE', 'RESUME', 'RECONNECT', 'RELOAD', 'KILL',
                                                         'WAIT_CLOSE', 'SHOW']),
        database=dict(type='str'),
        show=dict(type='str', choices=['pools', 'clients', 'servers', 'stats', 'databases', 'lists']),
        pause_timeout=dict(type='int', default=30),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[('command', 'SHOW', ('show',)), ('command', 'KILL', ('database',))],
        supports_check_mode=True,
    )
    p = module.params
    command = p['command']
    if p['show'] and command != 'SHOW':
        module.fail_json(msg='show=%s is only valid with command=SHOW' % p['show'])
    if p['database'] and command not in DB_COMMANDS:
        module.fail_json(msg='database applies only to %s, not to %s' % (', '.join(DB_COMMANDS), command))
    if p['pause_timeout'] <= 0:
        module.fail_json(msg='pause_timeout must be a positive number of seconds, got %s: set it to 1 or more (nothing '
                             'was sent)' % p['pause_timeout'])
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=PSYCOPG2_IMPORT_ERROR)

    query = build_query(command, p['database'], p['show'])
    result = dict(changed=False, query=query, rows=[])
    try:
        conn = connect(p)
    except Exception as e:  # pylint: disable=broad-except
        module.fail_json(msg='cannot connect to the PgBouncer admin console %s:%s as %s: %s; check login_* options '
                             'and admin_users in pgbouncer.ini' % (p['login_host'], p['login_port'], p['login_user'],
                                                                   to_native(e).strip()), **result)
    try:
        if command == 'SHOW':
            result['rows'] = run(conn, query)
            module.exit_json(**result)
        if module.check_mode:
            result['changed'] = True
            module.exit_json(**result)
        start = time.monotonic()
        if command == 'PAUSE':
            outcome = pause_with_timeout(module, conn, query, p['pause_timeout'])
            error = outcome.get('error')
        else:
            error = None
            try:
                run(conn, query)
            except Exception as e:  # pylint: disable=broad-except
                error = e
        if error is not None:
            text = to_native(error).strip()
            if any(s in text for s in NOOP_ERRORS.get(command, ())):
                result['msg'] = text
                module.exit_json(**result)
            module.fail_json(msg='%s failed: %s' % (query, text), **result)
        result.update(changed=True, elapsed=round(time.monotonic() - start, 3))
        module.exit_json(**result)
    finally:
        try:
            conn.close()
        except Exception:  # pylint: disable=broad-except
            pass


if __name__ == '__main__':
    main()
