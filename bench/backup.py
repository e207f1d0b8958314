# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make bench-backup`: backup and restore time and throughput on the lab (issue 18).

On the leader (Patroni's GET /cluster), as postgres over the local socket: pgbench -i -s SCALE
in database `bench` (created if missing; --skip-init keeps what is there). A full backup with the
collection's playbooks/backup.yml (its wall time), then pgBackRest's own figures from `pgbackrest
info` on the repository host (bk1): its time (timestamp stop - start), size, delta, repository
size and delta, rate = delta / its time. pgbench -T 20 -c 4, then a differential backup the same
way. Then, with --restore (the default), a point-in-time restore with playbooks/restore.yml to a
time between two marker rows (bench_marker): marker 1 must be there afterwards, marker 2 not,
and the recovery point PostgreSQL reached ("recovery stopping before commit of transaction N,
time T" in the new leader's log) is compared with the requested one.

THE RESTORE REPLACES THE LAB'S DATA (every database, not only `bench`) with the backup's, as of
the target time; --no-restore measures the backups only. Writes bench/results/<UTC
stamp>-backup.json; the playbooks' output stays in .cache/bench/<stamp>-backup/. Exit status: 0
fine, 1 the restored data or recovery point is wrong, 2 a step or the tool failed. Every step is
bounded; Ctrl-C or SIGTERM ends the step running (a restore cut short leaves the lab as it is).
"""

import argparse
import json
import os
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import probe  # noqa: E402
import run  # noqa: E402
from run import BenchError, log, sh  # noqa: E402

PLAYBOOK_BACKUP = ['ansible-playbook', '-i', '{inventory}', 'playbooks/backup.yml', '-e', 'pgha_backup_type={type}']
PLAYBOOK_RESTORE = ['ansible-playbook', '-i', '{inventory}', 'playbooks/restore.yml', '-e', 'pgha_restore_type=time',
                    '-e', '{target}', '-e', 'pgha_restore_confirm=true']
# The data directory's log, wherever the PostgreSQL version puts it (15 on Debian 12, 17 on 13).
PG_LOG_DIR = '/var/lib/postgresql/*/pgha/log'
RECOVERY_STOP = re.compile(r'recovery stopping (before|after) (commit|abort) of transaction (\d+), time (.+?)\s*$')
LAST_COMPLETED = re.compile(r'last completed transaction was at log time (.+?)\s*$')
MIB = 1024.0 * 1024.0


# ----------------------------------------------------------------------------------------------
# parsing (pure; unit-tested)

def backup_figures(info, stanza, before_labels=()):
    """The newest backup of stanza in `pgbackrest info --output=json` (parsed), as flat figures.

    before_labels: the labels that existed before the backup was taken; the newest backup must
    not be one of them (a playbook that did nothing must not report the previous backup)."""
    entry = next((s for s in info if s.get('name') == stanza), None)
    if entry is None:
        raise BenchError('stanza %s not in pgbackrest info (stanzas: %s)' % (stanza, [s.get('name') for s in info]))
    backups = entry.get('backup') or []
    if not backups:
        raise BenchError('stanza %s has no backup (status: %s)' % (stanza, (entry.get('status') or {}).get('message')))
    newest = max(backups, key=lambda b: (b['timestamp']['stop'], b['label']))
    if newest['label'] in before_labels:
        raise BenchError('no new backup in stanza %s: the newest is still %s' % (stanza, newest['label']))
    info_ = newest.get('info') or {}
    repo = info_.get('repository') or {}
    seconds = newest['timestamp']['stop'] - newest['timestamp']['start']
    delta = info_.get('delta')
    return {
        'label': newest['label'],
        'type': newest.get('type'),
        'prior': newest.get('prior'),
        'error': newest.get('error'),
        'started': newest['timestamp']['start'],
        'stopped': newest['timestamp']['stop'],
        'pgbackrest_s': seconds,
        'size': info_.get('size'),
        'delta': delta,
        'repo_size': repo.get('size'),
        'repo_delta': repo.get('delta'),
        # pgBackRest's times are whole seconds: a backup of under a second has no rate
        'rate_bytes_per_s': round(delta / seconds) if delta is not None and seconds > 0 else None,
        'wal_start': (newest.get('archive') or {}).get('start'),
        'wal_stop': (newest.get('archive') or {}).get('stop'),
    }


def backup_labels(info, stanza):
    entry = next((s for s in info if s.get('name') == stanza), None) or {}
    return {b['label'] for b in entry.get('backup') or []}


def parse_recovery_log(text):
    """The last recovery stop and "last completed transaction" of PostgreSQL log text:
    {'stop_action', 'stop_xid', 'stop_time', 'last_completed_time'} (None where absent)."""
    out = {'stop_action': None, 'stop_xid': None, 'stop_time': None, 'last_completed_time': None}
    for line in (text or '').splitlines():
        m = RECOVERY_STOP.search(line)
        if m:
            out.update(stop_action='%s %s' % (m.group(1), m.group(2)), stop_xid=int(m.group(3)), stop_time=m.group(4))
            continue
        m = LAST_COMPLETED.search(line)
        if m:
            out['last_completed_time'] = m.group(1)
    return out


def recovery_point(requested, parsed):
    """The recovery point reached against the requested one: parsed (parse_recovery_log) plus the
    differences in ms. The stop is the first transaction not replayed (it committed after the
    target); the last completed transaction is the last one replayed (at or before it)."""
    out = dict(parsed, requested=requested, reached=parsed['stop_time'])
    target = probe.parse_target(requested)
    times = (('difference_ms', parsed['stop_time']), ('last_completed_difference_ms', parsed['last_completed_time']))
    for key, when in times:
        try:
            out[key] = round((probe.parse_target(when) - target) * 1000, 3) if when else None
        except ValueError:  # a log time in a format of its own: reported as text only
            out[key] = None
    return out


def pgbench_figures(output):
    """tps, average latency and failed transactions of a pgbench run's output."""
    def num(pattern, cast=float):
        m = re.search(pattern, output or '')
        return cast(m.group(1)) if m else None
    return {'tps': num(r'tps = ([0-9.]+)'), 'latency_ms': num(r'latency average = ([0-9.]+) ms'),
            'transactions': num(r'number of transactions actually processed: (\d+)', int),
            'failed': num(r'number of failed transactions: (\d+)', int)}


def fill(argv, **values):
    return [run.fill(a, **values) for a in argv]


# ----------------------------------------------------------------------------------------------
# the lab

class BackupBench:
    def __init__(self, args):
        self.args = args
        gv = run.load_group_vars(args.inventory)
        # as the pgbackrest role names it: one stanza per cluster, after patroni_scope
        args.stanza = args.stanza or run.resolve_var(gv, 'pgbackrest_stanza', None, args.inventory) or \
            run.resolve_var(gv, 'patroni_scope', 'pgha', args.inventory)
        self.lab = run.Lab(args.lab_name, args.inventory, ca_file=self.ca_file(gv))
        self.stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
        self.workdir = os.path.join(REPO, '.cache', 'bench', self.stamp + '-backup')
        os.makedirs(self.workdir, exist_ok=True)
        self.results = {'stamp': self.stamp, 'lab': args.lab_name, 'scale': args.scale, 'database': args.database,
                        'stanza': args.stanza, 'skip_init': args.skip_init, 'restore': args.restore,
                        'workdir': os.path.relpath(self.workdir, REPO), 'backups': {}, 'errors': []}

    def ca_file(self, gv):
        """The cluster CA the Patroni REST API is verified with; None when the lab's TLS is off."""
        a = self.args
        if str(run.resolve_var(gv, 'pgha_tls', True, a.inventory)).lower() in ('false', 'no', '0'):
            return None
        scope = run.resolve_var(gv, 'patroni_scope', 'pgha', a.inventory)
        path = a.ca_file or os.path.expanduser('~/.pgha/pki/%s/ca.crt' % scope)
        if not os.path.isfile(path):
            raise BenchError('TLS is on but the cluster CA %s is missing: run site.yml from this machine or pass '
                             '--ca-file' % path)
        return path

    # -- commands in the containers --------------------------------------------------------------
    def as_postgres(self, host, cmd, timeout, check=True):
        return sh(['docker', 'exec', '-u', 'postgres', self.lab.container(host)] + cmd, timeout=timeout, check=check)

    def sql(self, host, sql, database=None, timeout=60):
        """Rows (lists of text) of sql run with psql on host's local socket; UTC and ISO dates, so
        that times read back are what a restore target is written as."""
        res = self.as_postgres(host, ['psql', '-XAtq', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-d',
                                      database or self.args.database, '-c', "SET TimeZone = 'UTC'",
                                      '-c', 'SET DateStyle = ISO', '-c', sql], timeout=timeout)
        return [line.split('\t') for line in res.stdout.splitlines() if line]

    def pgbench_path(self, host):
        res = self.as_postgres(host, ['sh', '-c', 'ls /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n1'],
                               timeout=20)
        path = res.stdout.strip()
        if not path:
            raise BenchError('no pgbench on %s' % host)
        return path

    def leader(self, timeout=None):
        """The lab host of the leader of a healthy cluster (bounded)."""
        cl = self.lab.wait_healthy(timeout or self.args.settle_timeout)
        return self.lab.leaders(cl)[0]['lab_host']

    def playbook(self, argv, name):
        """Run a playbook (bounded); its wall time. Its output goes to the workdir."""
        out = os.path.join(self.workdir, name + '.log')
        log('%s: %s' % (name, ' '.join(argv)))
        t0 = time.time()
        res = sh(argv, timeout=self.args.timeout, check=False, out=out)
        took = round(time.time() - t0, 1)
        out = os.path.relpath(out, REPO)
        if res.returncode != 0:
            raise BenchError('%s failed (rc %d) after %.0f s, see %s' % (name, res.returncode, took, out))
        return took, out

    def info(self):
        a = self.args
        res = sh(['docker', 'exec', '-u', a.repo_user, self.lab.container(a.repo_host), 'pgbackrest',
                  '--stanza=%s' % a.stanza, 'info', '--output=json'], timeout=120)
        try:
            return json.loads(res.stdout)
        except ValueError:
            raise BenchError('pgbackrest info printed no JSON: %s' % res.stdout[:300])

    # -- steps -----------------------------------------------------------------------------------
    def init(self, leader):
        a = self.args
        if not self.sql(leader, "SELECT 1 FROM pg_database WHERE datname = '%s'" % a.database, database='postgres'):
            self.sql(leader, 'CREATE DATABASE "%s"' % a.database, database='postgres')
        log('pgbench -i -s %d on %s' % (a.scale, leader))
        t0 = time.time()
        self.as_postgres(leader, [self.pgbench_path(leader), '-i', '-q', '-s', str(a.scale), a.database],
                         timeout=a.timeout)
        self.results['init'] = {'host': leader, 'seconds': round(time.time() - t0, 1)}

    def backup(self, kind):
        before = backup_labels(self.info(), self.args.stanza)
        wall, out = self.playbook(fill(PLAYBOOK_BACKUP, inventory=self.args.inventory, type=kind), '%s-backup' % kind)
        figures = dict(backup_figures(self.info(), self.args.stanza, before), playbook_s=wall, log=out)
        if figures['type'] != kind:
            raise BenchError('%s backup asked for, pgBackRest made %s %s' % (kind, figures['type'], figures['label']))
        self.results['backups'][kind] = figures
        log('%s backup %s: playbook %.1f s, pgBackRest %s s, delta %s bytes' % (
            kind, figures['label'], wall, figures['pgbackrest_s'], figures['delta']))

    def load(self, leader):
        a = self.args
        log('pgbench -T %d -c %d on %s' % (a.pgbench_time, a.pgbench_clients, leader))
        res = self.as_postgres(leader, [self.pgbench_path(leader), '-n', '-T', str(a.pgbench_time), '-c',
                                        str(a.pgbench_clients), '-j', str(min(a.pgbench_clients, 2)), a.database],
                               timeout=a.pgbench_time + 120)
        self.results['pgbench'] = dict(pgbench_figures(res.stdout), host=leader, seconds=a.pgbench_time,
                                       clients=a.pgbench_clients)

    def markers(self, leader):
        """Marker 1, the target (the server's clock_timestamp() between the two), marker 2; then the
        WAL holding them archived (bounded). The note is this run's stamp: older runs' markers stay."""
        a = self.args
        self.sql(leader, 'CREATE TABLE IF NOT EXISTS bench_marker (id int, note text, '
                         'at timestamptz DEFAULT clock_timestamp())')
        self.sql(leader, "INSERT INTO bench_marker (id, note) VALUES (1, '%s')" % self.stamp)
        time.sleep(1)
        target = self.sql(leader, 'SELECT clock_timestamp()::text')[0][0]
        time.sleep(1)
        self.sql(leader, "INSERT INTO bench_marker (id, note) VALUES (2, '%s')" % self.stamp)
        segment = self.sql(leader, 'SELECT pg_walfile_name(pg_switch_wal())')[0][0]
        end = time.time() + a.archive_timeout
        while True:
            last, failed = self.sql(leader, 'SELECT coalesce(last_archived_wal, \'\'), coalesce(last_failed_wal, \'\') '
                                            'FROM pg_stat_archiver')[0]
            # WAL file names of one timeline sort in their order
            if last >= segment:
                break
            if time.time() > end:
                raise BenchError('WAL segment %s not archived within %ss (last archived %s, last failed %s)'
                                 % (segment, a.archive_timeout, last or 'none', failed or 'none'))
            time.sleep(0.5)
        return target, segment

    def recovery_log(self, hosts, since):
        """parse_recovery_log of the PostgreSQL logs written since `since` (epoch) on the first of
        hosts that has a recovery stop in them. A log file (one per weekday) may also hold an older
        restore's stop, before this one's: its time before the target shows it."""
        parsed = None
        script = "find %s -name 'postgresql-*.log' -newermt @%d 2>/dev/null | xargs -r ls -tr | xargs -r cat" % (
            PG_LOG_DIR, int(since))
        for host in hosts:
            res = sh(['docker', 'exec', self.lab.container(host), 'sh', '-c', script], timeout=60, check=False)
            parsed = parse_recovery_log(res.stdout)
            if parsed['stop_time']:
                return host, parsed
        return None, parsed or parse_recovery_log('')

    def restore(self, leader):
        a = self.args
        target, segment = self.markers(leader)
        pitr = self.results['pitr'] = {'requested': target, 'segment': segment, 'old_leader': leader}
        log('restore to %s (REPLACES the lab\'s data)' % target)
        t0 = time.time()
        # JSON: the target's space and '+' reach the playbook as one string
        argv = fill(PLAYBOOK_RESTORE, inventory=a.inventory, target=json.dumps({'pgha_restore_target': target}))
        pitr['playbook_s'], pitr['log'] = self.playbook(argv, 'restore')
        new = self.lab.wait('a leader', lambda c: next(iter(self.lab.leaders(c)), None), a.settle_timeout)[0]
        pitr['new_leader'] = new['lab_host']
        pitr['leader_after_s'] = round(time.time() - t0, 1)
        try:
            rows = self.sql(new['lab_host'], "SELECT id FROM bench_marker WHERE note = '%s' ORDER BY id" % self.stamp)
            pitr['markers'] = [int(r[0]) for r in rows]
        except BenchError as exc:
            pitr['markers'] = None
            pitr['markers_error'] = str(exc)[-300:]
        pitr['markers_ok'] = pitr['markers'] == [1]
        others = [h for h in ('pg1', 'pg2', 'pg3') if h != new['lab_host']]
        host, parsed = self.recovery_log([new['lab_host']] + others, t0 - 60)
        pitr['log_host'] = host
        pitr.update(recovery_point(target, parsed))
        # the stop must be the first commit after the target: marker 2's, a second later
        pitr['recovery_point_ok'] = pitr['difference_ms'] is not None and 0 < pitr['difference_ms'] < 5000
        try:
            self.lab.wait_healthy(a.settle_timeout)
            pitr['healthy_after_s'] = round(time.time() - t0, 1)
        except BenchError as exc:
            pitr['healthy_after_s'] = None
            self.results['errors'].append('after the restore: %s' % exc)

    # -- output ----------------------------------------------------------------------------------
    def save(self):
        path = os.path.join(REPO, self.args.results_dir, self.stamp + '-backup.json')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + '.tmp', 'w') as fh:
            json.dump(self.results, fh, indent=2, sort_keys=True)
        os.replace(path + '.tmp', path)
        return path

    def run(self):
        a = self.args
        self.results['started'] = time.time()
        leader = self.leader()
        self.results['leader'] = leader
        if a.skip_init:
            log('--skip-init: database %s as it is' % a.database)
        else:
            self.init(leader)
        self.results['database_bytes'] = int(self.sql(leader, "SELECT pg_database_size('%s')" % a.database)[0][0])
        self.backup('full')
        self.save()
        self.load(leader)
        self.backup('diff')
        self.save()
        if a.restore:
            self.restore(self.leader())
        self.results['finished'] = time.time()
        path = self.save()
        print()
        print(format_table(self.results))
        print('\nresults: %s' % os.path.relpath(path, REPO))
        pitr = self.results.get('pitr')
        if pitr and not (pitr['markers_ok'] and pitr['recovery_point_ok']):
            print('FAIL: after the restore markers %s (expected [1]), recovery point %s ms after the target'
                  % (pitr['markers'], pitr['difference_ms']), file=sys.stderr)
            return 1
        if self.results['errors']:
            print('FAIL: %s' % '; '.join(self.results['errors']), file=sys.stderr)
            return 2
        return 0


def _mib(v):
    return '-' if v is None else '%.1f' % (v / MIB)


def _v(v):
    return '-' if v is None else str(v)


def format_table(res):
    head = '%-6s %9s %8s %10s %10s %10s %10s %9s  %s' % ('backup', 'playbook', 'pgbr_s', 'size_MiB', 'delta_MiB',
                                                         'repo_MiB', 'repo_dMiB', 'MiB/s', 'label')
    lines = ['database %s, scale %s: %s MiB' % (res['database'], res['scale'], _mib(res.get('database_bytes'))),
             head, '-' * len(head)]
    for kind in ('full', 'diff'):
        b = res['backups'].get(kind)
        if b:
            lines.append('%-6s %9s %8s %10s %10s %10s %10s %9s  %s' % (
                kind, _v(b['playbook_s']), _v(b['pgbackrest_s']), _mib(b['size']), _mib(b['delta']),
                _mib(b['repo_size']), _mib(b['repo_delta']), _mib(b['rate_bytes_per_s']), b['label']))
    p = res.get('pitr')
    if p:
        lines.append('restore to %s: playbook %s s, a leader after %s s, healthy after %s s' % (
            p['requested'], _v(p.get('playbook_s')), _v(p.get('leader_after_s')), _v(p.get('healthy_after_s'))))
        lines.append('recovery stopped %s of transaction %s at %s: %s ms after the target; last replayed commit '
                     '%s ms; markers %s (expected [1])' % (
                         _v(p.get('stop_action')), _v(p.get('stop_xid')), _v(p.get('reached')),
                         _v(p.get('difference_ms')), _v(p.get('last_completed_difference_ms')), p.get('markers')))
    lines.append("pgbr_s: pgBackRest's own time (whole seconds); MiB/s: delta / pgbr_s; playbook: wall time (s)")
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0],
                                epilog='The restore (on by default; --no-restore skips it) REPLACES THE LAB\'S DATA '
                                       'with the backup\'s as of a time a few seconds before it starts.',
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--lab-name', default=os.environ.get('LAB_NAME') or 'pgha-lab')
    p.add_argument('--inventory', default='inventories/lab')
    p.add_argument('--scale', type=int, default=50, help='pgbench -i -s')
    p.add_argument('--database', default='bench')
    p.add_argument('--skip-init', action='store_true', help='no pgbench -i: back up the database as it is')
    p.add_argument('--pgbench-time', type=int, default=20, help='seconds of pgbench between the full and the diff backup')
    p.add_argument('--pgbench-clients', type=int, default=4)
    p.add_argument('--restore', action=argparse.BooleanOptionalAction, default=True,
                   help='the point-in-time restore: it REPLACES THE LAB\'S DATA')
    p.add_argument('--stanza', help="pgBackRest's stanza (default: the inventory's pgbackrest_stanza, else its "
                                    "patroni_scope, as the pgbackrest role names it)")
    p.add_argument('--repo-host', default='bk1', help='the pgBackRest repository host (lab host name)')
    p.add_argument('--repo-user', default='postgres', help='the user running pgbackrest info on it')
    p.add_argument('--ca-file', help='cluster CA certificate (default: ~/.pgha/pki/<patroni_scope>/ca.crt)')
    p.add_argument('--timeout', type=int, default=3600, help='bound of each long step: pgbench -i, a backup, the restore')
    p.add_argument('--archive-timeout', type=int, default=60, help='bound: the markers\' WAL segment archived')
    p.add_argument('--settle-timeout', type=int, default=600, help='bound: a healthy cluster, a leader after the restore')
    p.add_argument('--results-dir', default='bench/results')
    a = p.parse_args(argv)
    # the name goes into SQL text as it is
    if not re.match(r'^[a-z_][a-z0-9_]*$', a.database):
        p.error('--database: a lower-case SQL identifier')
    return a


def main(argv=None):
    args = parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    bench = None
    try:
        bench = BackupBench(args)
        return bench.run()
    except BenchError as exc:
        print('bench-backup: %s' % exc, file=sys.stderr)
        if bench is not None:
            bench.results['errors'].append(str(exc))
        return 2
    except KeyboardInterrupt:
        print('bench-backup: interrupted', file=sys.stderr)
        if bench is not None:
            bench.results['errors'].append('interrupted')
        return 130
    finally:
        if bench is not None:
            try:
                bench.save()
            except Exception:
                pass


if __name__ == '__main__':
    sys.exit(main())
