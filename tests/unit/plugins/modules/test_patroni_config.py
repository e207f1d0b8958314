# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from ansible_collections.pgha.cluster.plugins.modules import patroni_config as module
from ansible_collections.pgha.cluster.tests.unit.utils import conn_args, run_module


def patches(fake):
    return [r for r in fake.requests if r[1] == 'PATCH']


def test_read_only(fake):
    r = run_module(module, conn_args(fake))
    assert r['rc'] == 0 and not r['changed'] and r['config']['loop_wait'] == 10 and patches(fake) == []


def test_change_idempotence_and_pending_restart(fake):
    settings = {'ttl': 40, 'postgresql': {'parameters': {'max_connections': 200, 'wal_level': 'replica'}}}
    r = run_module(module, conn_args(fake, settings=settings), diff=True)
    assert r['rc'] == 0 and r['changed'], r
    assert r['changes'] == {'ttl': 40, 'postgresql': {'parameters': {'max_connections': 200}}}
    assert r['config']['postgresql']['parameters']['max_connections'] == 200
    assert r['diff']['before']['ttl'] == 30 and r['diff']['after']['ttl'] == 40
    assert r['pending_restart'] == ['pg1', 'pg2', 'pg3']
    assert patches(fake) == [('pg1', 'PATCH', '/config', r['changes'])]
    # same settings again (numbers given as text too): no change, no PATCH
    settings['postgresql']['parameters']['max_connections'] = '200'
    r = run_module(module, conn_args(fake, settings=settings), diff=True)
    assert r['rc'] == 0 and not r['changed'] and 'diff' not in r and len(patches(fake)) == 1


def test_null_removes_key(fake):
    r = run_module(module, conn_args(fake, settings={'retry_timeout': None, 'absent_key': None}))
    assert r['rc'] == 0 and r['changed'] and r['changes'] == {'retry_timeout': None}
    assert 'retry_timeout' not in fake.config
    r = run_module(module, conn_args(fake, settings={'retry_timeout': None}))
    assert not r['changed']


def test_check_mode_with_diff(fake):
    r = run_module(module, conn_args(fake, settings={'loop_wait': 5}), check_mode=True, diff=True)
    assert r['rc'] == 0 and r['changed'] and r['config']['loop_wait'] == 5
    assert r['diff'] == {'before': fake.config, 'after': r['config']}
    assert fake.config['loop_wait'] == 10 and patches(fake) == []


def test_401(fake):
    r = run_module(module, dict(api_url=fake.urls, settings={'ttl': 31}, timeout=2))
    assert r['failed'] and 'authentication failed: set api_username/api_password' in r['msg']


def test_argument_validation(fake):
    r = run_module(module, conn_args(fake, state='absent'))
    assert r['failed'] and 'state' in r['msg']
    r = run_module(module, conn_args(fake, settings=[1, 2]))
    assert r['failed'] and 'settings' in r['msg']


def test_compute_changes_units():
    current = {'a': 1, 'b': {'c': 'on', 'd': 2}, 'e': True}
    assert module.compute_changes(current, {'a': '1', 'b': {'c': True}, 'e': 'on'}) == {}
    assert module.compute_changes(current, {'b': {'d': 3, 'x': None}}) == {'b': {'d': 3}}
    assert module.compute_changes(current, {'n': {'m': 1}}) == {'n': {'m': 1}}
    assert module.merge(current, {'b': {'d': None}, 'a': 2}) == {'a': 2, 'b': {'c': 'on'}, 'e': True}
