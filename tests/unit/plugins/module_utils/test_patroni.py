# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the shared Patroni client against a real fake Patroni HTTP server."""

import socket
import time

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils import patroni as pu


def client(fake, urls=None, **kw):
    kw.setdefault('timeout', 2)
    return pu.PatroniClient(urls or fake.urls, **kw)


def closed_port_url():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return 'http://127.0.0.1:%d' % port


def test_base_url():
    assert pu.base_url('http://h:8008/patroni') == 'http://h:8008'
    assert pu.base_url(' http://h:8008/ ') == 'http://h:8008'


def test_empty_api_url():
    with pytest.raises(pu.PatroniError, match='at least one'):
        pu.PatroniClient([' ', ''])


def test_cluster_both_generations(fake):
    state = pu.fetch_cluster(client(fake))
    assert state.leader_name == 'pg1'
    assert [m['role'] for m in state.members] == ['leader', 'replica', 'replica']
    replica_state = 'running' if fake.version.startswith('3') else 'streaming'
    assert all(m['state'] == replica_state and m['up'] for m in state.replicas)
    assert state.health(1024) == (True, [])


def test_member_status_primary_word(fake):
    status = client(fake).member_status(fake.url('pg1') + '/patroni')
    assert status['role'] == ('master' if fake.version.startswith('3') else 'primary')
    assert pu.normalize_role(status['role']) == 'leader'
    assert pu.is_leader_role(status['role'])


@pytest.mark.parametrize('raw,expected', [
    ('master', 'leader'), ('primary', 'leader'), ('Leader', 'leader'), ('standby_leader', 'standby_leader'),
    ('sync_standby', 'sync_standby'), ('replica', 'replica'), (None, 'unknown'),
])
def test_normalize_role(raw, expected):
    assert pu.normalize_role(raw) == expected


def test_normalize_member_lag_unknown_and_tags():
    m = pu.normalize_member({'name': 'a', 'role': 'replica', 'state': 'streaming', 'lag': 'unknown',
                             'tags': {'nofailover': True}, 'pending_restart': True})
    assert m['lag'] is None and m['nofailover'] and m['pending_restart'] and m['up'] and not m['is_leader']
    leader = pu.normalize_member({'name': 'b', 'role': 'standby_leader', 'state': 'running'})
    assert leader['is_leader'] and leader['lag'] == 0


def test_unreachable_member_falls_back(fake):
    fake.stop_member('pg1')
    c = client(fake)
    state = pu.fetch_cluster(c)
    assert c.last_url == fake.url('pg2')
    assert state.leader_name == 'pg1'


def test_all_unreachable_lists_every_url():
    urls = [closed_port_url(), closed_port_url()]
    with pytest.raises(pu.PatroniError) as e:
        pu.PatroniClient(urls, timeout=1).cluster()
    assert 'no Patroni member answered GET /cluster' in str(e.value)
    assert urls[0] in str(e.value) and urls[1] in str(e.value)
    assert e.value.kind == 'unreachable'


def test_timeout_then_fallback(fake):
    fake.members['pg1'].faults['hang'] = 1.5
    c = client(fake, timeout=0.3)
    start = time.monotonic()
    state = pu.fetch_cluster(c)
    assert time.monotonic() - start < 1.4
    assert c.last_url == fake.url('pg2') and state.leader_name == 'pg1'


def test_timeout_single_member(fake):
    fake.members['pg1'].faults['hang'] = 1.5
    with pytest.raises(pu.PatroniError, match='timeout after 0.3s') as e:
        client(fake, urls=[fake.url('pg1')], timeout=0.3).cluster()
    assert e.value.kind == 'timeout'


def test_malformed_json(fake):
    fake.members['pg1'].faults['badjson'] = True
    with pytest.raises(pu.PatroniError, match='malformed JSON') as e:
        client(fake, urls=[fake.url('pg1')]).cluster()
    assert e.value.kind == 'malformed'
    # with more members the next one is asked
    c = client(fake)
    assert pu.fetch_cluster(c).leader_name == 'pg1' and c.last_url == fake.url('pg2')


def test_503_get_falls_back_and_maps(fake):
    fake.members['pg1'].faults['status'] = 503
    with pytest.raises(pu.PatroniError, match=r'unavailable \(503\)') as e:
        client(fake, urls=[fake.url('pg1')]).cluster()
    assert e.value.status == 503 and e.value.kind == 'unavailable'
    assert pu.fetch_cluster(client(fake)).leader_name == 'pg1'


def test_401_without_and_with_wrong_credentials(fake):
    with pytest.raises(pu.PatroniError, match='authentication failed: set api_username/api_password') as e:
        client(fake).switchover('pg1', 'pg2')
    assert e.value.status == 401 and 'no auth header received' in str(e.value)
    with pytest.raises(pu.PatroniError, match='not authenticated'):
        client(fake, username='patroni', password='wrong').switchover('pg1', 'pg2')
    # a 401 is not retried on the other members
    assert [r for r in fake.requests if r[1] == 'POST'] == [('pg1', 'POST', '/switchover',
                                                             {'leader': 'pg1', 'candidate': 'pg2'})] * 2


@pytest.mark.parametrize('leader,candidate,message', [
    ('pg2', 'pg3', 'leader name does not match'),
    ('pg1', 'nosuch', 'candidate does not exists'),
])
def test_412_passes_patroni_message(fake, leader, candidate, message):
    c = client(fake, username='patroni', password='secret')
    with pytest.raises(pu.PatroniError) as e:
        c.switchover(leader, candidate)
    assert e.value.status == 412 and e.value.kind == 'precondition'
    assert message in str(e.value) and '412' in str(e.value)


def test_412_sync_standby(make_fake):
    fake = make_fake(synchronous=True)
    c = client(fake, username='patroni', password='secret')
    with pytest.raises(pu.PatroniError, match='candidate name does not match with sync_standby'):
        c.switchover('pg1', 'pg3')


def test_switchover_changes_leader_and_timeline(fake):
    c = client(fake, username='patroni', password='secret')
    status, text = c.switchover('pg1', 'pg3')
    assert status == 200 and 'Successfully switched over to "pg3"' in text
    done, state, detail, dummy = pu.wait_for(c, pu.takeover_check('pg1', 'pg3', 1), timeout=5, interval=0.05)
    assert done, detail
    assert state.leader_name == 'pg3' and state.timeline == 2
    assert state.member('pg1')['role'] == 'replica' and state.member('pg1')['timeline'] == 2


def test_post_not_retried_after_timeout(fake):
    fake.members['pg1'].faults['hang'] = 1.0
    c = client(fake, username='patroni', password='secret', timeout=0.3)
    with pytest.raises(pu.PatroniError) as e:
        c.switchover('pg1', 'pg2')
    assert e.value.kind == 'timeout'
    assert not [r for r in fake.requests if r[0] != 'pg1']


def test_post_retried_when_unreachable(fake):
    fake.stop_member('pg1')
    c = client(fake, username='patroni', password='secret')
    status, dummy = c.switchover('pg1', 'pg2')
    assert status == 200 and c.last_url == fake.url('pg2')


def test_health_rules(fake):
    fake.members['pg2'].lag = 5000
    fake.members['pg3'].state = 'stopped'
    healthy, reasons = pu.fetch_cluster(client(fake)).health(1024)
    assert not healthy
    assert 'replica pg2 lags 5000 bytes (more than max_lag_bytes=1024)' in reasons
    assert 'replica pg3 is stopped, not running/streaming' in reasons


def test_health_no_leader_and_unknown_lag():
    state = pu.ClusterState({'members': [
        {'name': 'a', 'role': 'replica', 'state': 'running', 'lag': 'unknown'},
        {'name': 'b', 'role': 'replica', 'state': 'streaming', 'lag': 0, 'timeline': 2}]})
    healthy, reasons = state.health(10)
    assert not healthy
    assert reasons[0].startswith('no leader')
    assert "replica a has unknown lag ('unknown')" in reasons
    two = pu.ClusterState({'members': [{'name': 'a', 'role': 'leader', 'state': 'running'},
                                       {'name': 'b', 'role': 'master', 'state': 'running'}]})
    assert 'more than one leader: a, b' in two.health(10)[1]


def test_choose_candidate(fake):
    fake.members['pg2'].lag = 100
    fake.members['pg3'].lag = 10
    state = pu.fetch_cluster(client(fake))
    assert pu.choose_candidate(state, 1000)[0] == 'pg3'
    fake.members['pg3'].tags = {'nofailover': True}
    state = pu.fetch_cluster(client(fake))
    name, rejected = pu.choose_candidate(state, 1000)
    assert name == 'pg2' and 'nofailover' in rejected['pg3'][0]
    assert pu.choose_candidate(state, 50)[0] is None


def test_choose_candidate_sync_only(make_fake):
    fake = make_fake(synchronous=True)
    fake.members['pg3'].lag = 0
    fake.members['pg2'].lag = 100
    state = pu.fetch_cluster(client(fake))
    assert state.synchronous
    assert pu.choose_candidate(state, 1000)[0] == 'pg2'


def test_quorum_members_may_take_over():
    # synchronous_mode quorum (Patroni >= 4.0): every member of the quorum is a quorum_standby and
    # may be promoted; a replica outside it (nosync tag) may not.
    state = pu.ClusterState({'members': [
        {'name': 'pg1', 'role': 'leader', 'state': 'running', 'timeline': 3},
        {'name': 'pg2', 'role': 'quorum_standby', 'state': 'streaming', 'lag': 30, 'timeline': 3},
        {'name': 'pg3', 'role': 'quorum_standby', 'state': 'streaming', 'lag': 10, 'timeline': 3},
        {'name': 'pg4', 'role': 'replica', 'state': 'streaming', 'lag': 0, 'timeline': 3}]})
    assert state.synchronous
    assert [r['sync'] for r in state.replication()] == [True, True, False]
    assert pu.candidate_problems(state, 'pg2', 1000) == []
    assert pu.choose_candidate(state, 1000)[0] == 'pg3'
    problems = pu.candidate_problems(state, 'pg4', 1000)
    assert problems == ['synchronous mode is on and candidate pg4 is neither a sync_standby nor a quorum_standby']


def test_choose_candidate_exclude():
    # maintenance and rolling_restart exclude the member they take out; the best remaining replica
    # is chosen, and an excluded member is refused by name.
    state = pu.ClusterState({'members': [
        {'name': 'pg1', 'role': 'leader', 'state': 'running', 'timeline': 3},
        {'name': 'pg2', 'role': 'replica', 'state': 'streaming', 'lag': 0, 'timeline': 3},
        {'name': 'pg3', 'role': 'replica', 'state': 'streaming', 'lag': 20, 'timeline': 3}]})
    assert pu.choose_candidate(state, 1000)[0] == 'pg2'
    name, rejected = pu.choose_candidate(state, 1000, exclude=['pg2'])
    assert name == 'pg3' and rejected == {'pg2': ['candidate pg2 is excluded']}
    assert pu.choose_candidate(state, 1000, exclude=['pg2', 'pg3'])[0] is None
    assert pu.candidate_problems(state, 'pg2', 1000, exclude=['pg2']) == ['candidate pg2 is excluded']
    assert pu.candidate_problems(state, 'pg2', 1000, exclude=[]) == []
    assert pu.candidate_problems(state, 'pg2', 1000, exclude=None) == []
    # Excluding the leader changes nothing: it is never a candidate anyway.
    assert pu.choose_candidate(state, 1000, exclude=['pg1'])[0] == 'pg2'


def test_choose_candidate_exclude_sync_standby():
    # In synchronous mode only a sync standby may take over: excluding it leaves no candidate,
    # never the asynchronous replica (Patroni would refuse it).
    state = pu.ClusterState({'members': [
        {'name': 'pg1', 'role': 'leader', 'state': 'running', 'timeline': 3},
        {'name': 'pg2', 'role': 'sync_standby', 'state': 'streaming', 'lag': 0, 'timeline': 3},
        {'name': 'pg3', 'role': 'replica', 'state': 'streaming', 'lag': 0, 'timeline': 3}]})
    name, rejected = pu.choose_candidate(state, 1000, exclude=['pg2'])
    assert name is None
    assert rejected['pg2'] == ['candidate pg2 is excluded']
    assert 'neither a sync_standby nor a quorum_standby' in rejected['pg3'][0]


def test_wait_for_times_out(fake):
    start = time.monotonic()
    done, state, detail, elapsed = pu.wait_for(client(fake), lambda s: (False, 'never'), timeout=0.3, interval=0.05)
    assert not done and detail == 'never' and 0.3 <= elapsed < 1.5 and time.monotonic() - start < 1.5


def test_config_and_patch(fake):
    c = client(fake, username='patroni', password='secret')
    assert c.config()['ttl'] == 30
    new = c.patch_config({'ttl': 40, 'retry_timeout': None})
    assert new['ttl'] == 40 and 'retry_timeout' not in new
    assert c.history() == []


def test_argument_spec():
    spec = pu.patroni_argument_spec()
    assert spec['api_password']['no_log'] is True
    assert spec['api_url']['type'] == 'list'


@pytest.mark.parametrize('status, done', [
    ({'role': 'replica', 'state': 'running', 'timeline': 1}, False),
    ({'role': 'primary', 'state': 'starting', 'timeline': 2}, False),
    ({'role': 'primary', 'state': 'running', 'timeline': 1}, False),   # still the old timeline
    ({'role': 'master', 'state': 'running', 'timeline': 2}, True),
    ({'role': 'primary', 'state': 'running', 'timeline': 2}, True),
    ({}, False),
])
def test_promoted_check_reads_the_candidates_own_answer(status, done):
    ok, detail = pu.promoted_check('pg2', timeline_before=1)(status)
    assert ok is done
    assert 'pg2' in detail
