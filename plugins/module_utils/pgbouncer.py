# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PgBouncer admin console helpers (psycopg2, autocommit, simple queries only)."""

import traceback

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
    HAS_PSYCOPG2 = True
except ImportError:
    psycopg2 = None
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()


def pgbouncer_argument_spec():
    return dict(
        login_host=dict(type='str', default='127.0.0.1'),
        login_port=dict(type='int', default=6432),
        login_user=dict(type='str', default='pgbouncer'),
        login_password=dict(type='str', no_log=True),
        login_db=dict(type='str', default='pgbouncer'),
        connect_timeout=dict(type='int', default=10),
    )


def connect(params):
    """Open an autocommit connection to the admin console (PgBouncer has no transactions there)."""
    kwargs = dict(host=params['login_host'], port=params['login_port'], user=params['login_user'],
                  dbname=params['login_db'], connect_timeout=params['connect_timeout'])
    if params.get('login_password'):
        kwargs['password'] = params['login_password']
    conn = psycopg2.connect(**kwargs)
    conn.autocommit = True
    return conn


def run(conn, sql):
    """Run one simple admin command; return a list of dicts (empty for commands without rows)."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        cur.close()


def quote_ident(name):
    """Quote a database name for the admin console."""
    return '"%s"' % name.replace('"', '""')
