# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The patroni_candidate filter: the one candidate rule applied to patroni_cluster_info's members
(normalised, as the module returns them)."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.filter.patroni_candidate import FilterModule, patroni_candidate
from ansible_collections.pgha.cluster.plugins.module_utils.patroni import ClusterState


def info(*members):
    """What patroni_cluster_info returns: normalised members."""
    return {'members': ClusterState({'members': list(members)}).members}


LEADER = {'name': 'pg1', 'role': 'leader', 'state': 'running', 'timeline': 3}


def replica(name, lag, role='replica', state='streaming', **kw):
    return dict({'name': name, 'role': role, 'state': state, 'lag': lag, 'timeline': 3}, **kw)


def test_least_lag_wins():
    r = patroni_candidate(info(LEADER, replica('pg2', 100), replica('pg3', 10)))
    assert r == {'candidate': 'pg3', 'problems': [], 'rejected': {}}


def test_exclude():
    r = patroni_candidate(info(LEADER, replica('pg2', 100), replica('pg3', 10)), exclude=['pg3'])
    assert r['candidate'] == 'pg2' and r['rejected'] == {'pg3': ['candidate pg3 is excluded']}
    r = patroni_candidate(info(LEADER, replica('pg2', 100), replica('pg3', 10)), exclude=['pg2', 'pg3'])
    assert r['candidate'] is None
    assert r['problems'] == ['candidate pg2 is excluded', 'candidate pg3 is excluded']


def test_sync_standby_first_and_nofailover():
    members = info(LEADER, replica('pg2', 100, role='sync_standby'), replica('pg3', 0),
                   replica('pg4', 0, role='sync_standby', tags={'nofailover': True}))
    r = patroni_candidate(members)
    assert r['candidate'] == 'pg2'
    assert 'nofailover' in r['rejected']['pg4'][0]
    assert patroni_candidate(members, synchronous=False)['candidate'] == 'pg3'


def test_down_and_unknown_lag_are_refused():
    r = patroni_candidate(info(LEADER, replica('pg2', None, state='stopped'), replica('pg3', 'unknown')))
    assert r['candidate'] is None
    assert 'candidate pg2 is stopped, not running/streaming' in r['rejected']['pg2']
    assert "candidate pg3 has unknown lag ('unknown')" in r['rejected']['pg3']


def test_no_leader_failover():
    # A failover runs when the leader is gone: the replicas are still judged.
    r = patroni_candidate(info(replica('pg2', 5), replica('pg3', 0)))
    assert r['candidate'] == 'pg3'


def test_max_lag_bytes():
    members = info(LEADER, replica('pg2', 4096))
    assert patroni_candidate(members)['candidate'] == 'pg2'
    assert patroni_candidate(members, max_lag_bytes='')['candidate'] == 'pg2'
    r = patroni_candidate(members, max_lag_bytes=100)
    assert r['candidate'] is None and 'more than max_lag_bytes=100' in r['problems'][0]


def test_given_candidate_is_checked():
    members = info(LEADER, replica('pg2', 0), replica('pg3', 0))
    assert patroni_candidate(members, candidate='pg2') == {'candidate': 'pg2', 'problems': [], 'rejected': {}}
    r = patroni_candidate(members, candidate='pg2', exclude=['pg2'])
    assert r['candidate'] is None and r['problems'] == ['candidate pg2 is excluded']
    r = patroni_candidate(members, candidate='pg9')
    assert r['candidate'] is None and 'valid members: pg1, pg2, pg3' in r['problems'][0]


def test_no_replicas():
    assert patroni_candidate(info(LEADER))['problems'] == ['the cluster has no replicas']


def test_members_list_accepted_and_bad_input_refused():
    assert patroni_candidate(info(LEADER, replica('pg2', 0))['members'])['candidate'] == 'pg2'
    with pytest.raises(AnsibleFilterError, match='patroni_cluster_info'):
        patroni_candidate('pg2')
    with pytest.raises(AnsibleFilterError, match='max_lag_bytes'):
        patroni_candidate(info(LEADER), max_lag_bytes='lots')


def test_registered():
    assert FilterModule().filters()['patroni_candidate'] is patroni_candidate
