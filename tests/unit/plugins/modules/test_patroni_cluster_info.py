# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from ansible_collections.pgha.cluster.plugins.modules import patroni_cluster_info as module
from ansible_collections.pgha.cluster.tests.unit.utils import conn_args, run_module


def test_healthy_cluster(fake):
    r = run_module(module, conn_args(fake))
    assert r['rc'] == 0 and not r['changed']
    assert r['leader'] == 'pg1' and r['healthy'] and r['reasons'] == []
    assert r['timeline'] == 1 and r['paused'] is False and r['scheduled_switchover'] is None
    pg1 = r['members'][0]
    assert pg1['role'] == 'leader' and pg1['role_raw'] == 'leader' and pg1['api_url'].endswith('/patroni')
    assert set(pg1) >= {'name', 'role', 'role_raw', 'state', 'timeline', 'host', 'port', 'api_url', 'lag', 'tags',
                        'pending_restart'}
    expected_state = 'running' if fake.version.startswith('3') else 'streaming'
    assert [x['state'] for x in r['replication']] == [expected_state] * 2


def test_any_single_member_down(fake):
    for name in ('pg1', 'pg2', 'pg3'):
        fake.stop_member(name)
        r = run_module(module, conn_args(fake))
        assert r['rc'] == 0 and r['leader'] == 'pg1', r
        fake._start_member(fake.members[name])


def test_unhealthy_lag_and_pause(fake):
    fake.members['pg3'].lag = 2048
    fake.members['pg2'].pending_restart = True
    fake.paused = True
    r = run_module(module, conn_args(fake, max_lag_bytes=1024, dynamic_config=True))
    assert r['rc'] == 0 and not r['healthy']
    assert r['reasons'] == ['replica pg3 lags 2048 bytes (more than max_lag_bytes=1024)']
    assert r['paused'] is True and r['pending_restart'] == ['pg2'] and r['config']['ttl'] == 30


def test_check_mode_is_read_only(fake):
    r = run_module(module, conn_args(fake), check_mode=True)
    assert r['rc'] == 0 and r['changed'] is False
    assert all(req[1] == 'GET' for req in fake.requests)


def test_all_down_fails_clearly(fake):
    fake.stop()
    r = run_module(module, conn_args(fake))
    assert r['failed'] and 'cannot read the Patroni cluster state: no Patroni member answered' in r['msg']


def test_argument_validation(fake):
    r = run_module(module, conn_args(fake, max_lag_bytes='lots'))
    assert r['failed'] and 'max_lag_bytes' in r['msg']
    r = run_module(module, dict(api_url=fake.urls, api_username='x'))
    assert r['failed'] and 'api_username' in r['msg'] and 'api_password' in r['msg']
    r = run_module(module, conn_args(fake, bogus=1))
    assert r['failed'] and 'bogus' in r['msg']
    r = run_module(module, conn_args(fake, max_lag_bytes=-1))
    assert r['failed'] and 'max_lag_bytes must be 0 or more' in r['msg']


def test_password_is_not_logged(fake):
    r = run_module(module, conn_args(fake, api_password='s3cr3t-value'))
    assert 's3cr3t-value' not in str(r)
