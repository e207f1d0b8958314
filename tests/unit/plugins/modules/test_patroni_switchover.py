# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from ansible_collections.pgha.cluster.plugins.modules import patroni_switchover as module
from ansible_collections.pgha.cluster.tests.unit.utils import conn_args, run_module, silent_listener


def posts(fake):
    return [r for r in fake.requests if r[1] != 'GET']


def test_switchover_to_candidate_and_idempotence(fake):
    r = run_module(module, conn_args(fake, candidate='pg3', wait_timeout=10))
    assert r['rc'] == 0 and r['changed'], r
    assert (r['old_leader'], r['new_leader'], r['timeline_before'], r['timeline_after']) == ('pg1', 'pg3', 1, 2)
    assert r['elapsed'] > 0
    old = [m for m in r['members'] if m['name'] == 'pg1'][0]
    assert old['role'] == 'replica' and old['up'] and old['timeline'] == 2
    assert posts(fake) == [('pg1', 'POST', '/switchover', {'leader': 'pg1', 'candidate': 'pg3'})]
    again = run_module(module, conn_args(fake, candidate='pg3'))
    assert again['rc'] == 0 and not again['changed'] and 'already is the leader' in again['msg']
    assert len(posts(fake)) == 1


def test_auto_candidate_least_lag_without_nofailover(fake):
    fake.members['pg2'].lag = 10
    fake.members['pg3'].lag = 0
    fake.members['pg3'].tags = {'nofailover': True}
    r = run_module(module, conn_args(fake))
    assert r['rc'] == 0 and r['new_leader'] == 'pg2'
    fake.members['pg2'].tags = {}


def test_auto_candidate_sync_mode(make_fake):
    fake = make_fake(version='3.0.2', synchronous=True)
    fake.members['pg3'].lag = 0
    fake.members['pg2'].lag = 500
    r = run_module(module, conn_args(fake))
    assert r['rc'] == 0 and r['new_leader'] == 'pg2', r
    r = run_module(module, conn_args(fake, candidate='pg3'))
    assert r['failed'] and 'neither a sync_standby nor a quorum_standby' in r['msg']


def test_check_mode_sends_nothing(fake):
    r = run_module(module, conn_args(fake, candidate='pg2'), check_mode=True)
    assert r['rc'] == 0 and r['changed'] and r['new_leader'] == 'pg2' and 'would switch over from pg1 to pg2' in r['msg']
    assert posts(fake) == []


def test_exclude_in_check_mode(fake):
    """The flows ask the module in check mode for the candidate; exclude keeps a member out."""
    fake.members['pg2'].lag = 0
    fake.members['pg3'].lag = 10
    r = run_module(module, conn_args(fake), check_mode=True)
    assert r['rc'] == 0 and r['new_leader'] == 'pg2', r
    r = run_module(module, conn_args(fake, exclude=['pg2']), check_mode=True)
    assert r['rc'] == 0 and r['new_leader'] == 'pg3', r
    r = run_module(module, conn_args(fake, exclude=['pg2', 'pg3']), check_mode=True)
    assert r['failed'] and 'candidate pg2 is excluded' in r['msg'] and 'candidate pg3 is excluded' in r['msg']
    r = run_module(module, conn_args(fake, candidate='pg2', exclude=['pg2']), check_mode=True)
    assert r['failed'] and 'cannot switch over to pg2: candidate pg2 is excluded' in r['msg']
    assert posts(fake) == []


def test_refuse_paused(fake):
    fake.paused = True
    r = run_module(module, conn_args(fake, candidate='pg2'))
    assert r['failed'] and 'paused' in r['msg'] and posts(fake) == []


def test_refuse_lag(fake):
    fake.members['pg2'].lag = 10 * 1024 * 1024
    r = run_module(module, conn_args(fake, candidate='pg2', max_lag_bytes=1024))
    assert r['failed'] and 'lags 10485760 bytes, more than max_lag_bytes=1024' in r['msg'] and posts(fake) == []


def test_refuse_unknown_candidate_lists_members(fake):
    r = run_module(module, conn_args(fake, candidate='pg9'))
    assert r['failed'] and 'valid members: pg1, pg2, pg3' in r['msg'] and posts(fake) == []


def test_refuse_unhealthy_and_nofailover(fake):
    fake.members['pg2'].state = 'stopped'
    fake.members['pg3'].tags = {'nofailover': True}
    r = run_module(module, conn_args(fake, candidate='pg2'))
    assert r['failed'] and 'candidate pg2 is stopped' in r['msg']
    r = run_module(module, conn_args(fake, candidate='pg3'))
    assert r['failed'] and 'nofailover' in r['msg']
    r = run_module(module, conn_args(fake))
    assert r['failed'] and 'no replica can take over' in r['msg'] and posts(fake) == []


def test_refuse_no_leader(fake):
    fake.leader = None
    r = run_module(module, conn_args(fake, candidate='pg2'))
    assert r['failed'] and r['msg'].startswith('no leader') and 'patroni_failover' in r['msg']


def test_412_from_patroni_is_reported(fake):
    fake.overrides[('POST', '/switchover')] = (412, 'switchover is not possible: no good candidates have been found')
    r = run_module(module, conn_args(fake, candidate='pg2'))
    assert r['failed'] and 'switchover is not possible: no good candidates have been found' in r['msg']
    assert '412' in r['msg'] and not r['changed']


def test_503_from_patroni(fake):
    fake.overrides[('POST', '/switchover')] = (503, 'Switchover failed')
    r = run_module(module, conn_args(fake, candidate='pg2'))
    assert r['failed'] and 'unavailable (503)' in r['msg'] and 'Switchover failed' in r['msg']


def test_401(fake):
    r = run_module(module, conn_args(fake, candidate='pg2', api_password='wrong'))
    assert r['failed'] and 'authentication failed: set api_username/api_password' in r['msg']
    assert 'wrong' not in r['msg']


def test_http_200_is_not_trusted(fake):
    # Patroni says OK, but the cluster never changes: the module must not believe it
    fake.overrides[('POST', '/switchover')] = (200, 'Successfully switched over to "pg2"')
    r = run_module(module, conn_args(fake, candidate='pg2', wait_timeout=1))
    assert r['failed'] and r['changed'] and 'not verified within 1s' in r['msg'] and 'leader is still pg1' in r['msg']


def test_old_leader_must_rejoin(make_fake):
    fake = make_fake(version='4.0.7', rejoin_delay=5)
    r = run_module(module, conn_args(fake, candidate='pg2', wait_timeout=1))
    assert r['failed'] and 'old leader pg1 is stopped' in r['msg']
    fake2 = make_fake(version='4.0.7', rejoin_delay=5)
    r = run_module(module, conn_args(fake2, candidate='pg2', wait=False, wait_timeout=2))
    assert r['rc'] == 0 and r['new_leader'] == 'pg2' and r['timeline_after'] == 2


def test_post_goes_to_the_leader_first(make_fake):
    """Another member would only write the request to the DCS, and the leader would act on it at
    its next HA cycle (up to loop_wait later): the POST goes to the leader's api_url first,
    whatever the order of api_url."""
    fake = make_fake(leader='pg2')
    r = run_module(module, conn_args(fake, candidate='pg3', wait_timeout=10))
    assert r['rc'] == 0 and (r['old_leader'], r['new_leader']) == ('pg2', 'pg3'), r
    assert posts(fake) == [('pg2', 'POST', '/switchover', {'leader': 'pg2', 'candidate': 'pg3'})]


def test_unreachable_advertised_leader_url_is_not_used(make_fake):
    """The leader's advertised api_url may be an address the controller cannot reach: when it is
    not in api_url and does not answer GET /liveness, the POST goes to api_url's members in order
    instead of hanging there for wait_timeout (a POST that timed out is never retried)."""
    fake = make_fake(leader='pg2')
    with silent_listener() as silent_url:
        fake.members['pg2'].advertised_url = silent_url
        r = run_module(module, conn_args(fake, candidate='pg3', timeout=1, wait_timeout=8))
    assert r['rc'] == 0 and (r['old_leader'], r['new_leader']) == ('pg2', 'pg3'), r
    assert posts(fake) == [('pg1', 'POST', '/switchover', {'leader': 'pg2', 'candidate': 'pg3'})]


def test_reachable_advertised_leader_url_is_used(make_fake):
    """An advertised api_url that api_url does not list (another name for the same member) is used
    once it answers GET /liveness."""
    fake = make_fake(leader='pg2')
    fake.members['pg2'].advertised_url = fake.url('pg2').replace('127.0.0.1', 'localhost')
    r = run_module(module, conn_args(fake, candidate='pg3', wait_timeout=10))
    assert r['rc'] == 0 and r['new_leader'] == 'pg3', r
    assert ('pg2', 'GET', '/liveness', None) in fake.requests
    assert posts(fake) == [('pg2', 'POST', '/switchover', {'leader': 'pg2', 'candidate': 'pg3'})]


def test_fallback_when_leader_api_down(fake):
    fake.stop_member('pg1')
    r = run_module(module, conn_args(fake, candidate='pg2', wait=False))
    assert r['rc'] == 0 and r['new_leader'] == 'pg2', r


def test_scheduled(fake):
    when = '2030-01-01T03:00:00+00:00'
    r = run_module(module, conn_args(fake, candidate='pg2', scheduled_at=when))
    assert r['rc'] == 0 and r['changed'] and r['scheduled']
    assert r['scheduled_switchover'] == {'at': when, 'from': 'pg1', 'to': 'pg2'}
    r = run_module(module, conn_args(fake, candidate='pg2', scheduled_at=when))
    assert r['rc'] == 0 and not r['changed']
    r = run_module(module, conn_args(fake, candidate='pg3', scheduled_at=when))
    assert r['failed'] and 'already scheduled' in r['msg']


def test_argument_validation(fake):
    r = run_module(module, conn_args(fake, wait_timeout=0))
    assert r['failed'] and 'wait_timeout' in r['msg']
    r = run_module(module, conn_args(fake, wait='maybe'))
    assert r['failed'] and 'wait' in r['msg']


def test_post_switchover_may_take_longer_than_timeout(fake):
    # Patroni answers POST /switchover only after the demote: the request must be allowed
    # max(timeout, wait_timeout), not the general (GET) timeout.
    fake.members['pg1'].faults['hang'] = 1.5
    r = run_module(module, conn_args(fake, candidate='pg2', timeout=1, wait_timeout=5))
    assert r['rc'] == 0 and r['changed'] and r['new_leader'] == 'pg2', r
    assert [p for p in posts(fake) if p[2] == '/switchover'] == [('pg1', 'POST', '/switchover', {'leader': 'pg1', 'candidate': 'pg2'})]
