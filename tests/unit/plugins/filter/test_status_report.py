# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status_report filter. The expected lines and report were produced by the Jinja that
playbooks/status.yml carried before the filter, from the same inputs: the filter prints the same."""

import copy
import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.filter.status_report import FilterModule, status_report

CLUSTER = {
    'leader': 'pg1', 'timeline': 4, 'paused': False, 'reasons': ['replica pg3 lags'],
    'config': {'synchronous_mode': 'quorum'},
    'members': [
        {'name': 'pg1', 'role': 'leader', 'state': 'running', 'timeline': 4, 'lag': 0, 'host': '10.0.0.11', 'tags': {},
         'pending_restart': False, 'is_leader': True, 'api_url': 'x'},
        {'name': 'pg2', 'role': 'quorum_standby', 'state': 'streaming', 'timeline': 4, 'lag': 0, 'host': '10.0.0.12',
         'tags': {'nosync': False}, 'pending_restart': True, 'is_leader': False},
        {'name': 'pg3', 'role': 'replica', 'state': 'streaming', 'timeline': 4, 'lag': 20000000, 'host': '10.0.0.13',
         'tags': {}, 'pending_restart': False, 'is_leader': False}]}
POSTGRESQL = {
    'pg1': {'in_recovery': False, 'connections': 5, 'max_connections': 100, 'replication': [
        {'name': 'pg2', 'client': '10.0.0.12', 'state': 'streaming', 'sync_state': 'quorum', 'replay_lag_bytes': 0,
         'write_lag_s': 0.0, 'flush_lag_s': 0.0, 'replay_lag_s': 0.001},
        {'name': 'pg3', 'client': '10.0.0.13', 'state': 'catchup', 'sync_state': 'async', 'replay_lag_bytes': 30000000,
         'write_lag_s': 0.0, 'flush_lag_s': 0.0, 'replay_lag_s': 7.5}]},
    'pg2': {'in_recovery': True, 'connections': 2, 'max_connections': 100, 'replication': []},
    'pg3': {'error': 'unreachable'}}
ETCD = [json.dumps([{'endpoint': 'https://10.0.0.11:2379', 'health': True},
                    {'endpoint': 'https://10.0.0.12:2379', 'health': False}]),
        json.dumps([{'Endpoint': 'https://10.0.0.11:2379', 'Status': {'leader': 1}}])]
HAPROXY = {'lb1': [{'backend': 'postgres_write', 'server': 'pg1', 'status': 'UP', 'scur': 3, 'check': 'L7OK'},
                   {'backend': 'postgres_write', 'server': 'pg2', 'status': 'DOWN', 'scur': 0}],
           'lb2': [{'backend': 'postgres_write', 'server': 'pg2', 'status': 'UP 1/2', 'scur': 0}]}
PGBOUNCER = {'lb1': {'rows': [{'database': 'app', 'user': 'app', 'cl_active': 1, 'cl_waiting': 0, 'sv_active': 1,
                               'sv_idle': 2, 'maxwait': 0},
                              {'database': 'pgbouncer', 'user': 'pgbouncer'}]},
             'lb2': {'failed': True, 'msg': 'connection refused'}}
DATABASES = [{'name': 'app', 'route': 'write'}, {'name': 'app_ro', 'route': 'read'}]
BALANCER_VARS = {
    'lb1': {'keepalived_virtual_ip': '10.0.0.20', 'addresses': ['10.0.0.21', '10.0.0.20'], 'app_user': 'app', 'port': 6432,
            'databases': DATABASES},
    'lb2': {'keepalived_virtual_ip': '10.0.0.20', 'addresses': ['10.0.0.22', '10.0.0.20'], 'app_user': 'app', 'port': 6432,
            'databases': DATABASES}}
ARGS = dict(postgresql=POSTGRESQL, etcd=ETCD, haproxy=HAPROXY, pgbouncer=PGBOUNCER,
            member_host={'pg1': 'pg1', 'pg2': 'pg2', 'pg3': 'pg3', 'pg4': 'pg4'},
            host_address={'pg1': '10.0.0.11', 'lb1': '10.0.0.21', 'lb2': '10.0.0.22'},
            balancers=['lb1', 'lb2'], balancer_vars=BALANCER_VARS, etcd_members=3,
            max_lag_bytes=10485760, max_lag_seconds=5, time='T', json_path='/tmp/x.json')


def with_args(**changes):
    """ARGS with some arguments replaced."""
    args = copy.deepcopy(ARGS)
    args.update(changes)
    return args


EXPECTED_LINES = [
    'cluster: leader pg1, timeline 4, paused False, synchronous_mode quorum',
    '  pg1    leader        running    tl=4   lag=0 B / 0 s  conns 5/100',
    '  pg2    quorum_standby streaming  tl=4   lag=0 B / 0.001 s  conns 2/100 pending_restart',
    '  pg3    replica       streaming  tl=4   lag=30000000 B / 7.5 s  conns ?/?',
    'thresholds: lag <= 10485760 B and <= 5.0 s',
    'etcd: https://10.0.0.11:2379 healthy=True, https://10.0.0.12:2379 healthy=False',
    'haproxy lb1 postgres_write pg1        UP       sessions 3',
    'haproxy lb1 postgres_write pg2        DOWN     sessions 0',
    'haproxy lb2 postgres_write pg2        UP 1/2   sessions 0',
    'pgbouncer lb1 app      app      cl_active 1 cl_waiting 0 sv_active 1 sv_idle 2 maxwait 0',
    'pgbouncer lb2: connection refused',
    'client address 10.0.0.20 on lb1, lb2',
    'connect (write, client address): postgresql://app@10.0.0.20:6432/app',
    'connect (write, libpq multi-host): postgresql://app@10.0.0.21:6432,10.0.0.22:6432/app'
    '?target_session_attrs=read-write&connect_timeout=2',
    'connect (read, client address): postgresql://app@10.0.0.20:6432/app_ro',
    'connect (read, libpq multi-host): postgresql://app@10.0.0.21:6432,10.0.0.22:6432/app_ro'
    '?target_session_attrs=prefer-standby&connect_timeout=2',
    'json: /tmp/x.json',
]
EXPECTED_VIOLATIONS = [
    'Patroni: replica pg3 lags',
    'member pg4 is missing from the cluster',
    'replica pg3 lags 30000000 bytes (> 10485760)',
    'replica pg3 replay lag 7.5 s (> 5 s)',
    'replica pg3 is not streaming from the leader (catchup)',
    'PostgreSQL on pg3: unreachable',
    'etcd: 1 of 3 members healthy',
    'HAProxy on lb2 sends writes to pg2, leader is pg1',
    'PgBouncer on lb2: connection refused',
    'client address 10.0.0.20 held by lb1, lb2 (exactly one must)',
]


def test_degraded_cluster_lines_and_violations():
    out = status_report(CLUSTER, **ARGS)
    assert out['lines'] == EXPECTED_LINES + ['RESULT: FAILED: ' + '; '.join(EXPECTED_VIOLATIONS)]
    r = out['report']
    assert r['violations'] == EXPECTED_VIOLATIONS and r['ok'] is False
    assert list(r) == ['time', 'thresholds', 'ok', 'violations', 'leader', 'timeline', 'paused', 'members', 'replicas',
                       'postgresql', 'synchronous_mode', 'etcd', 'haproxy', 'pgbouncer_pools', 'client_address',
                       'connection_strings']
    assert r['thresholds'] == {'max_lag_bytes': 10485760, 'max_lag_seconds': 5.0}
    # Members keep only the documented keys (no is_leader, no api_url).
    assert r['members'][0] == {'name': 'pg1', 'role': 'leader', 'state': 'running', 'timeline': 4, 'lag': 0,
                               'host': '10.0.0.11', 'tags': {}, 'pending_restart': False}
    assert r['replicas'] == [
        {'name': 'pg2', 'role': 'quorum_standby', 'state': 'streaming', 'timeline': 4, 'lag_bytes': 0,
         'replay_lag_s': 0.001, 'sender_state': 'streaming', 'sync_state': 'quorum'},
        {'name': 'pg3', 'role': 'replica', 'state': 'streaming', 'timeline': 4, 'lag_bytes': 30000000,
         'replay_lag_s': 7.5, 'sender_state': 'catchup', 'sync_state': 'async'}]
    assert r['etcd']['status'] == [['https://10.0.0.11:2379', {'leader': 1}]]
    assert r['pgbouncer_pools']['lb1'] == [PGBOUNCER['lb1']['rows'][0]]
    assert r['client_address'] == {'address': '10.0.0.20', 'holders': ['lb1', 'lb2']}


def test_healthy_cluster_is_ok():
    cluster = copy.deepcopy(CLUSTER)
    cluster['reasons'] = []
    cluster['members'][2]['lag'] = 0
    pg = copy.deepcopy(POSTGRESQL)
    pg['pg1']['replication'][1].update(state='streaming', replay_lag_bytes=0, replay_lag_s=0.0)
    pg['pg3'] = {'in_recovery': True, 'connections': 1, 'max_connections': 100, 'replication': []}
    etcd = [json.dumps([{'endpoint': e, 'health': True} for e in ('a', 'b', 'c')]), '']
    bv = copy.deepcopy(BALANCER_VARS)
    bv['lb2']['addresses'] = ['10.0.0.22']
    args = with_args(postgresql=pg, etcd=etcd, member_host={'pg1': 'pg1', 'pg2': 'pg2', 'pg3': 'pg3'},
                     haproxy={'lb1': HAPROXY['lb1'], 'lb2': HAPROXY['lb1']},
                     pgbouncer={'lb1': PGBOUNCER['lb1'], 'lb2': PGBOUNCER['lb1']}, balancer_vars=bv)
    out = status_report(cluster, **args)
    assert out['report']['ok'] and out['report']['violations'] == []
    assert out['lines'][-1] == 'RESULT: OK'
    assert 'client address 10.0.0.20 on lb1' in out['lines']


def test_patroni_unreachable_no_balancers_no_etcd_answer():
    out = status_report({'failed': True, 'msg': 'cannot reach any member'},
                        postgresql={'pg1': {'error': 'unreachable'}}, etcd=['', ''], member_host={'pg1': 'pg1'},
                        etcd_members=3, max_lag_seconds='2.5', json_path='/tmp/s.json')
    assert out['lines'] == [
        'cluster: leader NONE, timeline None, paused None, synchronous_mode False',
        'thresholds: lag <= 10485760 B and <= 2.5 s',
        'etcd: no answer',
        'json: /tmp/s.json',
        'RESULT: FAILED: Patroni REST API: cannot reach any member; member pg1 is missing from the cluster; '
        'PostgreSQL on pg1: unreachable; etcd: 0 of 3 members healthy']
    assert out['report']['connection_strings'] == [] and out['report']['client_address'] == {'address': None, 'holders': []}


def test_no_client_address_gives_libpq_strings_only():
    bv = {'lb1': dict(BALANCER_VARS['lb1'], keepalived_virtual_ip='')}
    out = status_report(CLUSTER, **with_args(balancers=['lb1'], balancer_vars=bv, haproxy={}, pgbouncer={}))
    assert [c['via'] for c in out['report']['connection_strings']] == ['libpq multi-host', 'libpq multi-host']
    assert not [line for line in out['lines'] if line.startswith('client address')]
    assert 'HAProxy on lb1 sends writes to nothing, leader is pg1' in out['report']['violations']


def test_bad_input_refused():
    with pytest.raises(AnsibleFilterError, match='thresholds must be numbers'):
        status_report(CLUSTER, max_lag_bytes='lots')
    with pytest.raises(AnsibleFilterError, match='did not print JSON'):
        status_report(CLUSTER, etcd=['{not json'])


def test_registered():
    assert FilterModule().filters()['status_report'] is status_report
