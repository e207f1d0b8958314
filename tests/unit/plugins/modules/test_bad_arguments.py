# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad arguments for every Patroni module, against the fake Patroni cluster: each is refused with a
message that says what is wrong (and what to do), and nothing but reads reached Patroni."""

import pytest

from ansible_collections.pgha.cluster.plugins.modules import (
    patroni_cluster_info,
    patroni_config,
    patroni_failover,
    patroni_restart,
    patroni_switchover,
)
from ansible_collections.pgha.cluster.tests.unit.utils import conn_args, run_module

CASES = [
    # (id, module, arguments, texts the message must contain)
    ('info-negative-lag', patroni_cluster_info, {'max_lag_bytes': -1}, ['max_lag_bytes must be 0 or more, got -1']),
    ('info-lag-wrong-type', patroni_cluster_info, {'max_lag_bytes': 'lots'}, ['max_lag_bytes', 'int']),
    ('info-unknown-option', patroni_cluster_info, {'bogus': 1}, ['Unsupported parameters', 'bogus']),
    ('info-user-without-password', patroni_cluster_info, {'api_password': None},
     ['parameters are required together: api_username, api_password']),
    ('config-ttl-10', patroni_config, {'settings': {'ttl': 10}}, ['ttl must be >= 20', 'set ttl to 20 or more']),
    ('config-loop-wait-30', patroni_config, {'settings': {'loop_wait': 30}},
     ['loop_wait 30 + 2 x retry_timeout 10 = 50 > ttl 30', 'raise ttl']),
    ('config-unknown-key', patroni_config, {'settings': {'looop_wait': 5}},
     ['unknown dynamic configuration key(s): looop_wait', 'fix the spelling']),
    ('config-settings-wrong-type', patroni_config, {'settings': [1, 2]}, ['settings', 'dict']),
    ('config-bad-state', patroni_config, {'settings': {'ttl': 30}, 'state': 'absent'}, ['state', 'present']),
    ('switchover-unknown-candidate', patroni_switchover, {'candidate': 'pg9'},
     ['cannot switch over to pg9', 'pg1, pg2, pg3']),
    ('switchover-candidate-wrong-type', patroni_switchover, {'candidate': {'name': 'pg2'}},
     ['candidate', 'pg1, pg2, pg3']),
    ('switchover-negative-timeout', patroni_switchover, {'wait_timeout': -5},
     ['wait_timeout must be a positive number of seconds, got -5', 'set it to 1 or more']),
    ('switchover-negative-lag', patroni_switchover, {'max_lag_bytes': -1}, ['max_lag_bytes must be 0 or more, got -1']),
    ('switchover-timeout-wrong-type', patroni_switchover, {'wait_timeout': 'soon'}, ['wait_timeout']),
    ('failover-no-confirm', patroni_failover, {'candidate': 'pg2'}, ['set confirm=true', 'nothing was sent']),
    ('failover-no-candidate', patroni_failover, {'confirm': True}, ['missing required arguments: candidate']),
    ('failover-unknown-candidate', patroni_failover, {'candidate': 'pg9', 'confirm': True},
     ['candidate pg9 is not a member of the cluster; valid members: pg1, pg2, pg3']),
    ('failover-negative-timeout', patroni_failover, {'candidate': 'pg2', 'confirm': True, 'wait_timeout': -1},
     ['wait_timeout must be a positive number of seconds, got -1']),
    ('restart-unknown-member', patroni_restart, {'member': 'pg9'},
     ['member pg9 is not part of the cluster; valid members: pg1, pg2, pg3']),
    ('restart-no-member', patroni_restart, {}, ['pending_only is False', 'member']),
    ('restart-negative-timeout', patroni_restart, {'member': 'pg2', 'wait_timeout': -10},
     ['wait_timeout must be a positive number of seconds, got -10']),
]


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_refused_nothing_sent(fake, case):
    _id, module, extra, needles = case
    args = conn_args(fake, **extra)
    args = {k: v for k, v in args.items() if v is not None}
    config_before = repr(fake.config)
    r = run_module(module, args)
    assert r['failed'], r
    for needle in needles:
        assert needle in r['msg'], (needle, r['msg'])
    assert [q for q in fake.requests if q[1] != 'GET'] == [], fake.requests
    assert repr(fake.config) == config_before


def test_switchover_refused_while_paused(fake):
    fake.paused = True
    r = run_module(patroni_switchover, conn_args(fake, candidate='pg2'))
    assert r['failed'] and 'the cluster is paused' in r['msg'] and 'resume it' in r['msg']
    assert [q for q in fake.requests if q[1] != 'GET'] == []
