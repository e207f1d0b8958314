# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from ansible_collections.pgha.cluster.plugins.modules import patroni_failover as module
from ansible_collections.pgha.cluster.tests.unit.utils import conn_args, run_module


def test_confirm_required_nothing_sent(fake):
    r = run_module(module, conn_args(fake, candidate='pg2'))
    assert r['failed'] and 'confirm=true' in r['msg'] and fake.requests == []


def test_candidate_required(fake):
    r = run_module(module, conn_args(fake, confirm=True))
    assert r['failed'] and 'candidate' in r['msg']


def test_failover_and_idempotence(fake):
    r = run_module(module, conn_args(fake, candidate='pg3', confirm=True, wait_timeout=10))
    assert r['rc'] == 0 and r['changed'], r
    assert (r['old_leader'], r['new_leader'], r['timeline_before'], r['timeline_after']) == ('pg1', 'pg3', 1, 2)
    assert ('pg1', 'POST', '/failover', {'candidate': 'pg3'}) in fake.requests
    r = run_module(module, conn_args(fake, candidate='pg3', confirm=True))
    assert r['rc'] == 0 and not r['changed']


def test_failover_without_leader_and_dead_old_leader(fake):
    fake.members['pg1'].state = 'stopped'
    fake.stop_member('pg1')
    r = run_module(module, conn_args(fake, candidate='pg2', confirm=True, wait_timeout=10))
    assert r['rc'] == 0 and r['new_leader'] == 'pg2', r


def test_post_goes_to_the_member_that_acts(make_fake):
    """With a running leader the POST goes to the leader first (it demotes itself), without one
    to the candidate (it promotes itself), whatever the order of api_url."""
    fake = make_fake(leader='pg2')
    r = run_module(module, conn_args(fake, candidate='pg3', confirm=True, wait_timeout=10))
    assert r['rc'] == 0 and r['new_leader'] == 'pg3', r
    assert [q for q in fake.requests if q[1] == 'POST'] == [('pg2', 'POST', '/failover', {'candidate': 'pg3'})]
    dead = make_fake()
    dead.members['pg1'].state = 'stopped'
    r = run_module(module, conn_args(dead, candidate='pg3', confirm=True, wait=False))
    assert r['rc'] == 0 and r['new_leader'] == 'pg3', r
    assert [q for q in dead.requests if q[1] == 'POST'] == [('pg3', 'POST', '/failover', {'candidate': 'pg3'})]


def test_check_mode(fake):
    r = run_module(module, conn_args(fake, candidate='pg2', confirm=True), check_mode=True)
    assert r['rc'] == 0 and r['changed'] and [x for x in fake.requests if x[1] != 'GET'] == []


def test_refusals(fake):
    r = run_module(module, conn_args(fake, candidate='nope', confirm=True))
    assert r['failed'] and 'valid members: pg1, pg2, pg3' in r['msg']
    fake.members['pg2'].tags = {'nofailover': True}
    r = run_module(module, conn_args(fake, candidate='pg2', confirm=True))
    assert r['failed'] and 'nofailover' in r['msg']
    fake.members['pg3'].lag = 4096
    r = run_module(module, conn_args(fake, candidate='pg3', confirm=True, max_lag_bytes=100))
    assert r['failed'] and 'lags 4096 bytes' in r['msg']
    assert [x for x in fake.requests if x[1] != 'GET'] == []


def test_patroni_refusal_passed_through(fake):
    fake.overrides[('POST', '/failover')] = (412, 'failover is not possible: no good candidates have been found')
    r = run_module(module, conn_args(fake, candidate='pg2', confirm=True))
    assert r['failed'] and 'no good candidates have been found' in r['msg']


def test_post_failover_may_take_longer_than_timeout(fake):
    # Patroni answers POST /failover only after the promotion: the request must be allowed
    # max(timeout, wait_timeout), not the general (GET) timeout.
    fake.members['pg1'].faults['hang_post'] = 1.5
    r = run_module(module, conn_args(fake, candidate='pg2', confirm=True, timeout=1, wait_timeout=5))
    assert r['rc'] == 0 and r['changed'] and r['new_leader'] == 'pg2', r
    assert [q for q in fake.requests if q[2] == '/failover'] == [('pg1', 'POST', '/failover', {'candidate': 'pg2'})]
