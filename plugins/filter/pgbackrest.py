# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgbackrest_summary and pgbackrest_restore_plan filters: what `pgbackrest info --output=json`
(pgBackRest 2.45 and later) says about a stanza's backups, and which backup set and recovery target
a restore request comes to. The backup, restore and status flows ask them instead of picking the
JSON apart in Jinja, so the messages and the choice of set are the same everywhere and unit-tested."""

import datetime
import json
import re
import time

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

TARGET_TYPES = ('latest', 'immediate', 'time', 'lsn', 'name')
BACKUP_TYPES = ('full', 'diff', 'incr')

# A recovery_target_time as PostgreSQL reads it; what follows the seconds (the time zone) is checked
# on its own so that a missing or named zone gets its own message.
TIME_RE = re.compile(r'^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?(.*)$')
OFFSET_RE = re.compile(r'^([+-])(\d{2})(?::?(\d{2}))?$')
LSN_RE = re.compile(r'^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$')
# PostgreSQL's restore point names are shorter than MAXFNAMELEN (64).
MAX_RESTORE_POINT_NAME = 63


def _status_error(code, message, stanza, repos):
    """A sentence for a stanza status other than 0 (codes as src/command/info/info.c sets them)."""
    if code == 1:
        return ('stanza %s does not exist in the repository (pgBackRest: %s): create it with pgbackrest --stanza=%s '
                'stanza-create, or check the stanza name and the repository settings' % (stanza, message, stanza))
    if code == 2:
        return 'stanza %s has no backup yet: run playbooks/backup.yml' % stanza
    if code == 3:
        return ('the repository holds only part of stanza %s (pgBackRest: %s, its archive.info or backup.info is '
                'missing): create it again with pgbackrest --stanza=%s stanza-create' % (stanza, message, stanza))
    # 4 to 6 come with several repositories, 99 with any other error; the stanza then says "other" or
    # "different across repos" and each repository's status says what failed.
    details = '; '.join('repo%s: %s' % (k, m) for k, m in repos) or message or 'status code %s' % code
    return ('pgBackRest info on the repository failed: %s; fix what it names (repository path, host, permissions or '
            'cipher passphrase) and run pgbackrest --stanza=%s info again' % (details, stanza))


def _int(value):
    return None if value is None else int(value)


def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def _backup(entry, now):
    """One backup of pgBackRest's list, flattened; KeyError/TypeError/ValueError when it lacks a
    label, type or time stamp."""
    stamp = entry['timestamp']
    info = entry.get('info') or {}
    repository = info.get('repository') or {}
    lsn = entry.get('lsn') or {}
    stop = int(stamp['stop'])
    return {
        'label': str(entry['label']), 'type': str(entry['type']), 'start': int(stamp['start']), 'stop': stop,
        'stop_iso': _utc(stop).isoformat(), 'age_hours': round((now - stop) / 3600.0, 1),
        'size': _int(info.get('size')), 'delta': _int(info.get('delta')),
        'repo_size': _int(repository.get('size')), 'repo_delta': _int(repository.get('delta')),
        'lsn_start': lsn.get('start'), 'lsn_stop': lsn.get('stop'), 'error': bool(entry.get('error')),
    }


def _stanza(info_text, stanza):
    """(the stanza's dict, '') or (None, what is wrong)."""
    if info_text is None:
        info_text = ''
    if isinstance(info_text, string_types):
        if not info_text.strip():
            return None, ('pgBackRest info printed nothing: run pgbackrest --stanza=%s info on the repository host '
                          'to see why' % stanza)
        try:
            info = json.loads(info_text)
        except ValueError as e:
            return None, ('pgBackRest info did not print JSON (%s): run pgbackrest --stanza=%s info --output=json on '
                          'the repository host to see what it prints' % (e, stanza))
    elif isinstance(info_text, (list, dict)):
        info = info_text
    else:
        raise AnsibleFilterError('pgbackrest: expected the output of pgbackrest info --output=json, got %s'
                                 % type(info_text).__name__)
    if isinstance(info, dict):
        info = [info]
    if not isinstance(info, list):
        return None, ('pgBackRest info printed %s instead of a list of stanzas: check that pgBackRest is 2.45 or later'
                      % type(info).__name__)
    found = next((s for s in info if isinstance(s, dict) and s.get('name') == stanza), None)
    if found is None:
        names = ', '.join(str(s.get('name')) for s in info if isinstance(s, dict)) or 'none'
        return None, ('pgBackRest info does not list stanza %s (it lists %s): check the stanza name and that '
                      'pgbackrest.conf on the repository host has it' % (stanza, names))
    return found, ''


def _check_args(stanza, now):
    if not isinstance(stanza, string_types) or not stanza:
        raise AnsibleFilterError('pgbackrest: the stanza name must be a non-empty string, got %r' % (stanza,))
    if now is None:
        return time.time()
    try:
        return float(now)
    except (TypeError, ValueError):
        raise AnsibleFilterError('pgbackrest: now must be a number of seconds since the epoch, got %r' % (now,))


def pgbackrest_summary(info_text, stanza, now=None):
    """The stanza's status and backups (oldest first) with the newest of each type. See pgbackrest_summary.yml."""
    now = _check_args(stanza, now)
    summary = {'ok': False, 'error': '', 'stanza': stanza, 'status_code': None, 'status_message': '', 'backups': [],
               'last_full': None, 'last_diff': None, 'last_incr': None, 'newest': None, 'oldest': None, 'archive': {}}
    found, error = _stanza(info_text, stanza)
    if found is None:
        summary['error'] = error
        return summary
    status = found.get('status') if isinstance(found.get('status'), dict) else {}
    code = status.get('code')
    summary['status_code'] = code
    summary['status_message'] = status.get('message') or ''
    try:
        backups = [_backup(b, now) for b in found.get('backup') or []]
    except (KeyError, TypeError, ValueError) as e:
        summary['error'] = ('pgBackRest info lists a backup of stanza %s without label, type or time stamps (%s): '
                            'check that pgBackRest is 2.45 or later' % (stanza, e))
        return summary
    # pgBackRest lists them oldest first; with several repositories by start time, so sort by end
    # (stable: equal ends keep pgBackRest's order).
    backups.sort(key=lambda b: b['stop'])
    summary['backups'] = backups
    for kind in BACKUP_TYPES:
        summary['last_' + kind] = next((b for b in reversed(backups) if b['type'] == kind), None)
    summary['newest'] = backups[-1] if backups else None
    summary['oldest'] = backups[0] if backups else None
    archives = [a for a in found.get('archive') or [] if isinstance(a, dict)]
    if archives:
        summary['archive'] = {'min': archives[-1].get('min'), 'max': archives[-1].get('max')}
    if code != 0:
        repos = [(r.get('key'), (r.get('status') or {}).get('message')) for r in found.get('repo') or []
                 if isinstance(r, dict) and (r.get('status') or {}).get('code') not in (0, None)]
        summary['error'] = _status_error(code, summary['status_message'], stanza, repos)
    elif not backups:
        summary['error'] = 'stanza %s has no backup yet: run playbooks/backup.yml' % stanza
    else:
        summary['ok'] = True
    return summary


def _parse_time(text):
    """(aware datetime, normalised text, '') or (None, text, what is wrong) for a recovery target time."""
    example = "e.g. '2026-12-01 10:15:00+00'"
    m = TIME_RE.match(text)
    # PostgreSQL keeps microseconds; more digits would be rounded away without a word.
    if not m or len(m.group(7) or '') > 7:
        return None, text, ('recovery target time %r is not of the form YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM]: give it '
                            'so, %s' % (text, example))
    zone = m.group(8).strip()
    if not zone:
        return None, text, ('recovery target time %r has no UTC offset, and PostgreSQL would read it in the server\'s '
                            'time zone: give the offset, %s' % (text, example))
    offset = OFFSET_RE.match(zone)
    if zone != 'Z' and not offset:
        return None, text, ('recovery target time %r ends in %r, which is not a UTC offset: give one like +00, +0100 '
                            'or -05:30, %s' % (text, zone, example))
    sign, hours, minutes = offset.groups() if offset else ('+', '00', None)
    # PostgreSQL's own limit for an offset is 15:59:59.
    if int(hours) > 15 or int(minutes or 0) > 59:
        return None, text, 'recovery target time %r has an impossible UTC offset %s: give one from -15:59 to +15:59' % (text, zone)
    delta = datetime.timedelta(hours=int(hours), minutes=int(minutes or 0)) * (-1 if sign == '-' else 1)
    fraction = m.group(7) or ''
    try:
        moment = datetime.datetime(*[int(m.group(i)) for i in range(1, 7)],
                                   microsecond=int(fraction[1:].ljust(6, '0')) if fraction else 0,
                                   tzinfo=datetime.timezone(delta))
    except ValueError as e:
        return None, text, 'recovery target time %r is not a valid date and time (%s): %s' % (text, e, example)
    # 'Z' is written as +00: PostgreSQL reads both, and the offset form is the one the messages suggest.
    normalised = '%s %s%s%s' % (text[:10], text[11:19], fraction, '+00' if zone == 'Z' else zone)
    return moment, normalised, ''


def _lsn(text):
    high, low = text.split('/')
    return int(high, 16) << 32 | int(low, 16)


def _at(epoch):
    return _utc(epoch).strftime('%Y-%m-%d %H:%M:%S+00')


def _time_plan(plan, backups, target, now, given):
    """Check a time target and pick the newest set that ended at or before it."""
    moment, plan['target_text'], problem = _parse_time(target)
    if problem:
        return [problem]
    epoch = plan['target_epoch'] = moment.timestamp()
    if epoch > now:
        return ['recovery target time %s is in the future; the newest point the archive can reach is the last '
                'archived WAL: give a past time, or the restore type latest to replay all of it' % plan['target_text']]
    if not backups:
        return []
    oldest = backups[0]
    if epoch < oldest['stop']:
        return ['recovery target time %s lies before the end of the oldest backup %s (%s, UTC); nothing before it can '
                'be restored: give a time at or after it' % (plan['target_text'], oldest['label'], _at(oldest['stop']))]
    if given:
        chosen = next(b for b in backups if b['label'] == given)
        if chosen['stop'] > epoch:
            return ['backup set %s ended at %s, after the recovery target time %s, and recovery cannot stop before '
                    'the end of the backup it starts from: give an older set, or no backup_set to have one chosen'
                    % (given, _at(chosen['stop']), plan['target_text'])]
        return []
    plan['backup_set'] = [b for b in backups if b['stop'] <= epoch][-1]['label']
    return []


def _lsn_plan(plan, backups, target, given, stanza):
    """Check an LSN target and pick the newest set whose end LSN is at or before it."""
    if not LSN_RE.match(target):
        return ['recovery target LSN %r is not of the form X/X with 1 to 8 hex digits on each side (as '
                'pg_current_wal_lsn() prints it, e.g. 0/3000100): give it so' % target]
    plan['target_text'] = target.upper()
    if not backups:
        return []
    value = _lsn(target)
    oldest = backups[0]
    if oldest['lsn_stop'] and value < _lsn(oldest['lsn_stop']):
        return ['recovery target LSN %s lies before the end of the oldest backup %s (LSN %s); nothing before it can be '
                'restored: give an LSN at or after it' % (plan['target_text'], oldest['label'], oldest['lsn_stop'])]
    if given:
        chosen = next(b for b in backups if b['label'] == given)
        if chosen['lsn_stop'] and _lsn(chosen['lsn_stop']) > value:
            return ['backup set %s ended at LSN %s, after the recovery target LSN %s, and recovery cannot stop before '
                    'the end of the backup it starts from: give an older set, or no backup_set to have one chosen'
                    % (given, chosen['lsn_stop'], plan['target_text'])]
        return []
    candidates = [b for b in backups if b['lsn_stop'] and _lsn(b['lsn_stop']) <= value]
    if not candidates:
        return ['no backup of stanza %s records an end LSN at or before %s: give backup_set' % (stanza, plan['target_text'])]
    plan['backup_set'] = candidates[-1]['label']
    return []


def _name_problems(target):
    if not target.strip():
        return ['the restore type name needs the restore point\'s name (as given to pg_create_restore_point()) as the target']
    if any(c in target for c in '\'"\r\n'):
        return ['restore point name %r contains a quote or a line break; pgBackRest writes the name between quotes '
                'into postgresql.auto.conf, where either would break the setting: give a name without them' % target]
    if len(target) > MAX_RESTORE_POINT_NAME:
        return ['restore point name %r is longer than the %d characters PostgreSQL allows, so no restore point has it: '
                'give the name as pg_create_restore_point() was given it' % (target, MAX_RESTORE_POINT_NAME)]
    return []


def pgbackrest_restore_plan(info_text, stanza, target_type, target='', backup_set='', now=None):
    """Check a restore request against the stanza's backups and pick the backup set. See pgbackrest_restore_plan.yml."""
    now = _check_args(stanza, now)
    summary = pgbackrest_summary(info_text, stanza, now)
    backups = summary['backups']
    target = '' if target is None else str(target).strip()
    given = '' if backup_set is None else str(backup_set).strip()
    plan = {'problems': [], 'backup_set': '', 'target_epoch': None, 'target_text': target,
            'oldest': backups[0]['label'] if backups else '', 'newest': backups[-1]['label'] if backups else ''}
    problems = []
    if not backups:
        problems.append('nothing can be restored: %s' % (summary['error'] or 'stanza %s has no backup' % stanza))
    elif given and given not in [b['label'] for b in backups]:
        problems.append('backup set %s is not a backup of stanza %s: give one of %s'
                        % (given, stanza, ', '.join(b['label'] for b in backups)))
        given = ''
    if given:
        plan['backup_set'] = given
    if target_type not in TARGET_TYPES:
        problems.append('the restore type %r is not one of %s: give one of them' % (target_type, ', '.join(TARGET_TYPES)))
    elif target_type == 'time':
        problems.extend(_time_plan(plan, backups, target, now, given))
    elif target_type == 'lsn':
        problems.extend(_lsn_plan(plan, backups, target, given, stanza))
    elif target_type == 'name':
        problems.extend(_name_problems(target))
    elif target:
        problems.append('the restore type %s takes no target (got %r): leave the target empty, or use the restore type time, lsn or '
                        'name to stop earlier' % (target_type, target))
    if target_type in ('name', 'latest', 'immediate') and backups and not given:
        plan['backup_set'] = backups[-1]['label']
    plan['problems'] = problems
    if problems:
        plan['backup_set'] = ''
    return plan


class FilterModule(object):
    def filters(self):
        return {'pgbackrest_summary': pgbackrest_summary, 'pgbackrest_restore_plan': pgbackrest_restore_plan}
