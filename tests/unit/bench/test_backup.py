# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/backup.py: the parsing helpers (pgBackRest's info JSON, PostgreSQL's recovery log lines,
pgbench's output), the recovery point against the target, the command line and the table.
Nothing here needs Docker or the lab."""

import copy
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.pgha.cluster.tests.unit.utils import REPO, load_script

backup = load_script('bench/backup.py', 'pgha_bench_backup')

FULL = '20261201-101500F'
DIFF = '20261201-101500F_20261201-102000D'

# `pgbackrest --stanza=pgha info --output=json` (pgBackRest 2.54) after a full and a diff backup
INFO = json.loads('''[{
 "archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1",
              "max": "000000010000000000000012", "min": "000000010000000000000005"}],
 "backup": [
  {"archive": {"start": "000000010000000000000005", "stop": "000000010000000000000005"},
   "backrest": {"format": 5, "version": "2.54.2"}, "database": {"id": 1, "repo-key": 1}, "error": false,
   "info": {"delta": 812345678, "repository": {"delta": 51234567, "size": 51234567}, "size": 812345678},
   "label": "20261201-101500F", "link": null, "lsn": {"start": "0/5000028", "stop": "0/5000138"},
   "prior": null, "reference": null, "tablespace": null,
   "timestamp": {"start": 1796120100, "stop": 1796120162}, "type": "full"},
  {"archive": {"start": "000000010000000000000010", "stop": "000000010000000000000010"},
   "backrest": {"format": 5, "version": "2.54.2"}, "database": {"id": 1, "repo-key": 1}, "error": false,
   "info": {"delta": 120000000, "repository": {"delta": 9000000, "size": 52000000}, "size": 812345678},
   "label": "20261201-101500F_20261201-102000D", "link": null,
   "lsn": {"start": "0/10000028", "stop": "0/10000100"}, "prior": "20261201-101500F",
   "reference": ["20261201-101500F"], "tablespace": null,
   "timestamp": {"start": 1796120400, "stop": 1796120408}, "type": "diff"}],
 "cipher": "none",
 "db": [{"id": 1, "repo-key": 1, "system-id": 7442131234567890123, "version": "15"}],
 "name": "pgha",
 "repo": [{"cipher": "none", "key": 1, "status": {"code": 0, "message": "ok"}}],
 "status": {"code": 0, "lock": {"backup": {"held": false}, "restore": {"held": false}}, "message": "ok"}
}]''')

# The restored leader's log (log_line_prefix "%m [%p] %q%u@%d "): an older restore's stop first
PG_LOG = '''\
2026-12-01 09:00:01.000 UTC [1200] LOG:  recovery stopping before commit of transaction 900, time 2026-12-01 08:59:00.5+00
2026-12-01 10:16:40.101 UTC [2345] LOG:  starting point-in-time recovery to 2026-12-01 10:15:01.123456+00
2026-12-01 10:16:40.250 UTC [2345] LOG:  restored log file "000000010000000000000011" from archive
2026-12-01 10:16:41.002 UTC [2345] LOG:  recovery stopping before commit of transaction 1234, time 2026-12-01 10:15:02.125431+00
2026-12-01 10:16:41.003 UTC [2345] LOG:  redo done at 0/12000120 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.75 s
2026-12-01 10:16:41.003 UTC [2345] LOG:  last completed transaction was at log time 2026-12-01 10:15:00.120011+00
2026-12-01 10:16:41.010 UTC [2345] LOG:  selected new timeline ID: 2
'''

PGBENCH_OUT = '''\
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 50
query mode: simple
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 20 s
number of transactions actually processed: 10432
number of failed transactions: 0 (0.000%)
latency average = 7.668 ms
initial connection time = 12.345 ms
tps = 521.612345 (without initial connection time)
'''


# ---------------------------------------------------------------------------------------------
# pgBackRest info

def test_backup_figures_of_the_newest_backup():
    f = backup.backup_figures(INFO, 'pgha', {FULL})
    assert (f['label'], f['type'], f['prior']) == (DIFF, 'diff', FULL)
    assert (f['pgbackrest_s'], f['size'], f['delta'], f['repo_size'], f['repo_delta']) == (
        8, 812345678, 120000000, 52000000, 9000000)
    assert f['rate_bytes_per_s'] == 15000000
    assert (f['wal_start'], f['wal_stop'], f['error']) == ('000000010000000000000010', '000000010000000000000010', False)


def test_backup_figures_of_a_full_backup():
    info = copy.deepcopy(INFO)
    info[0]['backup'] = info[0]['backup'][:1]
    f = backup.backup_figures(info, 'pgha')
    assert (f['label'], f['type'], f['pgbackrest_s'], f['rate_bytes_per_s']) == (FULL, 'full', 62, round(812345678 / 62))


def test_backup_figures_newest_by_stop_time_not_by_position():
    info = copy.deepcopy(INFO)
    info[0]['backup'].reverse()
    assert backup.backup_figures(info, 'pgha')['label'] == DIFF


def test_backup_figures_refuses_an_old_backup():
    with pytest.raises(backup.BenchError, match='no new backup'):
        backup.backup_figures(INFO, 'pgha', {FULL, DIFF})


def test_backup_figures_without_the_stanza_or_a_backup():
    with pytest.raises(backup.BenchError, match='stanza other not in'):
        backup.backup_figures(INFO, 'other')
    info = copy.deepcopy(INFO)
    info[0]['backup'] = []
    info[0]['status'] = {'code': 2, 'message': 'no valid backups'}
    with pytest.raises(backup.BenchError, match='no valid backups'):
        backup.backup_figures(info, 'pgha')


def test_backup_figures_of_a_backup_under_a_second_has_no_rate():
    info = copy.deepcopy(INFO)
    info[0]['backup'][1]['timestamp']['start'] = info[0]['backup'][1]['timestamp']['stop']
    assert backup.backup_figures(info, 'pgha')['rate_bytes_per_s'] is None


def test_backup_labels():
    assert backup.backup_labels(INFO, 'pgha') == {FULL, DIFF}
    assert backup.backup_labels(INFO, 'other') == set()
    assert backup.backup_labels([{'name': 'pgha', 'backup': []}], 'pgha') == set()


# ---------------------------------------------------------------------------------------------
# the recovery point

def test_parse_recovery_log_takes_the_last_stop():
    assert backup.parse_recovery_log(PG_LOG) == {
        'stop_action': 'before commit', 'stop_xid': 1234, 'stop_time': '2026-12-01 10:15:02.125431+00',
        'last_completed_time': '2026-12-01 10:15:00.120011+00'}


def test_parse_recovery_log_other_stops_and_nothing():
    line = '2026-12-01 10:16:41.002 UTC [2345] LOG:  recovery stopping after abort of transaction 77, time 2026-12-01 10:15:02+01\n'
    parsed = backup.parse_recovery_log(line)
    assert (parsed['stop_action'], parsed['stop_xid'], parsed['stop_time']) == ('after abort', 77, '2026-12-01 10:15:02+01')
    assert backup.parse_recovery_log('') == {'stop_action': None, 'stop_xid': None, 'stop_time': None,
                                             'last_completed_time': None}


def test_recovery_point_differences():
    rp = backup.recovery_point('2026-12-01 10:15:01.123456+00', backup.parse_recovery_log(PG_LOG))
    assert (rp['requested'], rp['reached']) == ('2026-12-01 10:15:01.123456+00', '2026-12-01 10:15:02.125431+00')
    assert rp['difference_ms'] == pytest.approx(1001.975)
    assert rp['last_completed_difference_ms'] == pytest.approx(-1003.445)
    assert rp['stop_xid'] == 1234


def test_recovery_point_without_a_stop_or_with_an_unreadable_time():
    rp = backup.recovery_point('2026-12-01 10:15:01+00', backup.parse_recovery_log(''))
    assert rp['reached'] is None and rp['difference_ms'] is None and rp['last_completed_difference_ms'] is None
    parsed = dict(backup.parse_recovery_log(PG_LOG), stop_time='Tue Dec 01 10:15:02 2026 UTC')
    rp = backup.recovery_point('2026-12-01 10:15:01+00', parsed)
    assert rp['reached'] == 'Tue Dec 01 10:15:02 2026 UTC' and rp['difference_ms'] is None


# ---------------------------------------------------------------------------------------------
# pgbench, the playbooks' command lines, the table, the command line

def test_pgbench_figures():
    assert backup.pgbench_figures(PGBENCH_OUT) == {'tps': 521.612345, 'latency_ms': 7.668, 'transactions': 10432,
                                                   'failed': 0}
    assert backup.pgbench_figures('') == {'tps': None, 'latency_ms': None, 'transactions': None, 'failed': None}


def test_restore_command_line_keeps_the_target_one_string():
    target = '2026-12-01 10:15:01.123456+00'
    argv = backup.fill(backup.PLAYBOOK_RESTORE, inventory='inventories/lab',
                       target=json.dumps({'pgha_restore_target': target}))
    assert argv[:4] == ['ansible-playbook', '-i', 'inventories/lab', 'playbooks/restore.yml']
    assert json.loads(argv[argv.index('pgha_restore_type=time') + 2]) == {'pgha_restore_target': target}
    assert 'pgha_restore_confirm=true' in argv
    assert backup.fill(backup.PLAYBOOK_BACKUP, inventory='i', type='diff')[-1] == 'pgha_backup_type=diff'


def test_format_table():
    full_only = [dict(INFO[0], backup=INFO[0]['backup'][:1])]
    res = {'database': 'bench', 'scale': 50, 'database_bytes': 800 * backup.MIB,
           'backups': {'full': dict(backup.backup_figures(full_only, 'pgha'), playbook_s=80.5),
                       'diff': dict(backup.backup_figures(INFO, 'pgha', {FULL}), playbook_s=20.1)},
           'pitr': dict(backup.recovery_point('2026-12-01 10:15:01.123456+00', backup.parse_recovery_log(PG_LOG)),
                        playbook_s=120.0, leader_after_s=130.2, healthy_after_s=200.0, markers=[1])}
    text = backup.format_table(res)
    assert 'scale 50: 800.0 MiB' in text
    assert FULL in text and DIFF in text
    assert '1001.975 ms after the target' in text and 'markers [1]' in text


def test_parse_args():
    a = backup.parse_args([])
    # the stanza comes from the inventory unless given
    assert (a.scale, a.database, a.restore, a.skip_init, a.stanza, a.repo_host, a.repo_user) == (
        50, 'bench', True, False, None, 'bk1', 'postgres')
    a = backup.parse_args(['--no-restore', '--scale', '5', '--skip-init', '--stanza', 'other'])
    assert (a.restore, a.scale, a.skip_init, a.stanza) == (False, 5, True, 'other')
    with pytest.raises(SystemExit):
        backup.parse_args(['--database', 'x; DROP TABLE y'])


def test_help_says_the_restore_replaces_the_data():
    res = subprocess.run([sys.executable, os.path.join(REPO, 'bench', 'backup.py'), '--help'], capture_output=True,
                         text=True, timeout=30, check=False)
    assert res.returncode == 0, res.stderr
    assert '--no-restore' in res.stdout and "REPLACES THE LAB'S DATA" in res.stdout
