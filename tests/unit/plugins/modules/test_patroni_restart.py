# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from ansible_collections.pgha.cluster.plugins.modules import patroni_restart as module
from ansible_collections.pgha.cluster.tests.unit.utils import conn_args, run_module


def restarts(fake):
    return [r[0] for r in fake.requests if r[1] == 'POST' and r[2] == '/restart']


def test_pending_only_rolling_leader_last(fake):
    for m in fake.members.values():
        m.pending_restart = True
    r = run_module(module, conn_args(fake, pending_only=True, wait_timeout=10))
    assert r['rc'] == 0 and r['changed'] and r['restarted'] == ['pg2', 'pg3', 'pg1'], r
    assert restarts(fake) == ['pg2', 'pg3', 'pg1']
    assert not any(m['pending_restart'] for m in r['members'])
    r = run_module(module, conn_args(fake, pending_only=True))
    assert r['rc'] == 0 and not r['changed'] and r['restarted'] == [] and len(restarts(fake)) == 3


def test_single_member(fake):
    before = fake.members['pg2'].start_time
    r = run_module(module, conn_args(fake, member='pg2', wait_timeout=10))
    assert r['rc'] == 0 and r['changed'] and r['restarted'] == ['pg2']
    assert fake.members['pg2'].start_time != before


def test_member_pending_only_not_pending(fake):
    r = run_module(module, conn_args(fake, member='pg2', pending_only=True))
    assert r['rc'] == 0 and not r['changed'] and restarts(fake) == []


def test_check_mode(fake):
    fake.members['pg1'].pending_restart = True
    fake.members['pg3'].pending_restart = True
    r = run_module(module, conn_args(fake, pending_only=True), check_mode=True)
    assert r['rc'] == 0 and r['changed'] and r['restarted'] == ['pg3', 'pg1'] and restarts(fake) == []


def test_unknown_member_and_validation(fake):
    r = run_module(module, conn_args(fake, member='pgX'))
    assert r['failed'] and 'valid members: pg1, pg2, pg3' in r['msg']
    r = run_module(module, conn_args(fake))
    assert r['failed'] and 'member' in r['msg']


def test_restart_refused(fake):
    fake.overrides[('POST', '/restart')] = (503, 'restart failed')
    r = run_module(module, conn_args(fake, member='pg3'))
    assert r['failed'] and 'restart of pg3 failed' in r['msg'] and 'restart failed' in r['msg']


def test_member_never_comes_back(fake):
    fake.members['pg2'].pending_restart = True
    fake.overrides[('POST', '/restart')] = (200, 'restarted successfully')
    fake.members['pg2'].state = 'starting'
    r = run_module(module, conn_args(fake, pending_only=True, wait_timeout=1))
    assert r['failed'] and 'pg2 did not come back within 1s' in r['msg'] and r['changed']


def test_post_restart_may_take_longer_than_timeout(fake):
    # Patroni answers POST /restart only once PostgreSQL is up again: the request must be
    # allowed max(timeout, wait_timeout), not the general (GET) timeout.
    fake.members['pg2'].pending_restart = True
    fake.members['pg2'].faults['hang_post'] = 1.5
    r = run_module(module, conn_args(fake, member='pg2', pending_only=True, timeout=1, wait_timeout=10))
    assert r['rc'] == 0 and r['changed'] and r['restarted'] == ['pg2'], r
    assert restarts(fake) == ['pg2']
