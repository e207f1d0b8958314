# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The patroni_candidate filter: which replica takes over, by the collection's one candidate
rule (module_utils.patroni.choose_candidate / candidate_problems), from the members that
pgha.cluster.patroni_cluster_info returned. The failover flow asks it instead of choosing in
Jinja, so a playbook, a module and the unit tests cannot disagree about the choice."""

from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.module_utils.patroni import (
    ClusterState,
    candidate_problems,
    choose_candidate,
)


def _state(cluster):
    """A ClusterState from patroni_cluster_info's result (or its members list). Its members are
    already normalised; the original role and lag words are put back so that normalising again
    changes nothing and the messages quote what Patroni said."""
    if isinstance(cluster, dict):
        members = cluster.get('members')
    else:
        members = cluster
    if not isinstance(members, list):
        raise AnsibleFilterError('patroni_candidate expects the result of pgha.cluster.patroni_cluster_info '
                                 '(or its members list), got %s' % type(cluster).__name__)
    raw = []
    for m in members:
        if not isinstance(m, dict):
            raise AnsibleFilterError('patroni_candidate: a member is not a dict: %r' % (m,))
        r = dict(m)
        r['role'] = m.get('role_raw') or m.get('role')
        r['lag'] = m.get('lag_raw', m.get('lag'))
        raw.append(r)
    return ClusterState({'members': raw})


def _int_or_none(value, name):
    if value is None or value == '':
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError('patroni_candidate: %s must be a whole number of bytes, got %r' % (name, value))


def patroni_candidate(cluster, candidate=None, max_lag_bytes=None, exclude=None, synchronous=None):
    """Return {'candidate': name or None, 'problems': [...], 'rejected': {member: [reasons]}}.

    With ``candidate`` the named member is checked (problems lists why it cannot take over);
    without, the best replica is chosen (rejected lists why the others were not)."""
    state = _state(cluster)
    max_lag = _int_or_none(max_lag_bytes, 'max_lag_bytes')
    exclude = [str(x) for x in (exclude or [])]
    if candidate:
        problems = candidate_problems(state, str(candidate), max_lag, synchronous, exclude)
        return {'candidate': None if problems else str(candidate), 'problems': problems, 'rejected': {}}
    name, rejected = choose_candidate(state, max_lag, synchronous, exclude)
    problems = [] if name else (['; '.join(v) for v in rejected.values()] or ['the cluster has no replicas'])
    return {'candidate': name, 'problems': problems, 'rejected': rejected}


class FilterModule(object):
    def filters(self):
        return {'patroni_candidate': patroni_candidate}
