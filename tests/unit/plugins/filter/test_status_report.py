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
                       'connection_strings', 'backup']
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
    assert r['backup'] is None


def healthy():
    """A cluster and arguments that give no violation."""
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
    return cluster, args


def test_healthy_cluster_is_ok():
    cluster, args = healthy()
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


# --- the backup section (an inventory with a backup group) -----------------------------------

FULL, DIFF = '20261201-101500F', '20261201-101500F_20261202-101500D'
INCR = '20261201-101500F_20261202-111500I'
# 2026-12-01 10:15:04, 2026-12-02 10:15:03 and 11:15:03 UTC: the backups' ends; NOW is 12:15:03.
FULL_STOP, DIFF_STOP, INCR_STOP = 1796120104, 1796206503, 1796210103
NOW = 1796213703
ARCHIVER = {'archived_count': 120, 'last_archived_wal': '0000000400000000000000A0',
            'last_archived_time': '2026-12-02 12:14:00.123456+00', 'failed_count': 0, 'last_failed_wal': None,
            'last_failed_time': None, 'current_wal': '0000000400000000000000A1', 'wal_segment_size': 16777216,
            'archive_mode': 'on', 'archived_seconds_ago': 12.5}


def pgbackrest_info(*backups, **status):
    """pgbackrest info's JSON for stanza pgha with (label, type, stop) backups."""
    return json.dumps([{
        'name': 'pgha', 'status': dict({'code': 0, 'message': 'ok', 'lock': {'backup': {'held': False}}}, **status),
        'archive': [{'id': '15-1', 'min': '000000010000000000000003', 'max': '0000000400000000000000A0'}],
        'backup': [{'label': label, 'type': kind, 'timestamp': {'start': stop - 3, 'stop': stop},
                    'info': {'size': 100, 'delta': 10, 'repository': {'size': 50, 'delta': 5}},
                    'lsn': {'start': '0/3000028', 'stop': '0/3000100'}, 'error': False} for label, kind, stop in backups],
        'repo': [{'key': 1, 'status': {'code': 0, 'message': 'ok'}}]}])


def with_backup(info=None, info_error='', archiver=None, **changes):
    """The healthy cluster's arguments with a backup section (a full and a differential backup by default)."""
    cluster, args = healthy()
    args['backup'] = {'info': pgbackrest_info((FULL, 'full', FULL_STOP), (DIFF, 'diff', DIFF_STOP)) if info is None else info,
                      'info_error': info_error, 'stanza': 'pgha',
                      'archiver': dict(ARCHIVER, **(archiver or {})), 'now': NOW}
    args.update(changes)
    return cluster, args


def backup_violations(**kwargs):
    cluster, args = with_backup(**kwargs)
    return status_report(cluster, **args)['report']['violations']


def test_backup_section_of_a_healthy_cluster():
    cluster, args = with_backup()
    out = status_report(cluster, **args)
    r = out['report']
    assert r['ok'] and r['violations'] == []
    assert out['lines'][4:8] == [
        'thresholds: lag <= 10485760 B and <= 5.0 s, newest backup <= 48.0 h, archive lag <= 16 segments, archive wait <= 300.0 s',
        'etcd: a healthy=True, b healthy=True, c healthy=True',
        'backup: last full %s (26.0 h ago), last diff %s (2.0 h ago)' % (FULL, DIFF),
        'archive: last archived 0000000400000000000000A0 at 2026-12-02 12:14:00.123456+00, failed_count 0, '
        'lag 0 segments']
    assert out['lines'][8].startswith('haproxy ')
    assert r['thresholds'] == {'max_lag_bytes': 10485760, 'max_lag_seconds': 5.0, 'max_backup_age_hours': 48.0,
                               'max_archive_lag_segments': 16, 'max_archive_wait_seconds': 300.0}
    assert list(r['backup']) == ['summary', 'info_error', 'archiver', 'thresholds']
    assert r['backup']['summary']['ok'] and r['backup']['summary']['newest']['label'] == DIFF
    assert r['backup']['archiver'] == dict(ARCHIVER, lag_segments=0, failing=False, older_timeline=False)
    assert r['backup']['thresholds'] == {'max_backup_age_hours': 48.0, 'max_archive_lag_segments': 16,
                                         'max_archive_wait_seconds': 300.0}


def test_no_backup_group_changes_nothing():
    cluster, args = healthy()
    plain = status_report(cluster, **args)
    for backup in (None, {}):
        out = status_report(cluster, **dict(args, backup=backup, max_backup_age_hours=1, max_archive_lag_segments=0))
        assert out == plain
    assert plain['report']['backup'] is None
    assert plain['report']['thresholds'] == {'max_lag_bytes': 10485760, 'max_lag_seconds': 5.0}
    assert not [line for line in plain['lines'] if line.startswith(('backup', 'archive'))]


def test_last_incremental_is_named_when_there_is_one():
    cluster, args = with_backup(info=pgbackrest_info((FULL, 'full', FULL_STOP), (INCR, 'incr', INCR_STOP)))
    assert ('backup: last full %s (26.0 h ago), last diff none, last incr %s (1.0 h ago)' % (FULL, INCR)
            in status_report(cluster, **args)['lines'])


def test_repository_unreadable():
    error = 'ERROR: [104]: unable to find a valid repository: repo1: [HostConnectError] timeout'
    cluster, args = with_backup(info='', info_error=error)
    out = status_report(cluster, **args)
    assert out['report']['violations'] == ['backup repository: ' + error]
    assert 'backup: ' + error in out['lines']
    text = pgbackrest_info(code=99, message='other')
    assert backup_violations(info=text) == [
        'backup repository: pgBackRest info on the repository failed: other; fix what it names (repository path, host, '
        'permissions or cipher passphrase) and run pgbackrest --stanza=pgha info again']
    assert backup_violations(info='{not json')[0].startswith('backup repository: pgBackRest info did not print JSON (')
    assert backup_violations(info='[]') == [
        'backup repository: pgBackRest info does not list stanza pgha (it lists none): check the stanza name and that '
        'pgbackrest.conf on the repository host has it']
    assert backup_violations(info=pgbackrest_info(code=1, message='missing stanza path'))[0].startswith(
        'backup repository: stanza pgha does not exist in the repository (pgBackRest: missing stanza path)')


def test_no_backup():
    cluster, args = with_backup(info=pgbackrest_info(code=2, message='no valid backups'))
    out = status_report(cluster, **args)
    assert out['report']['violations'] == ['backup repository: stanza pgha has no backup']
    assert 'backup: stanza pgha has no backup yet: run playbooks/backup.yml' in out['lines']
    assert backup_violations(info=pgbackrest_info()) == ['backup repository: stanza pgha has no backup']


def test_newest_backup_too_old():
    assert backup_violations(max_backup_age_hours=2) == []
    assert backup_violations(max_backup_age_hours='1.5') == ['newest backup %s is 2.0 h old (> 1.5 h)' % DIFF]
    assert backup_violations(info=pgbackrest_info((FULL, 'full', FULL_STOP))) == []
    assert backup_violations(info=pgbackrest_info((FULL, 'full', FULL_STOP)), max_backup_age_hours=24) == [
        'newest backup %s is 26.0 h old (> 24 h)' % FULL]


@pytest.mark.parametrize('mode, violation', [
    ('off', ['WAL archiving is off on the leader (archive_mode=off)']),
    (None, ['WAL archiving is off on the leader (archive_mode=None)']),
    ('always', []),
])
def test_archive_mode(mode, violation):
    assert backup_violations(archiver={'archive_mode': mode}) == violation


def test_archiving_failing():
    failed = {'failed_count': 3, 'last_failed_wal': '0000000400000000000000A1',
              'last_failed_time': '2026-12-02 12:15:00.5+00'}
    cluster, args = with_backup(archiver=failed)
    out = status_report(cluster, **args)
    assert out['report']['violations'] == ['WAL archiving on pg1 is failing: failed_count 3, last failure '
                                           '0000000400000000000000A1 at 2026-12-02 12:15:00.5+00']
    assert out['lines'][7] == ('archive: last archived 0000000400000000000000A0 at 2026-12-02 12:14:00.123456+00, '
                               'failed_count 3, lag 0 segments FAILING')
    assert out['report']['backup']['archiver']['failing'] is True
    # failures before the last success are over; offsets are compared, not the text
    assert backup_violations(archiver=dict(failed, last_failed_time='2026-12-02 12:13:59+00')) == []
    assert backup_violations(archiver=dict(failed, last_failed_time='2026-12-02 13:13:59+01')) == []
    assert backup_violations(archiver=dict(failed, last_failed_time='2026-12-02 13:14:01+01'))[0].startswith(
        'WAL archiving on pg1 is failing: failed_count 3')
    # time stamps that cannot be compared as times (one without an offset) are compared as text
    assert backup_violations(archiver=dict(failed, last_failed_time='2026-12-02 12:13:59')) == []
    assert backup_violations(archiver=dict(failed, failed_count='several')) == []
    # never archived: every failure counts
    assert len(backup_violations(archiver=dict(failed, last_archived_time=None, last_archived_wal=None))) == 1
    assert backup_violations(archiver={'failed_count': 0, 'last_archived_time': None}) == []


def test_archiving_behind():
    cluster, args = with_backup(archiver={'current_wal': '0000000400000000000000B2'})
    out = status_report(cluster, **args)
    assert out['report']['violations'] == ['WAL archiving on pg1 is 17 segments behind (> 16)']
    assert out['lines'][7].endswith('failed_count 0, lag 17 segments')
    assert backup_violations(archiver={'current_wal': '0000000400000000000000B1'}) == []
    assert backup_violations(archiver={'current_wal': '0000000400000000000000B2'}, max_archive_lag_segments='20') == []


@pytest.mark.parametrize('size, last, current, lag', [
    # 16 MB: 256 segments per "log"
    (16777216, '0000000100000000000000A0', '0000000100000000000000A1', 0),
    (16777216, '0000000100000000000000A0', '0000000100000000000000A0', 0),
    (16777216, '0000000100000000000000FE', '000000010000000100000001', 2),
    ('16MB', '0000000100000000000000FF', '000000010000000100000000', 0),
    # the same timeline (the current one): counted
    (16777216, '0000000400000002000000FF', '000000040000000300000005', 5),
    # 64 MB: 64 segments per "log", so ...3F is the last of one
    (67108864, '00000001000000000000003F', '000000010000000100000000', 0),
    (67108864, '00000001000000000000003E', '000000010000000100000002', 3),
    ('64MB', '000000010000000000000010', '000000010000000200000010', 127),
    ('1GB', '000000010000000000000003', '000000010000000100000000', 0),
    # unknown: no lag and no violation
    (16777216, None, '000000010000000100000000', None),
    (16777216, '000000010000000000000003', None, None),
    (None, '000000010000000000000003', '000000010000000100000000', None),
    ('lots', '000000010000000000000003', '000000010000000100000000', None),
    (16777216, 'not-a-wal-file', '000000010000000100000000', None),
    # a backup history file and a partial segment count as their segment; a timeline history file as none
    (16777216, '000000020000000000000009.00000028.backup', '00000002000000000000000A', 0),
    (16777216, '000000020000000000000009.partial', '00000002000000000000000C', 2),
    # an older timeline than the current one: unknown (after a promotion, the new leader archives
    # what it kept of older timelines first)
    (16777216, '0000000300000002000000FF', '000000040000000300000005', None),
    (16777216, '000000010000000000000009.partial', '00000002000000000000000C', None),
    (16777216, '00000002.history', '00000002000000000000000A', None),
    (16777216, '000000020000000000000009x', '00000002000000000000000A', None),
])
def test_archive_lag_segments(size, last, current, lag):
    cluster, args = with_backup(archiver={'wal_segment_size': size, 'last_archived_wal': last, 'current_wal': current},
                                max_archive_lag_segments=1000)
    out = status_report(cluster, **args)
    assert out['report']['backup']['archiver']['lag_segments'] == lag
    assert out['report']['violations'] == []
    older = last is not None and current is not None and lag is None and last[:8] < current[:8]
    assert out['lines'][7].endswith('lag unknown (older timeline)' if older
                                    else 'lag unknown' if lag is None else 'lag %s segments' % lag)


def test_archiving_an_older_timeline_after_a_switchover():
    # seen in Molecule: the new leader (timeline 4) archived leftovers of timeline 1 first
    catching_up = {'last_archived_wal': '000000010000000000000002', 'current_wal': '000000040000000000000014',
                   'archived_seconds_ago': 18.8}
    cluster, args = with_backup(archiver=catching_up)
    out = status_report(cluster, **args)
    assert out['report']['violations'] == []
    assert out['report']['backup']['archiver']['older_timeline'] is True
    assert out['report']['backup']['archiver']['lag_segments'] is None
    assert out['lines'][7].endswith('lag unknown (older timeline)')
    # but not for ever: nothing archived for longer than the wait is stuck
    assert backup_violations(archiver=dict(catching_up, archived_seconds_ago=301)) == [
        'WAL archiving on pg1 is stuck: it was still archiving an older timeline (000000010000000000000002) and '
        'nothing was archived for 301 s (> 300 s)']
    # on the current timeline the lag counts again
    assert backup_violations(archiver=dict(catching_up, last_archived_wal='000000040000000000000002')) == [
        'WAL archiving on pg1 is 17 segments behind (> 16)']


def test_no_archiver_row():
    cluster, args = with_backup()
    args['backup']['archiver'] = {}
    out = status_report(cluster, **args)
    assert out['report']['violations'] == []
    assert out['lines'][7] == 'archive: no answer from the leader'
    assert out['report']['backup']['archiver'] == {'lag_segments': None, 'failing': False, 'older_timeline': False}


def test_backup_violations_come_last_and_name_the_leader_host():
    args = with_args(backup={'info': '', 'info_error': 'timeout', 'stanza': 'pgha', 'now': NOW,
                             'archiver': dict(ARCHIVER, archive_mode='off', current_wal='0000000400000000000000C0')},
                     member_host={'pg1': 'db1', 'pg2': 'pg2', 'pg3': 'pg3'})
    v = status_report(CLUSTER, **args)['report']['violations']
    assert v[-3:] == ['backup repository: timeout', 'WAL archiving is off on the leader (archive_mode=off)',
                      'WAL archiving on db1 is 31 segments behind (> 16)']


def test_backup_bad_input_refused():
    with pytest.raises(AnsibleFilterError, match='backup must be a dict'):
        status_report(CLUSTER, backup=['pgha'])
    with pytest.raises(AnsibleFilterError, match='backup needs the stanza name'):
        status_report(CLUSTER, backup={'info': ''})
    with pytest.raises(AnsibleFilterError, match='thresholds must be numbers'):
        status_report(CLUSTER, max_backup_age_hours='two days')
    with pytest.raises(AnsibleFilterError, match='thresholds must be numbers'):
        status_report(CLUSTER, max_archive_lag_segments=None)


@pytest.mark.parametrize('archiver, stuck', [
    # a complete segment waits and nothing was archived for 10 minutes: a repository that hangs
    ({'current_wal': '0000000400000000000000A3', 'archived_seconds_ago': 600.0}, True),
    # the same wait with nothing complete to archive (an idle cluster): fine
    ({'current_wal': '0000000400000000000000A1', 'archived_seconds_ago': 600.0}, False),
    # a segment waits, but the last archive was 12 s ago: it is on its way
    ({'current_wal': '0000000400000000000000A3', 'archived_seconds_ago': 12.0}, False),
    # failing already says it: not reported twice
    ({'current_wal': '0000000400000000000000A3', 'archived_seconds_ago': 600.0, 'failed_count': 3,
      'last_failed_time': '2026-12-02 12:20:00+00'}, False),
    # nothing archived yet, or no answer: no verdict
    ({'current_wal': '0000000400000000000000A3', 'archived_seconds_ago': None}, False),
    ({'current_wal': '0000000400000000000000A3', 'archived_seconds_ago': 'soon'}, False),
])
def test_archive_stuck(archiver, stuck):
    v = backup_violations(archiver=archiver)
    found = [x for x in v if 'is stuck' in x]
    assert bool(found) == stuck
    if stuck:
        assert found == ['WAL archiving on pg1 is stuck: 2 complete segment(s) wait and nothing was archived for 600 s (> 300 s)']


def test_archive_stuck_threshold_as_given():
    v = backup_violations(archiver={'current_wal': '0000000400000000000000A3', 'archived_seconds_ago': 61},
                          max_archive_wait_seconds='60')
    assert v == ['WAL archiving on pg1 is stuck: 2 complete segment(s) wait and nothing was archived for 61 s (> 60 s)']
    with pytest.raises(AnsibleFilterError, match='thresholds must be numbers'):
        backup_violations(max_archive_wait_seconds='five minutes')
