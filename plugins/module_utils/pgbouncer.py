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
        ssl_mode=dict(type='str', default='prefer',
                      choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
        ca_cert=dict(type='path', aliases=['ssl_rootcert']),
        ssl_cert=dict(type='path'),
        ssl_key=dict(type='path'),
    )


# Option of pgbouncer_argument_spec() -> libpq keyword.
SSL_KEYWORDS = (('ssl_mode', 'sslmode'), ('ca_cert', 'sslrootcert'), ('ssl_cert', 'sslcert'), ('ssl_key', 'sslkey'))


def connect_kwargs(host, port, user, password=None, dbname='pgbouncer', connect_timeout=10, sslmode=None,
                   sslrootcert=None, sslcert=None, sslkey=None):
    """libpq keywords for the admin console (TLS: sslmode, sslrootcert, sslcert, sslkey)."""
    kwargs = dict(host=host, port=port, user=user, dbname=dbname, connect_timeout=connect_timeout)
    if password:
        kwargs['password'] = password
    for key, value in (('sslmode', sslmode), ('sslrootcert', sslrootcert), ('sslcert', sslcert), ('sslkey', sslkey)):
        if value:
            kwargs[key] = value
    return kwargs


def connect_raw(kwargs):
    """An autocommit connection from libpq keywords (see connect_kwargs)."""
    conn = psycopg2.connect(**kwargs)
    conn.autocommit = True
    return conn


def connect(params):
    """Open an autocommit connection to the admin console (PgBouncer has no transactions there)."""
    kwargs = connect_kwargs(params['login_host'], params['login_port'], params['login_user'],
                            params.get('login_password'), params['login_db'], params['connect_timeout'],
                            **dict((kw, params.get(opt)) for opt, kw in SSL_KEYWORDS))
    return connect_raw(kwargs)


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
