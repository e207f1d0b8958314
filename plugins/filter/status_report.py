# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status_report filter: the status playbook's report (the JSON it writes) and the lines it
prints, built from what the status flow read (Patroni, PostgreSQL, etcd, HAProxy, PgBouncer and,
with a backup group, pgBackRest's info and the leader's pg_stat_archiver).
It was about 110 lines of Jinja in playbooks/status.yml; Python can be read, unit-tested and
changed without re-deriving Jinja's scoping rules, and prints the same content."""

import datetime
import json

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

from ansible_collections.pgha.cluster.plugins.filter.pgbackrest import pgbackrest_summary

MEMBER_KEYS = ('name', 'role', 'state', 'timeline', 'lag', 'host', 'tags', 'pending_restart')
ARCHIVING_ON = ('on', 'always')
# wal_segment_size as SHOW and current_setting() print it ('16MB'); pg_settings.setting has bytes.
SIZE_UNITS = {'B': 1, 'kB': 1024, 'MB': 1024 ** 2, 'GB': 1024 ** 3}


def _text(value):
    """What Jinja's ~ makes of a value (str(); None is 'None', True is 'True')."""
    return value if isinstance(value, string_types) else str(value)


def _json_list(text):
    """etcdctl's JSON output, or [] when there is none (no etcd group, no answer)."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError as e:
        raise AnsibleFilterError('status_report: etcdctl did not print JSON: %s' % e)
    return value if isinstance(value, list) else [value]


def _replicas(members, senders):
    """Every non-leader member with its lag as Patroni and as the leader's pg_stat_replication
    see it (the larger of the two), replay lag and WAL sender state."""
    result = []
    for m in members:
        if m.get('is_leader'):
            continue
        s = next((x for x in senders if x.get('name') == m.get('name')), {})
        lag = m.get('lag')
        sender_lag = s.get('replay_lag_bytes')
        result.append({
            'name': m.get('name'), 'role': m.get('role'), 'state': m.get('state'), 'timeline': m.get('timeline'),
            'lag_bytes': max(lag if lag is not None else -1, sender_lag if sender_lag is not None else 0),
            'replay_lag_s': s.get('replay_lag_s'),
            'sender_state': s.get('state', 'absent'),
            'sync_state': s.get('sync_state', '-'),
        })
    return result


def _pools(pgbouncer):
    """Per balancer its pools (the admin database left out), or {'error': ...}."""
    pools = {}
    for b, r in (pgbouncer or {}).items():
        if isinstance(r, dict) and 'rows' in r:
            pools[b] = [row for row in r.get('rows') or [] if row.get('database') != 'pgbouncer']
        else:
            pools[b] = {'error': (r or {}).get('msg', 'unreachable') if isinstance(r, dict) else 'unreachable'}
    return pools


def _connection_strings(balancers, balancer_vars, host_address, vip):
    """Through the client address (keepalived_virtual_ip) where there is one, and the libpq way
    (every balancer; libpq picks one that answers with the right role) for sites without."""
    conns = []
    if not balancers:
        return conns
    b0 = balancer_vars.get(balancers[0], {})
    user = b0.get('app_user', 'app')
    port = b0.get('port', 6432)
    hosts = ','.join('%s:%s' % (host_address.get(b, b), port) for b in balancers)
    for db in b0.get('databases') or []:
        route = db.get('route', 'write')
        if vip:
            conns.append({'route': route, 'via': 'client address',
                          'url': 'postgresql://%s@%s:%s/%s' % (user, vip, port, db.get('name'))})
        conns.append({'route': route, 'via': 'libpq multi-host',
                      'url': 'postgresql://%s@%s/%s?target_session_attrs=%s&connect_timeout=2'
                             % (user, hosts, db.get('name'), 'read-write' if route == 'write' else 'prefer-standby')})
    return conns


def _segment_size(value):
    """wal_segment_size in bytes from a number or PostgreSQL's text ('16MB'); None when unknown."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if value > 0 else None
    text = _text(value).strip()
    unit = next((u for u in sorted(SIZE_UNITS, key=len, reverse=True) if text.endswith(u)), '')
    try:
        size = int(text[:len(text) - len(unit)].strip()) * SIZE_UNITS.get(unit, 1)
    except ValueError:
        return None
    return size if size > 0 else None


def _segment_number(wal, segment_size):
    """The segment number of a WAL file name (8 hex digits of timeline, 8 of "log", 8 of "seg"): segments
    per "log" are 4 GiB / wal_segment_size, so 256 of 16 MB but 64 of 64 MB. The timeline is left out."""
    if not wal or not segment_size:
        return None
    # A backup history file (<segment>.<offset>.backup) or a .partial names the segment it belongs
    # to; a timeline history file (00000002.history) names none.
    wal = _text(wal)
    try:
        if len(wal) < 24 or (len(wal) > 24 and wal[24] != '.'):
            raise ValueError(wal)
        wal = wal[:24]
        return int(wal[8:16], 16) * (0x100000000 // segment_size) + int(wal[16:24], 16)
    except ValueError:
        return None


def _timeline(wal):
    """The timeline of a WAL file name whose segment _segment_number could read."""
    return int(_text(wal)[:8], 16)


def _later(a, b):
    """Whether PostgreSQL text time stamp a is after b; by text when either cannot be read with its offset."""
    try:
        ta, tb = datetime.datetime.fromisoformat(_text(a)), datetime.datetime.fromisoformat(_text(b))
        return ta > tb
    except (TypeError, ValueError):
        return _text(a) > _text(b)


def _archiver(row):
    """The leader's pg_stat_archiver row with lag_segments (archivable segments not archived yet) and
    failing (the latest attempt failed)."""
    row = dict(row or {})
    size = _segment_size(row.get('wal_segment_size'))
    current = _segment_number(row.get('current_wal'), size)
    archived = _segment_number(row.get('last_archived_wal'), size)
    # A new leader first archives what its pg_wal kept of older timelines without a .done mark (seen
    # after a switchover: 000000010000000000000002 archived while the leader wrote on timeline 4),
    # so a segment of an older timeline says nothing about how far behind it is: unknown until it
    # reaches the current timeline. The stuck rule below still applies meanwhile.
    row['older_timeline'] = bool(current is not None and archived is not None
                                 and _timeline(row.get('last_archived_wal')) < _timeline(row.get('current_wal')))
    # the segment being written cannot be archived before it is full
    row['lag_segments'] = (max(current - archived - 1, 0)
                           if current is not None and archived is not None and not row['older_timeline'] else None)
    try:
        failed = int(row.get('failed_count') or 0)
    except (TypeError, ValueError):
        failed = 0
    row['failing'] = bool(failed > 0 and (row.get('last_archived_time') is None
                                          or _later(row.get('last_failed_time'), row.get('last_archived_time'))))
    return row


def _number(value):
    """A number from PostgreSQL's answer, or None."""
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _answered(archiver):
    """Whether the leader's pg_stat_archiver row came (it is {} without a leader or when PostgreSQL did not answer)."""
    return any(k not in ('lag_segments', 'failing', 'older_timeline') for k in archiver)


def _backup_section(backup, max_backup_age_hours, max_archive_lag_segments, max_archive_wait_seconds):
    """The report's backup section, or None without a backup group."""
    if not backup:
        return None
    if not isinstance(backup, dict):
        raise AnsibleFilterError('status_report: backup must be a dict (info, info_error, stanza, archiver), got %s'
                                 % type(backup).__name__)
    stanza = backup.get('stanza')
    if not stanza:
        raise AnsibleFilterError('status_report: backup needs the stanza name')
    return {'summary': pgbackrest_summary(backup.get('info') or '', _text(stanza), now=backup.get('now')),
            'info_error': _text(backup.get('info_error') or ''),
            'archiver': _archiver(backup.get('archiver')),
            'thresholds': {'max_backup_age_hours': max_backup_age_hours,
                           'max_archive_lag_segments': max_archive_lag_segments,
                           'max_archive_wait_seconds': max_archive_wait_seconds}}


def _backup_violations(section, host, limits_text):
    """Violations of the repository (readable, a backup, recent enough) and of WAL archiving on the leader."""
    v = []
    summary, archiver = section['summary'], section['archiver']
    if section['info_error']:
        v.append('backup repository: %s' % section['info_error'])
    elif not summary['backups'] and summary['status_code'] in (0, 2):
        v.append('backup repository: stanza %s has no backup' % summary['stanza'])
    elif not summary['ok']:
        v.append('backup repository: %s' % summary['error'])
    newest = summary['newest']
    if newest and newest['age_hours'] > section['thresholds']['max_backup_age_hours']:
        v.append('newest backup %s is %s h old (> %s h)' % (newest['label'], newest['age_hours'], limits_text[2]))
    # without the leader's row (no leader, PostgreSQL unreachable) other violations already say so
    if not _answered(archiver):
        return v
    if archiver.get('archive_mode') not in ARCHIVING_ON:
        v.append('WAL archiving is off on the leader (archive_mode=%s)' % _text(archiver.get('archive_mode')))
    if archiver['failing']:
        v.append('WAL archiving on %s is failing: failed_count %s, last failure %s at %s'
                 % (host, archiver.get('failed_count'), archiver.get('last_failed_wal'), archiver.get('last_failed_time')))
    lag = archiver['lag_segments']
    if lag is not None and lag > section['thresholds']['max_archive_lag_segments']:
        v.append('WAL archiving on %s is %s segments behind (> %s)' % (host, lag, limits_text[3]))
    # A repository host that stopped answering without refusing (frozen, a stalled network) leaves
    # archive-push waiting: nothing fails, so failed_count says nothing. A complete segment waiting
    # while nothing was archived for longer than the limit says it.
    waited = _number(archiver.get('archived_seconds_ago'))
    if (not archiver['failing'] and ((lag is not None and lag >= 1) or archiver['older_timeline'])
            and waited is not None and waited > section['thresholds']['max_archive_wait_seconds']):
        v.append('WAL archiving on %s is stuck: %s and nothing was archived for %d s (> %s s)'
                 % (host, '%s complete segment(s) wait' % lag if lag is not None
                    else 'it was still archiving an older timeline (%s)' % archiver.get('last_archived_wal'),
                    waited, limits_text[4]))
    return v


def _backup_lines(section):
    summary, archiver = section['summary'], section['archiver']
    if section['info_error'] or not summary['backups']:
        lines = ['backup: %s' % (section['info_error'] or summary['error'])]
    else:
        parts = []
        for kind in ('full', 'diff', 'incr'):
            b = summary['last_' + kind]
            # an incremental is named only when there is one, so that sites taking none are not told so
            if b is None and kind == 'incr':
                continue
            parts.append('last %s %s' % (kind, '%s (%s h ago)' % (b['label'], b['age_hours']) if b else 'none'))
        lines = ['backup: ' + ', '.join(parts)]
    if not _answered(archiver):
        lines.append('archive: no answer from the leader')
        return lines
    lag = archiver['lag_segments']
    lines.append('archive: last archived %s at %s, failed_count %s, lag %s%s' % (
        archiver.get('last_archived_wal') or 'none', archiver.get('last_archived_time') or 'never',
        _text(archiver.get('failed_count')),
        'unknown (older timeline)' if archiver['older_timeline'] else 'unknown' if lag is None else '%s segments' % lag,
        ' FAILING' if archiver['failing'] else ''))
    return lines


def _violations(cluster, members, member_host, replicas, postgresql, etcd_health, etcd_members, write_up,
                leader_host, pools, vip, vip_holders, max_lag_bytes, max_lag_seconds, limits_text):
    v = []
    if cluster.get('failed') or ('msg' in cluster and 'members' not in cluster):
        v.append('Patroni REST API: %s' % _text(cluster.get('msg', 'no answer')))
    v.extend('Patroni: %s' % r for r in cluster.get('reasons') or [])
    names = [m.get('name') for m in members]
    v.extend('member %s is missing from the cluster' % n for n in member_host if n not in names)
    for r in replicas:
        if r['lag_bytes'] > max_lag_bytes:
            v.append('replica %s lags %s bytes (> %s)' % (r['name'], r['lag_bytes'], limits_text[0]))
        if r['replay_lag_s'] is not None and r['replay_lag_s'] > max_lag_seconds:
            v.append('replica %s replay lag %s s (> %s s)' % (r['name'], r['replay_lag_s'], limits_text[1]))
        if r['sender_state'] != 'streaming':
            v.append('replica %s is not streaming from the leader (%s)' % (r['name'], r['sender_state']))
    v.extend('PostgreSQL on %s: %s' % (h, p['error']) for h, p in postgresql.items() if isinstance(p, dict) and 'error' in p)
    healthy = len([e for e in etcd_health if isinstance(e, dict) and e.get('health')])
    if etcd_members > 0 and healthy < etcd_members:
        v.append('etcd: %d of %d members healthy' % (healthy, etcd_members))
    for b, up in write_up.items():
        if up != [leader_host]:
            v.append('HAProxy on %s sends writes to %s, leader is %s' % (b, ', '.join(up) or 'nothing', leader_host or 'unknown'))
    v.extend('PgBouncer on %s: %s' % (b, p['error']) for b, p in pools.items() if isinstance(p, dict))
    if vip and len(vip_holders) != 1:
        v.append('client address %s held by %s (exactly one must)' % (vip, ', '.join(vip_holders) or 'no balancer'))
    return v


def status_lines(report, member_host, json_path):
    """The lines the status playbook prints (one per member, HAProxy server and PgBouncer pool)."""
    r = report
    lines = ['cluster: leader %s, timeline %s, paused %s, synchronous_mode %s'
             % (r['leader'] or 'NONE', _text(r['timeline']), _text(r['paused']), _text(r['synchronous_mode']))]
    for m in r['members']:
        p = r['postgresql'].get(member_host.get(m.get('name'), m.get('name')), {})
        rep = next((x for x in r['replicas'] if x['name'] == m.get('name')), {})
        lines.append('  %-6s %-13s %-10s tl=%-3s lag=%s B / %s s  conns %s/%s%s' % (
            m.get('name'), m.get('role'), m.get('state'), m.get('timeline'), rep.get('lag_bytes', 0),
            rep.get('replay_lag_s', 0), p.get('connections', '?'), p.get('max_connections', '?'),
            ' pending_restart' if m.get('pending_restart') else ''))
    thresholds = 'thresholds: lag <= %s B and <= %s s' % (r['thresholds']['max_lag_bytes'], r['thresholds']['max_lag_seconds'])
    if r['backup']:
        thresholds += (', newest backup <= %s h, archive lag <= %s segments, archive wait <= %s s'
                       % (r['thresholds']['max_backup_age_hours'], r['thresholds']['max_archive_lag_segments'],
                          r['thresholds']['max_archive_wait_seconds']))
    lines.append(thresholds)
    lines.append('etcd: ' + (', '.join('%s healthy=%s' % (e.get('endpoint', '?'), e.get('health', False))
                                       for e in r['etcd']['health']) or 'no answer'))
    if r['backup']:
        lines.extend(_backup_lines(r['backup']))
    for b, rows in r['haproxy'].items():
        for row in rows:
            lines.append('haproxy %s %-14s %-10s %-8s sessions %s'
                         % (b, row.get('backend'), row.get('server'), row.get('status'), row.get('scur')))
    for b, pools in r['pgbouncer_pools'].items():
        if isinstance(pools, dict):
            lines.append('pgbouncer %s: %s' % (b, pools['error']))
            continue
        for p in pools:
            lines.append('pgbouncer %s %-8s %-8s cl_active %s cl_waiting %s sv_active %s sv_idle %s maxwait %s'
                         % (b, p.get('database'), p.get('user'), p.get('cl_active'), p.get('cl_waiting'),
                            p.get('sv_active'), p.get('sv_idle'), p.get('maxwait')))
    if r['client_address']['address']:
        holders = ', '.join(r['client_address']['holders']) or 'NO balancer'
        lines.append('client address %s on %s' % (r['client_address']['address'], holders))
    lines.extend('connect (%s, %s): %s' % (c['route'], c['via'], c['url']) for c in r['connection_strings'])
    lines.append('json: %s' % json_path)
    lines.append('RESULT: ' + ('OK' if r['ok'] else 'FAILED: ' + '; '.join(r['violations'])))
    return lines


def status_report(cluster, postgresql=None, etcd=None, haproxy=None, pgbouncer=None, member_host=None,
                  host_address=None, balancers=None, balancer_vars=None, etcd_members=0,
                  max_lag_bytes=10485760, max_lag_seconds=5, time=None, json_path='', backup=None,
                  max_backup_age_hours=48, max_archive_lag_segments=16, max_archive_wait_seconds=300):
    """Return {'report': the JSON document, 'lines': what to print}. See status_report.yml."""
    cluster = cluster if isinstance(cluster, dict) else {}
    postgresql = dict(postgresql or {})
    member_host = dict(member_host or {})
    host_address = dict(host_address or {})
    balancers = list(balancers or [])
    balancer_vars = dict(balancer_vars or {})
    haproxy = dict(haproxy or {})
    etcd = list(etcd or []) if is_sequence(etcd) else []
    # The messages quote the limits as the operator gave them (5, not 5.0).
    limits_text = (_text(max_lag_bytes), _text(max_lag_seconds), _text(max_backup_age_hours), _text(max_archive_lag_segments),
                   _text(max_archive_wait_seconds))
    try:
        max_lag_bytes = int(max_lag_bytes)
        max_lag_seconds = float(max_lag_seconds)
        etcd_members = int(etcd_members)
        max_backup_age_hours = float(max_backup_age_hours)
        max_archive_lag_segments = int(max_archive_lag_segments)
        max_archive_wait_seconds = float(max_archive_wait_seconds)
    except (TypeError, ValueError) as e:
        raise AnsibleFilterError('status_report: thresholds must be numbers: %s' % e)

    members = cluster.get('members') or []
    leader = cluster.get('leader')
    leader_host = member_host.get(leader, '') if leader else ''
    senders = (postgresql.get(leader_host) or {}).get('replication') or [] if leader_host else []
    replicas = _replicas(members, senders)
    etcd_health = _json_list(etcd[0] if len(etcd) > 0 else '')
    etcd_status = _json_list(etcd[1] if len(etcd) > 1 else '')
    pools = _pools(pgbouncer)
    vip = (balancer_vars.get(balancers[0], {}).get('keepalived_virtual_ip') or '') if balancers else ''
    vip_holders = [b for b in balancers if vip and vip in (balancer_vars.get(b, {}).get('addresses') or [])]
    write_up = {}
    for b in balancers:
        write_up[b] = [row.get('server') for row in haproxy.get(b) or []
                       if row.get('backend') == 'postgres_write' and str(row.get('status', '')).startswith('UP')]
    violations = _violations(cluster, members, member_host, replicas, postgresql, etcd_health, etcd_members,
                             write_up, leader_host, pools, vip, vip_holders, max_lag_bytes, max_lag_seconds, limits_text)
    backup_section = _backup_section(backup, max_backup_age_hours, max_archive_lag_segments, max_archive_wait_seconds)
    thresholds = {'max_lag_bytes': max_lag_bytes, 'max_lag_seconds': max_lag_seconds}
    if backup_section:
        violations.extend(_backup_violations(backup_section, leader_host or leader or 'the leader', limits_text))
        thresholds.update(backup_section['thresholds'])
    report = {
        'time': time,
        'thresholds': thresholds,
        'ok': not violations,
        'violations': violations,
        'leader': leader,
        'timeline': cluster.get('timeline'),
        'paused': cluster.get('paused'),
        'members': [dict((k, v) for k, v in m.items() if k in MEMBER_KEYS) for m in members],
        'replicas': replicas,
        'postgresql': postgresql,
        'synchronous_mode': (cluster.get('config') or {}).get('synchronous_mode', False),
        'etcd': {'health': etcd_health,
                 'status': [[e.get('Endpoint', '') if isinstance(e, dict) else '',
                             e.get('Status', {}) if isinstance(e, dict) else {}] for e in etcd_status]},
        'haproxy': haproxy,
        'pgbouncer_pools': pools,
        'client_address': {'address': vip or None, 'holders': vip_holders},
        'connection_strings': _connection_strings(balancers, balancer_vars, host_address, vip),
        'backup': backup_section,
    }
    return {'report': report, 'lines': status_lines(report, member_host, json_path)}


class FilterModule(object):
    def filters(self):
        return {'status_report': status_report}
