# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgbouncer_admin: everything that needs no running PgBouncer."""

import os
import socket
import subprocess
import sys

import pytest

from ansible_collections.pgha.cluster.plugins.modules import pgbouncer_admin as module
from ansible_collections.pgha.cluster.tests.unit.utils import run_module


def closed_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize('args,needle', [
    ({}, 'command'),
    ({'command': 'SHOW'}, 'show'),
    ({'command': 'KILL'}, 'database'),
    ({'command': 'FLUSH'}, 'command'),
    ({'command': 'SHOW', 'show': 'everything'}, 'show'),
    ({'command': 'PAUSE', 'show': 'pools'}, 'only valid with command=SHOW'),
    ({'command': 'RELOAD', 'database': 'app'}, 'database applies only to'),
    ({'command': 'PAUSE', 'pause_timeout': 0}, 'pause_timeout must be a positive'),
])
def test_argument_validation(args, needle):
    r = run_module(module, args)
    assert r['failed'] and needle in r['msg']


def test_build_query():
    assert module.build_query('SHOW', None, 'pools') == 'SHOW POOLS'
    assert module.build_query('PAUSE', 'app', None) == 'PAUSE "app"'
    assert module.build_query('RESUME', 'we"ird', None) == 'RESUME "we""ird"'
    assert module.build_query('RELOAD', None, None) == 'RELOAD'


def test_connection_failure_is_clear():
    r = run_module(module, dict(command='SHOW', show='pools', login_port=closed_port(), login_password='pw',
                                connect_timeout=2))
    assert r['failed'] and 'cannot connect to the PgBouncer admin console 127.0.0.1' in r['msg']
    assert 'pw' not in r['msg'].split('console')[0]


def test_missing_psycopg2(tmp_path):
    """Run the real module file in a Python where psycopg2 cannot be imported."""
    fake_pkg = tmp_path / 'psycopg2'
    fake_pkg.mkdir()
    (fake_pkg / '__init__.py').write_text('raise ImportError("No module named psycopg2")\n')
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
    code = (
        'import json, sys\n'
        'from ansible.module_utils.testing import patch_module_args\n'
        'from ansible_collections.pgha.cluster.plugins.modules import pgbouncer_admin as m\n'
        'with patch_module_args({"command": "RELOAD"}):\n'
        '    m.main()\n'
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.path.join(root, '.collections')]))
    proc = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc.stderr
    assert 'Failed to import the required Python library (psycopg2)' in proc.stdout
