# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Patroni's dynamic-configuration rules (module_utils/patroni_rules.py) and the filter that
exposes them to the patroni role."""

import pytest

from ansible_collections.pgha.cluster.plugins.filter.patroni_dcs_problems import FilterModule
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rules import dcs_config_problems

GOOD = {'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10, 'maximum_lag_on_failover': 1048576,
        'synchronous_mode': True, 'postgresql': {'parameters': {}}}


def test_good_configs():
    assert dcs_config_problems(GOOD) == []
    assert dcs_config_problems({}) == []                       # Patroni's defaults: 10 + 2 x 10 <= 30
    assert dcs_config_problems({'ttl': '20', 'loop_wait': '2', 'retry_timeout': '9'}) == []
    for mode in (True, False, 'on', 'off', 'true', 'false', 'quorum', 'QUORUM'):
        assert dcs_config_problems(dict(GOOD, synchronous_mode=mode)) == [], mode
    assert dcs_config_problems(dict(GOOD, synchronous_node_count=2), replicas=2) == []
    assert dcs_config_problems(dict(GOOD, synchronous_node_count=5)) == []  # replicas unknown: lower bound only


@pytest.mark.parametrize('config,needles', [
    ({'ttl': 10}, ['ttl must be >= 20', 'ttl 10', 'set ttl to 20 or more',
                   'loop_wait 10 + 2 x retry_timeout 10 = 30 > ttl 10']),
    ({'loop_wait': 30}, ['loop_wait + 2 x retry_timeout must be <= ttl', 'loop_wait 30 + 2 x retry_timeout 10 = 50 > ttl 30',
                         'raise ttl or lower loop_wait/retry_timeout']),
    ({'loop_wait': 0, 'ttl': 30}, ['loop_wait must be >= 1, got loop_wait 0']),
    ({'retry_timeout': 2}, ['retry_timeout must be >= 3, got retry_timeout 2']),
    ({'maximum_lag_on_failover': -1}, ['maximum_lag_on_failover must be >= 0 (bytes), got -1']),
    ({'ttl': 'thirty'}, ["ttl must be an integer, got 'thirty'"]),
    ({'ttl': True}, ['ttl must be an integer, got True']),
    ({'synchronous_node_count': 0}, ['synchronous_node_count must be >= 1, got 0']),
    ({'synchronous_mode': 'sometimes'}, ["synchronous_mode must be true, false, on, off or quorum, got 'sometimes'"]),
    ({'tll': 30}, ['unknown dynamic configuration key(s): tll', 'force: true']),
])
def test_each_rule_named_with_its_values(config, needles):
    problems = dcs_config_problems(config)
    text = '; '.join(problems)
    for needle in needles:
        assert needle in text, (needle, problems)


def test_sync_node_count_upper_bound_and_force():
    problems = dcs_config_problems(dict(GOOD, synchronous_node_count=3), replicas=2)
    assert problems == ['synchronous_node_count must be <= the number of replicas (2), got 3: lower it or add '
                        'replicas first']
    assert dcs_config_problems({'new_key': 1}, force=True) == []
    # force skips only the unknown-keys rule
    assert dcs_config_problems({'new_key': 1, 'ttl': 5}, force=True) != []
    # keys=: only those keys are checked against the known ones
    assert dcs_config_problems({'left_by_someone': 1, 'ttl': 30}, keys=['ttl']) == []
    assert dcs_config_problems('not a dict') == ['the dynamic configuration must be a dict, got str']


def test_filter_is_the_same_function():
    f = FilterModule().filters()['patroni_dcs_problems']
    assert f({'ttl': 10}) == dcs_config_problems({'ttl': 10})
    assert f(GOOD) == []
    assert f(dict(GOOD, synchronous_node_count=2), replicas=1) != []
