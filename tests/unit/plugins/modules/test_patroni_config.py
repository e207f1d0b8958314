# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

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


# --- Patroni's rules on the merged configuration (module_utils/patroni_rules.py) -----------------

def _refused(r, fake, *needles):
    assert r['failed'] and r['msg'].startswith('refusing the dynamic configuration change, nothing was sent: '), r
    for needle in needles:
        assert needle in r['msg'], (needle, r['msg'])
    assert patches(fake) == []


@pytest.mark.parametrize('settings,needles', [
    ({'ttl': 10}, ['ttl must be >= 20', 'got ttl 10', '> ttl 10']),
    ({'loop_wait': 30}, ['loop_wait 30 + 2 x retry_timeout 10 = 50 > ttl 30']),
    ({'retry_timeout': 1}, ['retry_timeout must be >= 3, got retry_timeout 1']),
    ({'loop_wait': 0}, ['loop_wait must be >= 1']),
    ({'maximum_lag_on_failover': -5}, ['maximum_lag_on_failover must be >= 0 (bytes), got -5']),
    ({'synchronous_node_count': 3}, ['synchronous_node_count must be <= the number of replicas (2), got 3']),
    ({'synchronous_node_count': 0}, ['synchronous_node_count must be >= 1, got 0']),
    ({'synchronous_mode': 'maybe'}, ["synchronous_mode must be true, false, on, off or quorum, got 'maybe'"]),
    ({'ttl_seconds': 30}, ['unknown dynamic configuration key(s): ttl_seconds', 'force: true']),
    ({'ttl': 'abc'}, ["ttl must be an integer, got 'abc'"]),
    # the merged result counts: retry_timeout 10 from the DCS with the new ttl
    ({'ttl': 25}, ['loop_wait 10 + 2 x retry_timeout 10 = 30 > ttl 25']),
])
def test_rules_refuse_before_sending(fake, settings, needles):
    for check_mode in (False, True):
        r = run_module(module, conn_args(fake, settings=settings), check_mode=check_mode)
        _refused(r, fake, *needles)
    assert fake.config['ttl'] == 30 and fake.config['loop_wait'] == 10


def test_rules_two_steps_cannot_sneak_through(fake):
    """The issue's case: ttl 10 refused; then loop_wait 30 against the real ttl 30 is refused too."""
    _refused(run_module(module, conn_args(fake, settings={'ttl': 10})), fake, 'ttl 10')
    _refused(run_module(module, conn_args(fake, settings={'loop_wait': 30})), fake, 'loop_wait 30')


def test_rules_accept_consistent_changes_and_force(fake):
    r = run_module(module, conn_args(fake, settings={'ttl': 60, 'loop_wait': 20, 'retry_timeout': 20}))
    assert r['rc'] == 0 and r['changed'], r
    r = run_module(module, conn_args(fake, settings={'synchronous_mode': 'quorum', 'synchronous_node_count': 2}))
    assert r['rc'] == 0 and r['changed'], r
    r = run_module(module, conn_args(fake, settings={'brand_new_key': 1}, force=True))
    assert r['rc'] == 0 and r['changed'] and fake.config['brand_new_key'] == 1, r
    # force does not lift the other rules
    r = run_module(module, conn_args(fake, settings={'brand_new_key': 2, 'ttl': 10}, force=True))
    assert r['failed'] and 'ttl must be >= 20' in r['msg'] and 'unknown' not in r['msg']
    # a key already in the DCS does not block an unrelated change
    r = run_module(module, conn_args(fake, settings={'postgresql': {'parameters': {'work_mem': '8MB'}}}))
    assert r['rc'] == 0 and r['changed'], r
    # deleting a key is not checked against the known ones
    r = run_module(module, conn_args(fake, settings={'brand_new_key': None}))
    assert r['rc'] == 0 and r['changed'] and 'brand_new_key' not in fake.config, r
