# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Patroni's rules for the dynamic (DCS) configuration, in one place.

The patroni role asserts them at provisioning (through the ``pgha.cluster.patroni_dcs_problems``
filter) and ``patroni_config`` checks them on the merged result before it sends a PATCH: Patroni
itself clamps some values silently (a ttl of 10 becomes 20) and accepts combinations that break
failover (loop_wait + 2 x retry_timeout > ttl lets the leader key expire between two HA cycles),
so the collection refuses them instead.
"""

# Patroni's defaults (docs, "Dynamic Configuration Settings"): a key absent from the DCS config
# takes these values, so the timing rule is checked against them.
DEFAULTS = {'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10}

# Top-level keys of Patroni 4's dynamic configuration (and the 3.x names Patroni still reads).
KNOWN_KEYS = frozenset((
    'loop_wait', 'ttl', 'retry_timeout',
    'maximum_lag_on_failover', 'maximum_lag_on_syncnode', 'max_timelines_history',
    'primary_start_timeout', 'primary_stop_timeout', 'master_start_timeout', 'master_stop_timeout',
    'primary_race_backoff',
    'synchronous_mode', 'synchronous_mode_strict', 'synchronous_node_count',
    'failsafe_mode', 'check_timeline', 'postgresql', 'standby_cluster',
    'slots', 'ignore_slots', 'member_slots_ttl', 'pause',
))

# Patroni accepts a boolean or 'quorum' (Patroni 4); the YAML words for booleans too.
SYNCHRONOUS_MODE_WORDS = ('true', 'false', 'on', 'off', 'yes', 'no', 'quorum')


def _integer(config, key, problems):
    """The integer value of ``config[key]`` (its default when absent); None and a problem when it is not one."""
    value = config.get(key, DEFAULTS.get(key))
    if value is None:
        return None
    if isinstance(value, bool):
        problems.append('%s must be an integer, got %r: set a whole number' % (key, value))
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        problems.append('%s must be an integer, got %r: set a whole number' % (key, value))
        return None
    return number


def dcs_config_problems(config, replicas=None, force=False, keys=None):
    """Return the list of Patroni rules that ``config`` (a dynamic configuration) breaks, as messages
    that name the rule, the values and what to do; an empty list when it is acceptable.

    ``replicas``: the number of replicas in the cluster, the upper bound of synchronous_node_count
    (not checked when None).  ``force``: skip only the unknown-keys rule.  ``keys``: the keys checked
    against the known ones (default: those of ``config``); ``patroni_config`` passes the keys of its
    patch, so that a key another tool left in the DCS does not block every later change.
    """
    problems = []
    if not isinstance(config, dict):
        return ['the dynamic configuration must be a dict, got %s' % type(config).__name__]

    if not force:
        unknown = sorted(str(k) for k in (config if keys is None else keys) if k not in KNOWN_KEYS)
        if unknown:
            problems.append('unknown dynamic configuration key(s): %s (known: %s); fix the spelling, '
                            'or set force: true for a key this list does not know yet'
                            % (', '.join(unknown), ', '.join(sorted(KNOWN_KEYS))))

    ttl = _integer(config, 'ttl', problems)
    loop_wait = _integer(config, 'loop_wait', problems)
    retry_timeout = _integer(config, 'retry_timeout', problems)
    if ttl is not None and ttl < 20:
        problems.append('ttl must be >= 20 (Patroni raises a smaller value to 20 without saying so), got '
                        'ttl %d: set ttl to 20 or more' % ttl)
    if loop_wait is not None and loop_wait < 1:
        problems.append('loop_wait must be >= 1, got loop_wait %d: set loop_wait to 1 or more' % loop_wait)
    if retry_timeout is not None and retry_timeout < 3:
        problems.append('retry_timeout must be >= 3, got retry_timeout %d: set retry_timeout to 3 or more'
                        % retry_timeout)
    if None not in (ttl, loop_wait, retry_timeout) and loop_wait + 2 * retry_timeout > ttl:
        problems.append('loop_wait + 2 x retry_timeout must be <= ttl, got loop_wait %d + 2 x retry_timeout %d = %d '
                        '> ttl %d (a leader cut off from the DCS would keep its role after its key expired): '
                        'raise ttl or lower loop_wait/retry_timeout'
                        % (loop_wait, retry_timeout, loop_wait + 2 * retry_timeout, ttl))

    for key in ('maximum_lag_on_failover',):
        if key in config:
            value = _integer(config, key, problems)
            if value is not None and value < 0:
                problems.append('%s must be >= 0 (bytes), got %d: set 0 or more' % (key, value))

    if 'synchronous_node_count' in config:
        count = _integer(config, 'synchronous_node_count', problems)
        if count is not None:
            if count < 1:
                problems.append('synchronous_node_count must be >= 1, got %d: set 1 or more' % count)
            elif replicas is not None and count > replicas:
                problems.append('synchronous_node_count must be <= the number of replicas (%d), got %d: lower it '
                                'or add replicas first' % (replicas, count))

    if 'synchronous_mode' in config:
        mode = config['synchronous_mode']
        if not isinstance(mode, bool) and str(mode).strip().lower() not in SYNCHRONOUS_MODE_WORDS:
            problems.append('synchronous_mode must be true, false, on, off or quorum, got %r' % (mode,))
    return problems
