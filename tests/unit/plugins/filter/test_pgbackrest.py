# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgbackrest_summary and pgbackrest_restore_plan filters, on pgBackRest 2.45's info JSON."""

import copy
import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.pgha.cluster.plugins.filter.pgbackrest import (
    FilterModule,
    pgbackrest_restore_plan,
    pgbackrest_summary,
)

FULL = '20261201-101500F'
DIFF = '20261201-101500F_20261201-111500D'
INCR = '20261201-101500F_20261201-121500I'
# 2026-12-01 10:15:04, 11:15:03 and 12:15:02 UTC: the three backups' ends.
FULL_STOP, DIFF_STOP, INCR_STOP = 1796120104, 1796123703, 1796127302
# 2026-12-02 10:15:00 UTC
NOW = 1796206500


def _backup(label, kind, start, stop, lsn_start, lsn_stop, prior=None, size=31543296, repo_size=4012345):
    return {'archive': {'start': '000000010000000000000003', 'stop': '000000010000000000000003'},
            'backrest': {'format': 5, 'version': '2.45'}, 'database': {'id': 1, 'repo-key': 1}, 'error': False,
            'info': {'delta': size // 2 if prior else size, 'repository': {'delta': repo_size // 2 if prior else repo_size,
                                                                           'size': repo_size}, 'size': size},
            'label': label, 'lsn': {'start': lsn_start, 'stop': lsn_stop}, 'prior': prior,
            'reference': [prior] if prior else None, 'timestamp': {'start': start, 'stop': stop}, 'type': kind}


STANZA = {
    'archive': [{'database': {'id': 1, 'repo-key': 1}, 'id': '15-1', 'max': '000000020000000000000009',
                 'min': '000000010000000000000003'}],
    'backup': [_backup(FULL, 'full', FULL_STOP - 4, FULL_STOP, '0/3000028', '0/3000100'),
               _backup(DIFF, 'diff', DIFF_STOP - 3, DIFF_STOP, '0/5000028', '0/5000100', prior=FULL),
               # the incremental's end LSN has a higher "high" part: LSNs compare as 64-bit numbers
               _backup(INCR, 'incr', INCR_STOP - 2, INCR_STOP, '1/28', '1/100', prior=DIFF)],
    'cipher': 'aes-256-cbc', 'db': [{'id': 1, 'repo-key': 1, 'system-id': 7443000000000000000, 'version': '15'}],
    'name': 'pgha', 'repo': [{'cipher': 'aes-256-cbc', 'key': 1, 'status': {'code': 0, 'message': 'ok'}}],
    'status': {'code': 0, 'lock': {'backup': {'held': False}}, 'message': 'ok'}}


def info(backups=None, code=0, message='ok', repo_status=None, **changes):
    """pgbackrest info's JSON for stanza pgha with the given backups (indexes into STANZA's) and status."""
    stanza = copy.deepcopy(STANZA)
    if backups is not None:
        stanza['backup'] = [stanza['backup'][i] for i in backups]
    stanza['status'].update(code=code, message=message)
    if repo_status:
        stanza['repo'][0]['status'] = repo_status
    stanza.update(changes)
    return json.dumps([stanza])


def plan(target_type, target='', backup_set='', text=None, now=NOW):
    return pgbackrest_restore_plan(info() if text is None else text, 'pgha', target_type, target=target,
                                   backup_set=backup_set, now=now)


# --- pgbackrest_summary ----------------------------------------------------------------------


def test_summary_of_three_backups():
    s = pgbackrest_summary(info(), 'pgha', now=NOW)
    assert s['ok'] is True and s['error'] == ''
    assert (s['stanza'], s['status_code'], s['status_message']) == ('pgha', 0, 'ok')
    assert [b['label'] for b in s['backups']] == [FULL, DIFF, INCR]
    assert s['backups'][0] == {
        'label': FULL, 'type': 'full', 'start': FULL_STOP - 4, 'stop': FULL_STOP,
        'stop_iso': '2026-12-01T10:15:04+00:00', 'age_hours': 24.0, 'size': 31543296, 'delta': 31543296,
        'repo_size': 4012345, 'repo_delta': 4012345, 'lsn_start': '0/3000028', 'lsn_stop': '0/3000100', 'error': False}
    # 22 h 59 min 57 s and 21 h 59 min 58 s, to one decimal
    assert [b['age_hours'] for b in s['backups']] == [24.0, 23.0, 22.0]
    assert s['last_full']['label'] == FULL and s['last_diff']['label'] == DIFF and s['last_incr']['label'] == INCR
    assert s['newest']['label'] == INCR and s['oldest']['label'] == FULL
    assert s['archive'] == {'min': '000000010000000000000003', 'max': '000000020000000000000009'}


def test_summary_ages_and_newest_of_each_type():
    s = pgbackrest_summary(info(backups=[0, 1]), 'pgha', now=FULL_STOP + 90 * 60)
    assert [b['age_hours'] for b in s['backups']] == [1.5, 0.5]
    assert s['last_incr'] is None and s['newest']['label'] == DIFF
    s = pgbackrest_summary(info(backups=[0]), 'pgha', now=FULL_STOP)
    assert s['backups'][0]['age_hours'] == 0.0
    assert s['last_diff'] is None and s['newest'] is s['oldest'] is s['last_full']


def test_summary_sorts_by_end_and_accepts_parsed_json():
    stanza = json.loads(info())[0]
    stanza['backup'].reverse()
    s = pgbackrest_summary([stanza], 'pgha', now=NOW)
    assert [b['label'] for b in s['backups']] == [FULL, DIFF, INCR] and s['ok']
    # a stanza on its own (not in a list) is read too
    assert pgbackrest_summary(stanza, 'pgha', now=NOW)['newest']['label'] == INCR


def test_summary_uses_the_newest_archive_entry():
    archive = [{'id': '14-1', 'min': '000000010000000000000001', 'max': '000000010000000000000002'},
               copy.deepcopy(STANZA['archive'][0])]
    assert pgbackrest_summary(info(archive=archive), 'pgha', now=NOW)['archive']['min'] == '000000010000000000000003'
    assert pgbackrest_summary(info(archive=[]), 'pgha', now=NOW)['archive'] == {}


def test_summary_default_now_is_the_current_time():
    assert pgbackrest_summary(info(), 'pgha')['backups'][0]['age_hours'] > 0


@pytest.mark.parametrize('text, error', [
    ('', 'pgBackRest info printed nothing: run pgbackrest --stanza=pgha info on the repository host to see why'),
    (None, 'pgBackRest info printed nothing'),
    ('  \n', 'pgBackRest info printed nothing'),
    ('ERROR: [055]: unable to load info file', 'pgBackRest info did not print JSON (Expecting value: line 1 column 1'),
    ('[]', 'pgBackRest info does not list stanza pgha (it lists none): check the stanza name'),
    (json.dumps([{'name': 'other', 'status': {'code': 0}}]), 'pgBackRest info does not list stanza pgha (it lists other)'),
    ('"text"', 'pgBackRest info printed str instead of a list of stanzas'),
])
def test_summary_of_unreadable_info(text, error):
    s = pgbackrest_summary(text, 'pgha', now=NOW)
    assert s['error'].startswith(error)
    assert s['ok'] is False and s['status_code'] is None and s['backups'] == [] and s['newest'] is None
    assert s['last_full'] is None and s['archive'] == {}


def test_summary_status_codes():
    s = pgbackrest_summary(info(backups=[], code=1, message='missing stanza path', archive=[]), 'pgha', now=NOW)
    assert (s['ok'], s['status_code'], s['status_message']) == (False, 1, 'missing stanza path')
    assert s['error'] == ('stanza pgha does not exist in the repository (pgBackRest: missing stanza path): create it with '
                          'pgbackrest --stanza=pgha stanza-create, or check the stanza name and the repository settings')
    s = pgbackrest_summary(info(backups=[], code=2, message='no valid backups'), 'pgha', now=NOW)
    assert s['error'] == 'stanza pgha has no backup yet: run playbooks/backup.yml' and s['status_code'] == 2
    assert s['archive']['max'] == '000000020000000000000009'
    s = pgbackrest_summary(info(backups=[], code=3, message='missing stanza data'), 'pgha', now=NOW)
    assert s['error'].startswith('the repository holds only part of stanza pgha (pgBackRest: missing stanza data, ')
    assert s['error'].endswith('create it again with pgbackrest --stanza=pgha stanza-create')


def test_summary_other_error_quotes_the_repository():
    text = info(backups=[], code=99, message='other',
                repo_status={'code': 99, 'message': '[CryptoError] unable to flush: wrong passphrase?'})
    s = pgbackrest_summary(text, 'pgha', now=NOW)
    assert s['status_code'] == 99 and not s['ok']
    assert s['error'] == ('pgBackRest info on the repository failed: repo1: [CryptoError] unable to flush: wrong '
                          'passphrase?; fix what it names (repository path, host, permissions or cipher passphrase) and '
                          'run pgbackrest --stanza=pgha info again')
    # without a repository message the stanza's own is quoted
    s = pgbackrest_summary(info(backups=[], code=99, message='other', repo=[]), 'pgha', now=NOW)
    assert s['error'].startswith('pgBackRest info on the repository failed: other; ')


def test_summary_backups_with_a_bad_status_are_listed_but_not_ok():
    # several repositories, one of them unreadable: the other one's backups are still listed
    s = pgbackrest_summary(info(code=4, message='different across repos',
                                repo_status={'code': 99, 'message': '[PathOpenError] permission denied'}), 'pgha', now=NOW)
    assert not s['ok'] and s['newest']['label'] == INCR
    assert 'repo1: [PathOpenError] permission denied' in s['error']


def test_summary_status_ok_without_backups():
    s = pgbackrest_summary(info(backups=[]), 'pgha', now=NOW)
    assert not s['ok'] and s['error'] == 'stanza pgha has no backup yet: run playbooks/backup.yml'


def test_summary_of_a_backup_without_time_stamps():
    stanza = json.loads(info())[0]
    del stanza['backup'][1]['timestamp']
    s = pgbackrest_summary([stanza], 'pgha', now=NOW)
    assert not s['ok'] and s['backups'] == []
    assert s['error'].startswith('pgBackRest info lists a backup of stanza pgha without label, type or time stamps')


def test_summary_of_an_old_format_without_lsn_and_sizes():
    stanza = json.loads(info(backups=[0]))[0]
    del stanza['backup'][0]['lsn'], stanza['backup'][0]['info'], stanza['backup'][0]['error']
    b = pgbackrest_summary([stanza], 'pgha', now=NOW)['backups'][0]
    assert (b['lsn_stop'], b['size'], b['repo_delta'], b['error']) == (None, None, None, False)


def test_summary_refuses_bad_arguments():
    with pytest.raises(AnsibleFilterError, match='stanza name must be a non-empty string'):
        pgbackrest_summary(info(), '')
    with pytest.raises(AnsibleFilterError, match='now must be a number'):
        pgbackrest_summary(info(), 'pgha', now='yesterday')
    with pytest.raises(AnsibleFilterError, match='expected the output of pgbackrest info'):
        pgbackrest_summary(42, 'pgha')


# --- pgbackrest_restore_plan -----------------------------------------------------------------


@pytest.mark.parametrize('target_type', ['latest', 'immediate'])
def test_latest_and_immediate_restore_the_newest(target_type):
    assert plan(target_type) == {'problems': [], 'backup_set': INCR, 'target_epoch': None, 'target_text': '',
                                 'oldest': FULL, 'newest': INCR}


@pytest.mark.parametrize('target_type', ['latest', 'immediate'])
def test_latest_and_immediate_take_no_target(target_type):
    p = plan(target_type, target='2026-12-01 10:15:00+00')
    assert p['problems'] == ["the restore type %s takes no target (got '2026-12-01 10:15:00+00'): leave the target empty, or "
                             "use the restore type time, lsn or name to stop earlier" % target_type]
    assert p['backup_set'] == ''


@pytest.mark.parametrize('target_type', ['default', '', None, 'xid'])
def test_unknown_target_type(target_type):
    p = plan(target_type)
    assert p['problems'] == ['the restore type %r is not one of latest, immediate, time, lsn, name: give one of them'
                             % target_type]
    assert p['backup_set'] == '' and p['newest'] == INCR


@pytest.mark.parametrize('target, backup_set, epoch, text', [
    # the end of each backup, to the second, restores from that backup
    ('2026-12-01 10:15:04+00', FULL, FULL_STOP, '2026-12-01 10:15:04+00'),
    ('2026-12-01 11:15:02.999999+00', FULL, DIFF_STOP - 1e-6, '2026-12-01 11:15:02.999999+00'),
    ('2026-12-01 11:15:03+00', DIFF, DIFF_STOP, '2026-12-01 11:15:03+00'),
    ('2026-12-01T12:15:02+00:00', INCR, INCR_STOP, '2026-12-01 12:15:02+00:00'),
    ('2026-12-01T13:15:02+0100', INCR, INCR_STOP, '2026-12-01 13:15:02+0100'),
    ('2026-12-01 07:15:02-04', FULL, DIFF_STOP - 1, '2026-12-01 07:15:02-04'),
    ('2026-12-01 06:45:03-04:30', DIFF, DIFF_STOP, '2026-12-01 06:45:03-04:30'),
    ('2026-12-01 11:15:03.5Z', DIFF, DIFF_STOP + 0.5, '2026-12-01 11:15:03.5+00'),
    ('2026-12-02 10:15:00+00', INCR, NOW, '2026-12-02 10:15:00+00'),
    ('  2026-12-01 11:15:03 +00 ', DIFF, DIFF_STOP, '2026-12-01 11:15:03+00'),
])
def test_time_target_forms_and_set_choice(target, backup_set, epoch, text):
    p = plan('time', target)
    assert p['problems'] == []
    assert (p['backup_set'], p['target_text']) == (backup_set, text)
    assert p['target_epoch'] == pytest.approx(epoch)


@pytest.mark.parametrize('target, problem', [
    ('2026-12-01 10:15:04', "recovery target time '2026-12-01 10:15:04' has no UTC offset, and PostgreSQL would read "
                            "it in the server's time zone: give the offset, e.g. '2026-12-01 10:15:00+00'"),
    ('2026-12-01 10:15:04 UTC', "recovery target time '2026-12-01 10:15:04 UTC' ends in 'UTC', which is not a UTC "
                                "offset: give one like +00, +0100 or -05:30, e.g. '2026-12-01 10:15:00+00'"),
    ('2026-12-01 10:15:04+1', "recovery target time '2026-12-01 10:15:04+1' ends in '+1', which is not a UTC offset"),
    ('2026-12-01 10:15+00', "recovery target time '2026-12-01 10:15+00' is not of the form "
                            "YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM]: give it so, e.g. '2026-12-01 10:15:00+00'"),
    ('01.12.2026 10:15:04+00', "recovery target time '01.12.2026 10:15:04+00' is not of the form"),
    ('', "recovery target time '' is not of the form"),
    ('2026-12-01 10:15:04.1234567+00', 'is not of the form'),
    ('2026-02-30 10:15:04+00', "recovery target time '2026-02-30 10:15:04+00' is not a valid date and time (day is "
                               "out of range for month): e.g. '2026-12-01 10:15:00+00'"),
    ('2026-12-01 24:00:00+00', 'is not a valid date and time (hour must be in 0..23)'),
    ('2026-12-01 10:15:04+16', "recovery target time '2026-12-01 10:15:04+16' has an impossible UTC offset +16: give "
                               "one from -15:59 to +15:59"),
    ('2026-12-01 10:15:04+01:60', 'has an impossible UTC offset +01:60'),
])
def test_time_target_refused(target, problem):
    p = plan('time', target)
    assert len(p['problems']) == 1 and problem in p['problems'][0]
    assert p['backup_set'] == '' and p['target_epoch'] is None


def test_time_target_in_the_future():
    p = plan('time', '2026-12-02 10:15:01+00')
    assert p['problems'] == ['recovery target time 2026-12-02 10:15:01+00 is in the future; the newest point the '
                             'archive can reach is the last archived WAL: give a past time, or the restore type latest to '
                             'replay all of it']
    assert p['backup_set'] == '' and p['target_epoch'] == NOW + 1
    # the same moment in another offset
    assert plan('time', '2026-12-02 11:15:00+01')['problems'] == []
    assert plan('time', '2026-12-02 11:15:01+01')['problems'][0].startswith('recovery target time 2026-12-02 11:15:01+01 '
                                                                            'is in the future')


def test_time_target_before_the_oldest_backup():
    p = plan('time', '2026-12-01 10:15:03.999999+00')
    assert p['problems'] == ['recovery target time 2026-12-01 10:15:03.999999+00 lies before the end of the oldest '
                             'backup 20261201-101500F (2026-12-01 10:15:04+00, UTC); nothing before it can be restored: '
                             'give a time at or after it']
    assert p['backup_set'] == '' and p['oldest'] == FULL


def test_time_target_with_a_given_set():
    assert plan('time', '2026-12-01 12:00:00+00', backup_set=FULL)['backup_set'] == FULL
    assert plan('time', '2026-12-01 11:15:03+00', backup_set=DIFF)['problems'] == []
    p = plan('time', '2026-12-01 11:15:02+00', backup_set=DIFF)
    assert p['problems'] == ['backup set %s ended at 2026-12-01 11:15:03+00, after the recovery target time '
                             '2026-12-01 11:15:02+00, and recovery cannot stop before the end of the backup it starts '
                             'from: give an older set, or no backup_set to have one chosen' % DIFF]
    assert p['backup_set'] == ''


def test_time_target_without_backups_is_checked_too():
    p = plan('time', '2026-12-03 10:15:00+00', text=info(backups=[], code=2, message='no valid backups'))
    assert p['problems'] == ['nothing can be restored: stanza pgha has no backup yet: run playbooks/backup.yml',
                             'recovery target time 2026-12-03 10:15:00+00 is in the future; the newest point the archive '
                             'can reach is the last archived WAL: give a past time, or the restore type latest to replay all '
                             'of it']
    assert (p['oldest'], p['newest'], p['backup_set']) == ('', '', '')
    assert plan('time', '2026-12-01 10:15:00+00', text='[]')['problems'] == [
        'nothing can be restored: pgBackRest info does not list stanza pgha (it lists none): check the stanza name and '
        'that pgbackrest.conf on the repository host has it']


@pytest.mark.parametrize('target, backup_set, text', [
    ('0/3000100', FULL, '0/3000100'),
    ('0/50000ff', FULL, '0/50000FF'),
    ('0/5000100', DIFF, '0/5000100'),
    ('0/FFFFFFFF', DIFF, '0/FFFFFFFF'),
    ('1/100', INCR, '1/100'),
    ('A/0', INCR, 'A/0'),
])
def test_lsn_target_and_set_choice(target, backup_set, text):
    p = plan('lsn', target)
    assert (p['problems'], p['backup_set'], p['target_text'], p['target_epoch']) == ([], backup_set, text, None)


@pytest.mark.parametrize('target', ['', '3000100', '0/', '0/123456789', 'G/1', '0/1/2', '0x0/1'])
def test_lsn_target_refused(target):
    p = plan('lsn', target)
    assert p['problems'] == ['recovery target LSN %r is not of the form X/X with 1 to 8 hex digits on each side (as '
                             'pg_current_wal_lsn() prints it, e.g. 0/3000100): give it so' % target]
    assert p['backup_set'] == ''


def test_lsn_target_before_the_oldest_backup():
    p = plan('lsn', '0/30000FF')
    assert p['problems'] == ['recovery target LSN 0/30000FF lies before the end of the oldest backup 20261201-101500F '
                             '(LSN 0/3000100); nothing before it can be restored: give an LSN at or after it']
    # a bigger "low" part does not make an LSN of a lower "high" part bigger
    assert plan('lsn', '0/FFFFFFFF', backup_set=INCR)['problems'][0].startswith(
        'backup set %s ended at LSN 1/100, after the recovery target LSN 0/FFFFFFFF' % INCR)


def test_lsn_target_with_a_given_set_and_without_recorded_lsns():
    assert plan('lsn', '0/6000000', backup_set=FULL)['backup_set'] == FULL
    stanza = json.loads(info())[0]
    for b in stanza['backup']:
        del b['lsn']
    # without backups the form is still checked
    p = plan('lsn', '0/6000000', text=info(backups=[], code=2, message='no valid backups'))
    assert p['problems'] == ['nothing can be restored: stanza pgha has no backup yet: run playbooks/backup.yml']
    assert p['target_text'] == '0/6000000'
    p = plan('lsn', '0/6000000', text=json.dumps([stanza]))
    assert p['problems'] == ['no backup of stanza pgha records an end LSN at or before 0/6000000: give backup_set']
    assert plan('lsn', '0/6000000', backup_set=DIFF, text=json.dumps([stanza]))['backup_set'] == DIFF


def test_name_target():
    assert plan('name', 'before_upgrade') == {'problems': [], 'backup_set': INCR, 'target_epoch': None,
                                              'target_text': 'before_upgrade', 'oldest': FULL, 'newest': INCR}
    # the newest set is restored unless an older one is given (a restore point made before it)
    assert plan('name', 'before_upgrade', backup_set=FULL)['backup_set'] == FULL


@pytest.mark.parametrize('target, problem', [
    ('', "the restore type name needs the restore point's name (as given to pg_create_restore_point()) as the target"),
    ("it's", "restore point name \"it's\" contains a quote or a line break; pgBackRest writes the name between quotes "
             "into postgresql.auto.conf, where either would break the setting: give a name without them"),
    ('a"b', 'restore point name \'a"b\' contains a quote or a line break'),
    ('a\nb', "restore point name 'a\\nb' contains a quote or a line break"),
    ('x' * 64, "restore point name '%s' is longer than the 63 characters PostgreSQL allows" % ('x' * 64)),
])
def test_name_target_refused(target, problem):
    p = plan('name', target)
    assert len(p['problems']) == 1 and p['problems'][0].startswith(problem)
    assert p['backup_set'] == ''


def test_given_set_must_exist():
    p = plan('latest', backup_set='20261130-101500F')
    assert p['problems'] == ['backup set 20261130-101500F is not a backup of stanza pgha: give one of %s, %s, %s'
                             % (FULL, DIFF, INCR)]
    assert p['backup_set'] == ''
    assert plan('latest', backup_set=DIFF)['backup_set'] == DIFF
    assert plan('immediate', backup_set=FULL)['backup_set'] == FULL


@pytest.mark.parametrize('text, problem', [
    ('', 'nothing can be restored: pgBackRest info printed nothing: run pgbackrest --stanza=pgha info on the '
         'repository host to see why'),
    ('{oops', 'nothing can be restored: pgBackRest info did not print JSON ('),
    (info(backups=[], code=1, message='missing stanza path'), 'nothing can be restored: stanza pgha does not exist '),
    (info(backups=[], code=2, message='no valid backups'), 'nothing can be restored: stanza pgha has no backup yet'),
    (info(backups=[], code=99, message='other', repo_status={'code': 99, 'message': '[HostConnectError] timeout'}),
     'nothing can be restored: pgBackRest info on the repository failed: repo1: [HostConnectError] timeout; '),
])
def test_nothing_to_restore(text, problem):
    p = plan('latest', text=text)
    assert len(p['problems']) == 1 and p['problems'][0].startswith(problem)
    assert (p['backup_set'], p['oldest'], p['newest']) == ('', '', '')


def test_several_problems_are_all_listed():
    p = plan('name', "a'b", backup_set='nope', text=info(backups=[0]))
    assert [x.split(':')[0] for x in p['problems']] == ['backup set nope is not a backup of stanza pgha',
                                                        "restore point name \"a'b\" contains a quote or a line break; "
                                                        "pgBackRest writes the name between quotes into "
                                                        "postgresql.auto.conf, where either would break the setting"]


def test_restore_plan_refuses_bad_arguments():
    with pytest.raises(AnsibleFilterError, match='stanza name must be a non-empty string'):
        pgbackrest_restore_plan(info(), None, 'latest')
    with pytest.raises(AnsibleFilterError, match='now must be a number'):
        pgbackrest_restore_plan(info(), 'pgha', 'latest', now=[])


def test_restore_plan_default_arguments():
    p = pgbackrest_restore_plan(info(), 'pgha', 'time', '2026-12-01 10:15:04+00')
    assert p['backup_set'] == FULL and p['problems'] == []
    assert pgbackrest_restore_plan(info(), 'pgha', 'latest', target=None, backup_set=None)['backup_set'] == INCR


def test_registered():
    filters = FilterModule().filters()
    assert filters['pgbackrest_summary'] is pgbackrest_summary
    assert filters['pgbackrest_restore_plan'] is pgbackrest_restore_plan
