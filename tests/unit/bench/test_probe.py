# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/probe.py: the analysis functions on synthetic logs (pure, fast), the CLI glue, and
`run` against a throwaway PostgreSQL when its binaries exist on this machine (skipped, and so
not counted as passing, when they do not; the lab exercises `run` through PgBouncer); with the
same binaries, `pitr` after a real point-in-time recovery of such a server.

`run --connect-mode blocking` also runs against local TCP servers that speak just enough of the
PostgreSQL protocol to stall real libpq where a dead or frozen pooler would (FakePg): no mock of
the probe's code, real sockets, real libpq."""

import glob
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from ansible_collections.pgha.cluster.tests.unit.utils import REPO, load_script

PROBE_PATH = os.path.join(REPO, 'bench', 'probe.py')
probe = load_script('bench/probe.py', 'pgha_bench_probe')


def synth(pattern, t0=1000.0, interval=0.05, latency=0.01, run_id='r1'):
    """A log from a pattern: per attempt 'o' ok, 'x' failed, 's' ok but stalled 2 s,
    'c' failed during commit (in doubt), 'k' cut at the end of the run."""
    recs = [{'type': 'start', 'run_id': run_id, 't': t0}]
    t = t0
    for i, ch in enumerate(pattern, 1):
        lat = 2.0 if ch == 's' else latency
        rec = {'type': 'attempt', 'id': i, 't_start': t, 't_end': t + lat, 'ok': ch in 'os',
               'phase': 'done' if ch in 'os' else ('commit' if ch == 'c' else 'connect'),
               'error_class': None if ch in 'os' else 'OperationalError', 'error': None}
        if ch == 'k':
            rec['cut'] = True
            rec['error_class'] = 'Stopped'
        recs.append(rec)
        t = max(t + interval, t + lat)
    recs.append({'type': 'end', 't': t})
    return recs


# ---------------------------------------------------------------------------------------------
# gaps and stalls

def test_longest_gap_plain():
    g = probe.longest_gap([1.0, 1.1, 1.2, 3.2, 3.3])
    assert g['gap'] == pytest.approx(2.0)
    assert (g['from'], g['to'], g['open']) == (1.2, 3.2, False)


def test_longest_gap_needs_two_points():
    assert probe.longest_gap([1.0])['gap'] is None
    assert probe.longest_gap([])['gap'] is None


def test_longest_gap_window_counts_from_last_ack_before_and_to_first_after():
    acks = [1.0, 2.0, 10.0, 10.1]
    # the outage 2.0 -> 10.0 began before the window and ended after it: counted whole
    g = probe.longest_gap(acks, lo=3.0, hi=5.0)
    assert g['gap'] == pytest.approx(8.0)
    assert (g['from'], g['to'], g['open']) == (2.0, 10.0, False)


def test_longest_gap_open_when_writes_never_resumed():
    g = probe.longest_gap([1.0, 2.0], lo=3.0, hi=9.0)
    assert g['gap'] == pytest.approx(7.0)
    assert g['open'] is True


def test_longest_gap_window_without_acks_before():
    g = probe.longest_gap([5.0, 5.1], lo=3.0, hi=9.0)
    assert g['gap'] == pytest.approx(3.9)  # 5.1 -> hi 9.0 open vs lo -> 5.0: 2.0
    assert g['open'] is True


def test_summarize_counts_failures_stall_and_in_doubt():
    recs = synth('ooooxxxxcoosoo')
    attempts = probe.split_log(recs)[1]
    s = probe.summarize(attempts)
    assert s['attempts'] == 14
    assert s['acknowledged'] == 9
    assert s['failed'] == 5
    assert s['in_doubt'] == 1
    assert s['longest_attempt'] == pytest.approx(2.0)
    assert s['longest_attempt_ok'] is True
    # last ok ack at attempt 4 (t=1000.15+0.01), next at attempt 10 (1000.45+0.01)
    assert s['longest_gap'] == pytest.approx(2.0, abs=0.06)  # the stall dominates
    assert s['errors'] == {'OperationalError/connect': 4, 'OperationalError/commit': 1}


def test_cut_attempt_is_not_a_failure():
    recs = synth('oooook')
    rep = probe.analyze(recs)
    assert rep['overall']['attempts'] == 5
    assert rep['overall']['failed'] == 0


def test_outage_gap():
    recs = synth('ooooo' + 'x' * 40 + 'ooooo')
    rep = probe.analyze(recs)
    o = rep['overall']
    assert o['failed'] == 40
    assert o['longest_gap'] == pytest.approx(41 * 0.05)


# ---------------------------------------------------------------------------------------------
# event windows

def test_event_windows_pairs_and_open_ends():
    evs = [{'t': 5.0, 'name': 'crash', 'phase': 'start'},
           {'t': 9.0, 'name': 'crash', 'phase': 'end'},
           {'t': 12.0, 'name': 'graceful', 'phase': 'start'},
           {'t': 20.0, 'name': 'note', 'phase': 'point'}]
    ws = probe.event_windows(evs, log_end=30.0)
    assert [(w['name'], w['start'], w['end'], w['closed']) for w in ws] == [
        ('crash', 5.0, 9.0, True), ('graceful', 12.0, 20.0, False), ('note', 20.0, 30.0, False)]


def test_event_windows_unsorted_input_and_stray_end():
    evs = [{'t': 9.0, 'name': 'a', 'phase': 'end'}, {'t': 1.0, 'name': 'b', 'phase': 'end'},
           {'t': 5.0, 'name': 'a', 'phase': 'start'}]
    ws = probe.event_windows(evs, log_end=10.0)
    assert [(w['name'], w['start'], w['end'], w['closed']) for w in ws] == [('a', 5.0, 9.0, True)]


def test_analyze_per_window():
    # 100 attempts at 50 ms from t=1000; failures between attempt 41 and 60
    recs = synth('o' * 40 + 'x' * 20 + 'o' * 40)
    evs = [{'t': 1001.99, 'name': 'crash', 'phase': 'start'}, {'t': 1004.0, 'name': 'crash', 'phase': 'end'}]
    rep = probe.analyze(recs, evs)
    w = rep['windows'][0]
    assert w['name'] == 'crash' and w['closed']
    assert w['failed'] == 20
    assert w['longest_gap'] == pytest.approx(21 * 0.05)
    assert w['first_failure'] == pytest.approx(1002.0, abs=0.01)
    assert rep['overall']['failed'] == 20
    text = probe.format_report(rep)
    assert 'crash' in text and 'overall' in text


# ---------------------------------------------------------------------------------------------
# lost acknowledged writes

def test_find_lost():
    recs = synth('oooxcoo')  # ids 1-3 ok, 4 failed, 5 in doubt, 6-7 ok
    res = probe.find_lost(recs, {1, 2, 3, 5, 7})
    assert res['acknowledged'] == 5
    assert res['lost'] == 1 and res['lost_ids'] == [6]
    assert res['in_doubt'] == 1 and res['in_doubt_present'] == 1
    assert res['failed_but_present'] == 0


def test_find_lost_none():
    recs = synth('ooooo')
    assert probe.find_lost(recs, {1, 2, 3, 4, 5, 99})['lost'] == 0


# ---------------------------------------------------------------------------------------------
# pitr: the probe's rows after a point-in-time restore

def test_parse_target():
    assert probe.parse_target('2026-12-01 10:15:00.123+00') == pytest.approx(1796120100.123)
    assert probe.parse_target('2026-12-01T11:15:00.123+01:00') == pytest.approx(1796120100.123)
    assert probe.parse_target('2026-12-01T10:15:00Z') == pytest.approx(1796120100.0)
    assert probe.parse_target(' 1796120100.5 ') == 1796120100.5
    with pytest.raises(ValueError, match='no UTC offset'):
        probe.parse_target('2026-12-01 10:15:00')
    with pytest.raises(ValueError):
        probe.parse_target('yesterday')


def test_pitr_check_counts_before_after_and_straddling():
    # 10 attempts of 10 ms every 50 ms from t=1000: id i runs [1000 + 0.05 (i-1), ... + 0.01]
    recs = synth('ooxocooooo')
    target = 1000.205  # inside attempt 5 (1000.20 - 1000.21): it straddles
    res = probe.pitr_check(recs, {1, 2, 4, 5}, target)
    # before: acknowledged 1, 2, 4 (3 failed: not judged); after: 6-10, all absent
    assert res == {'before_acked': 3, 'before_missing': 0, 'before_missing_ids': [], 'after_begun': 5,
                   'after_present': 0, 'after_present_ids': [], 'straddling': 1, 'ok': True}
    # a straddling id absent is fine as well; an acknowledged id before the target missing and
    # an id begun after it present (acknowledged or not) are not
    res = probe.pitr_check(recs, {1, 4, 3, 7}, target)
    assert (res['before_missing'], res['before_missing_ids']) == (1, [2])
    assert (res['after_present'], res['after_present_ids']) == (1, [7])
    assert res['ok'] is False


def test_pitr_check_failed_or_cut_after_the_target_must_be_absent():
    recs = synth('ooxxk')
    res = probe.pitr_check(recs, {1, 2, 3, 4, 5}, 1000.03)
    assert res['before_acked'] == 1 and res['straddling'] == 0
    assert res['after_begun'] == 4 and res['after_present_ids'] == [2, 3, 4, 5]


def test_pitr_check_lists_at_most_20_ids():
    recs = synth('o' * 50)
    target = 1000.0 + 25 * 0.05 - 0.02  # between attempt 25 and 26
    res = probe.pitr_check(recs, set(), target)
    assert res['before_missing'] == 25 and res['before_missing_ids'] == list(range(1, 21))
    res = probe.pitr_check(recs, set(range(1, 51)), target)
    assert res['after_present'] == 25 and res['after_present_ids'] == list(range(26, 46))


def test_pitr_cli_arguments():
    args = probe.build_parser().parse_args(['pitr', '--log', 'l', '--dsn', 'd', '--target', '2026-12-01 10:15:00+00',
                                            '--run-id', 'r', '--json', 'o'])
    assert (args.func, args.target, args.run_id, args.json, args.wait) == (probe.cmd_pitr, '2026-12-01 10:15:00+00',
                                                                           'r', 'o', 30.0)
    with pytest.raises(SystemExit):
        probe.build_parser().parse_args(['pitr', '--log', 'l', '--dsn', 'd'])


def test_pitr_refuses_a_bad_target_or_a_log_without_run_id(tmp_path, capsys):
    log = tmp_path / 'probe.log'
    log.write_text('')
    assert probe.main(['pitr', '--log', str(log), '--dsn', 'host=/nonexistent', '--target', '10:15']) == 2
    assert probe.main(['pitr', '--log', str(log), '--dsn', 'host=/nonexistent', '--target', '1000']) == 2
    assert 'no start record' in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# wait --acks / --more

def _ack_line(i):
    return json.dumps({'type': 'attempt', 'id': i, 't_start': 1.0, 't_end': 1.1, 'ok': True}) + '\n'


def test_wait_more_counts_from_the_acknowledgements_already_logged(tmp_path):
    log = tmp_path / 'probe.log'
    log.write_text(''.join(_ack_line(i) for i in range(1, 6)))
    # 5 in the log: --acks 5 is met at once, --more 1 is not until another arrives
    assert probe.main(['wait', '--log', str(log), '--acks', '5', '--timeout', '1']) == 0
    t0 = time.time()
    assert probe.main(['wait', '--log', str(log), '--more', '1', '--timeout', '0.3']) == 1
    assert time.time() - t0 < 2

    def append_later():
        time.sleep(0.3)
        with open(log, 'a') as fh:
            fh.write(_ack_line(6) + _ack_line(7))
    writer = threading.Thread(target=append_later)
    writer.start()
    try:
        assert probe.main(['wait', '--log', str(log), '--more', '2', '--timeout', '10']) == 0
    finally:
        writer.join()


def test_wait_more_arguments():
    with pytest.raises(SystemExit, match='needs --log'):
        probe.main(['wait', '--more', '3'])
    with pytest.raises(SystemExit):  # --acks and --more exclude each other
        probe.build_parser().parse_args(['wait', '--log', 'l', '--acks', '1', '--more', '1'])


def test_read_jsonl_skips_torn_line(tmp_path):
    p = tmp_path / 'log'
    p.write_text(json.dumps({'type': 'start', 'run_id': 'x', 't': 1}) + '\n{"type": "att')
    assert len(probe.read_jsonl(str(p))) == 1


def test_mask_dsn():
    assert 'secret' not in probe.mask_dsn('host=a password=secret dbname=app')
    assert 'secret' not in probe.mask_dsn("host=a password='se cret' dbname=app")
    assert 'secret' not in probe.mask_dsn('postgresql://app:secret@h:6432/app')


# ---------------------------------------------------------------------------------------------
# CLI glue

def test_cli_mark_report_json(tmp_path, capsys):
    log = tmp_path / 'probe.log'
    ev = tmp_path / 'events'
    log.write_text('\n'.join(json.dumps(r) for r in synth('o' * 20 + 'x' * 10 + 'o' * 20)) + '\n')
    assert probe.main(['mark', '--events', str(ev), '--name', 'f', '--phase', 'start', '--time', '1000.9']) == 0
    assert probe.main(['mark', '--events', str(ev), '--name', 'f', '--phase', 'end', '--time', '1002.0']) == 0
    out = tmp_path / 'rep.json'
    assert probe.main(['report', '--log', str(log), '--events', str(ev), '--json', str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep['windows'][0]['failed'] == 10
    assert 'overall' in capsys.readouterr().out


def test_stop_without_process(tmp_path):
    pid_file = tmp_path / 'pid'
    assert probe.stop_pid(str(pid_file)) == 'no pid file'
    pid_file.write_text('999999999\n')
    assert probe.stop_pid(str(pid_file)) == 'not running'


# ---------------------------------------------------------------------------------------------
# run against a real, throwaway PostgreSQL (only where its binaries exist)

def _pg_bin():
    for d in sorted(glob.glob('/usr/lib/postgresql/*/bin'), reverse=True) + [os.path.dirname(shutil.which('initdb') or '')]:
        if d and os.path.exists(os.path.join(d, 'initdb')) and os.path.exists(os.path.join(d, 'pg_ctl')):
            return d
    return None


def _free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class LocalPg:
    """Throwaway PostgreSQL servers in a temp dir of their own (pytest's is private to root, and
    the servers run as postgres when the tests run as root). Skips the test where that cannot be."""

    def __init__(self):
        self.bindir = _pg_bin()
        if self.bindir is None:
            pytest.skip('NOT TESTED: no PostgreSQL server binaries (initdb/pg_ctl) on this machine')
        if probe.psycopg2 is None:
            pytest.skip('NOT TESTED: psycopg2 missing')
        self.pre = []
        if os.geteuid() == 0:  # initdb refuses root; run the cluster as the postgres user if present
            try:
                import pwd
                pwd.getpwnam('postgres')
            except (ImportError, KeyError):
                pytest.skip('NOT TESTED: running as root without a postgres user')
            self.pre = ['runuser', '-u', 'postgres', '--']
        self.dir = tempfile.mkdtemp(prefix='pgha-probe-test-')
        os.chmod(self.dir, 0o777)
        self.started = []

    def run(self, tool, *args, timeout=60):
        return subprocess.run(self.pre + [os.path.join(self.bindir, tool)] + list(args), check=True,
                              capture_output=True, timeout=timeout)

    def initdb(self, data):
        self.run('initdb', '-D', data, '-U', 'postgres', '--auth=trust', '-N')

    def start(self, data, port, *settings):
        """Start the server of data on 127.0.0.1:port; its DSN. settings: '-c name=value' pairs."""
        opts = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off %s" % (port, self.dir, ' '.join(settings))
        self.run('pg_ctl', '-D', data, '-o', opts, '-l', data + '.log', '-w', '-t', '20', 'start', timeout=30)
        self.started.append(data)
        return 'host=127.0.0.1 port=%d user=postgres dbname=postgres' % port

    def cleanup(self):
        for data in self.started:
            subprocess.run(self.pre + [os.path.join(self.bindir, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w',
                                       '-t', '20', 'stop'], capture_output=True, timeout=30, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def local_pg():
    pg = LocalPg()
    try:
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
def throwaway_pg(local_pg):
    data = os.path.join(local_pg.dir, 'data')
    local_pg.initdb(data)
    return local_pg.start(data, _free_port())


def test_run_and_verify_against_real_postgres(throwaway_pg, tmp_path):
    log = str(tmp_path / 'probe.log')
    t0 = time.time()
    rc = subprocess.run([sys.executable, PROBE_PATH, 'run', '--dsn', throwaway_pg, '--interval', '0.02',
                         '--duration', '1.5', '--log', log], capture_output=True, text=True, timeout=20, check=False)
    assert rc.returncode == 0, rc.stderr
    assert time.time() - t0 < 10
    rep = probe.analyze(probe.read_jsonl(log))
    assert rep['complete'] and rep['overall']['acknowledged'] > 10
    assert rep['overall']['failed'] == 0
    rc = subprocess.run([sys.executable, PROBE_PATH, 'verify', '--log', log, '--dsn', throwaway_pg, '--wait', '5'],
                        capture_output=True, text=True, timeout=20, check=False)
    assert rc.returncode == 0, rc.stdout + rc.stderr
    assert 'LOST 0' in rc.stdout
    # a lost acknowledged write is detected: forge an acknowledged id that was never written
    with open(log, 'a') as fh:
        fh.write(json.dumps({'type': 'attempt', 'id': 10 ** 9, 't_start': t0, 't_end': t0, 'ok': True}) + '\n')
    rc = subprocess.run([sys.executable, PROBE_PATH, 'verify', '--log', log, '--dsn', throwaway_pg, '--wait', '5'],
                        capture_output=True, text=True, timeout=20, check=False)
    assert rc.returncode == 1
    assert 'LOST 1' in rc.stdout


def _sql(dsn, sql, params=None):
    conn = probe.psycopg2.connect(dsn, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def test_pitr_after_a_real_point_in_time_recovery(local_pg, tmp_path):
    """A base backup, the probe writing, WAL archived; a copy recovered to a time in the middle of
    the run: pitr passes; then a write acknowledged before the target deleted and one begun after
    it inserted: pitr fails and names both."""
    archive = os.path.join(local_pg.dir, 'archive')
    os.mkdir(archive)
    os.chmod(archive, 0o777)
    primary, copy = os.path.join(local_pg.dir, 'primary'), os.path.join(local_pg.dir, 'copy')
    local_pg.initdb(primary)
    dsn = local_pg.start(primary, _free_port(), '-c archive_mode=on', "-c archive_command='cp %%p %s/%%f'" % archive)
    local_pg.run('pg_basebackup', '-d', dsn, '-D', copy, '-X', 'stream', '-c', 'fast')
    log = str(tmp_path / 'probe.log')
    rc = subprocess.run([sys.executable, PROBE_PATH, 'run', '--dsn', dsn, '--interval', '0.02', '--duration', '1.5',
                         '--log', log], capture_output=True, text=True, timeout=20, check=False)
    assert rc.returncode == 0, rc.stderr
    attempts = probe.split_log(probe.read_jsonl(log))[1]
    target = (attempts[0]['t_start'] + attempts[-1]['t_end']) / 2
    # as PostgreSQL prints it: what a restore is given and what pitr must parse
    target_text = time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(target)) + ('%.6f' % (target % 1))[1:] + '+00'
    segment = _sql(dsn, 'SELECT pg_walfile_name(pg_switch_wal())')[0][0]
    end = time.time() + 10
    while (_sql(dsn, 'SELECT last_archived_wal FROM pg_stat_archiver')[0][0] or '') < segment:
        assert time.time() < end, 'WAL segment %s not archived within 10 s' % segment
        time.sleep(0.1)
    with open(os.path.join(copy, 'postgresql.auto.conf'), 'a') as fh:
        fh.write("restore_command = 'cp %s/%%f %%p'\nrecovery_target_time = '%s'\n"
                 "recovery_target_action = 'promote'\n" % (archive, target_text))
    open(os.path.join(copy, 'recovery.signal'), 'w').close()
    restored = local_pg.start(copy, _free_port(), '-c archive_mode=off')

    def pitr():
        out = tmp_path / 'pitr.json'
        rc = subprocess.run([sys.executable, PROBE_PATH, 'pitr', '--log', log, '--dsn', restored, '--target', target_text,
                             '--wait', '15', '--json', str(out)], capture_output=True, text=True, timeout=30, check=False)
        res = json.loads(rc.stdout)
        assert res == json.loads(out.read_text())
        return rc.returncode, res
    # pitr waits (--wait) while the copy is still recovering: it reads the promoted server only
    code, res = pitr()
    assert code == 0, res
    assert res['before_acked'] > 5 and res['after_begun'] > 5
    assert (res['before_missing'], res['after_present'], res['target']) == (0, 0, target_text)
    before = max(a['id'] for a in attempts if a.get('ok') and a['t_end'] < target)
    after = min(a['id'] for a in attempts if a['t_start'] > target)
    run_id = probe.split_log(probe.read_jsonl(log))[0]['run_id']
    _sql(restored, 'DELETE FROM probe_writes WHERE run_id = %s AND id = %s', (run_id, before))
    _sql(restored, 'INSERT INTO probe_writes (run_id, id) VALUES (%s, %s)', (run_id, after))
    code, res = pitr()
    assert code == 1
    assert (res['before_missing_ids'], res['after_present_ids'], res['ok']) == ([before], [after], False)


# ---------------------------------------------------------------------------------------------
# run --connect-mode blocking (libpq multi-host): bounded waits against stalling local servers

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102


def _pg_msg(kind, payload=b''):
    return kind + struct.pack('!I', len(payload) + 4) + payload


def _recv_exact(conn, n):
    data = b''
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class FakePg:
    """A TCP server on 127.0.0.1 speaking the first steps of the PostgreSQL protocol.

    mode 'mute': refuses SSL/GSS encryption ('N'), reads the startup packet, never answers (a
    pooler that stalls during the handshake). mode 'stall': completes the startup
    (AuthenticationOk, BackendKeyData, ReadyForQuery), then reads queries and never answers; a
    cancel request is read and neither answered nor closed (libpq's PQcancel waits for the close:
    a frozen peer)."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.queries = 0
        self.cancels = 0
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            if select.select([self.sock], [], [], 0.05)[0]:
                try:
                    conn = self.sock.accept()[0]
                except OSError:
                    return
                self.conns.append(conn)
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            while True:
                head = _recv_exact(conn, 8)
                if head is None:
                    return
                length, code = struct.unpack('!II', head)
                if length > 8 and _recv_exact(conn, length - 8) is None:
                    return
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    conn.sendall(b'N')
                    continue
                if code == CANCEL_REQUEST:
                    self.cancels += 1
                    return  # kept open (self.conns) until close(): PQcancel waits
                break
            if self.mode == 'mute':
                return
            out = _pg_msg(b'R', struct.pack('!I', 0))
            for key, val in (('client_encoding', 'UTF8'), ('DateStyle', 'ISO, MDY'), ('server_version', '17.0'),
                             ('standard_conforming_strings', 'on'), ('integer_datetimes', 'on')):
                out += _pg_msg(b'S', key.encode() + b'\0' + val.encode() + b'\0')
            conn.sendall(out + _pg_msg(b'K', struct.pack('!II', 4242, 1234)) + _pg_msg(b'Z', b'I'))
            while True:
                head = _recv_exact(conn, 5)
                if head is None or _recv_exact(conn, struct.unpack('!I', head[1:])[0] - 4) is None:
                    return
                if head[:1] == b'Q':
                    self.queries += 1
        except OSError:
            return

    def close(self):
        self.closing = True
        for conn in [self.sock] + self.conns:
            try:
                conn.close()
            except OSError:
                pass


@pytest.fixture
def fake_pg():
    servers = []

    def make(mode):
        servers.append(FakePg(mode))
        return servers[-1]
    yield make
    for srv in servers:
        srv.close()


@pytest.fixture
def silent_port():
    """A port that accepts TCP (the kernel's queue) and never answers: a host that swallows
    libpq's first packet. Nothing ever accepts."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


def _refused_port():
    return _free_port()  # bound, then closed: nothing listens, connections are refused


def run_probe(tmp_path, dsn, *args, timeout=25, name='probe.log'):
    """probe.py run as a process (what the bench runs); (records, wall seconds, process)."""
    log = str(tmp_path / name)
    t0 = time.time()
    res = subprocess.run([sys.executable, PROBE_PATH, 'run', '--dsn', dsn, '--log', log] + list(args),
                         capture_output=True, text=True, timeout=timeout, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return probe.read_jsonl(log), time.time() - t0, res


def _attempts(records):
    return probe.split_log(records)[1]


def test_libpq_connect_timeout():
    if probe.psycopg2 is None:
        pytest.skip('NOT TESTED: psycopg2 missing')
    # whole seconds, rounded up, at least 2 (libpq reads 1 as 2) ...
    assert probe.libpq_connect_timeout('host=a', 0.5) == 2
    assert probe.libpq_connect_timeout('host=a', 2.0) == 2
    assert probe.libpq_connect_timeout('host=a', 2.2) == 3
    # ... unless the DSN has its own
    assert probe.libpq_connect_timeout('host=a,b connect_timeout=5', 2.0) is None
    assert probe.libpq_connect_timeout('postgresql://u@a:1,b:2/app?connect_timeout=4', 2.0) is None
    with pytest.raises(ValueError):
        probe.Probe('host=a', 1, 1, '/dev/null', connect_mode='sync')


def test_blocking_multihost_connect_is_bounded_by_libpq(tmp_path, silent_port):
    """First host swallows packets, second refuses: libpq gives up host 1 after connect_timeout
    (2 s) and fails at host 2; one failed attempt of about connect_timeout x hosts, no hang."""
    if probe.psycopg2 is None:
        pytest.skip('NOT TESTED: psycopg2 missing')
    dsn = 'host=127.0.0.1,127.0.0.1 port=%d,%d dbname=app user=app' % (silent_port, _refused_port())
    recs, wall, _res = run_probe(tmp_path, dsn, '--connect-mode', 'blocking', '--connect-timeout', '2',
                                 '--attempt-timeout', '10', '--interval', '0.05', '--duration', '1.5')
    start, attempts, end = probe.split_log(recs)
    assert start['connect_mode'] == 'blocking' and start['libpq_connect_timeout'] == 2
    assert end['reason'] == 'duration reached'
    first = attempts[0]
    assert first['ok'] is False and first['phase'] == 'connect'
    assert first['error_class'] == 'OperationalError'  # libpq's own failure, not our deadline
    assert 'timeout expired' in first['error'] or 'refused' in first['error']
    assert 1.0 <= first['t_end'] - first['t_start'] <= 4.0  # connect_timeout (2 s) x 2 hosts at most
    assert first['via'] is None
    assert wall < 12


def test_async_mode_logs_connect_mode(tmp_path, fake_pg):
    if probe.psycopg2 is None:
        pytest.skip('NOT TESTED: psycopg2 missing')
    srv = fake_pg('mute')
    recs, wall, _res = run_probe(tmp_path, 'host=127.0.0.1 port=%d dbname=app user=app' % srv.port,
                                 '--connect-timeout', '0.5', '--duration', '0.6')
    start, attempts, _end = probe.split_log(recs)
    assert start['connect_mode'] == 'async' and start['libpq_connect_timeout'] is None
    assert attempts and 'via' not in attempts[0]  # async records unchanged
    assert attempts[0]['error_class'] == 'Timeout'


def test_blocking_watchdog_abandons_a_connect_that_never_completes(tmp_path, fake_pg):
    """The server reads the startup packet and never answers: libpq would wait connect_timeout
    (2 s); the attempt is a Timeout at --attempt-timeout (0.5 s), logged like async mode's."""
    if probe.psycopg2 is None:
        pytest.skip('NOT TESTED: psycopg2 missing')
    srv = fake_pg('mute')
    recs, wall, _res = run_probe(tmp_path, 'host=127.0.0.1 port=%d dbname=app user=app' % srv.port,
                                 '--connect-mode', 'blocking', '--attempt-timeout', '0.5', '--duration', '0.8')
    attempts = _attempts(recs)
    first = attempts[0]
    assert (first['ok'], first['phase'], first['error_class']) == (False, 'connect', 'Timeout')
    assert first['error'].startswith('no answer within 0.5s')
    assert 0.45 <= first['t_end'] - first['t_start'] <= 1.2
    assert all(a['error_class'] == 'Timeout' for a in attempts)
    assert wall < 6


def test_blocking_watchdog_cancels_then_shuts_the_socket(tmp_path, fake_pg):
    """Startup completes, then no statement is ever answered and a cancel request neither: the
    cancel (from a child process: psycopg2's conn.cancel() would hold the GIL while PQcancel
    waits) does not help, the socket is shut down CANCEL_GRACE later; a Timeout within ~1 s."""
    if probe.psycopg2 is None:
        pytest.skip('NOT TESTED: psycopg2 missing')
    srv = fake_pg('stall')
    recs, wall, _res = run_probe(tmp_path, 'host=127.0.0.1 port=%d dbname=app user=app' % srv.port,
                                 '--connect-mode', 'blocking', '--attempt-timeout', '0.5', '--duration', '1.0')
    attempts = _attempts(recs)
    first = attempts[0]
    assert (first['ok'], first['phase'], first['error_class']) == (False, 'ddl', 'Timeout')
    assert 'socket shut down' in first['error']
    assert first['via'] == '127.0.0.1:%d' % srv.port
    assert 0.45 <= first['t_end'] - first['t_start'] <= 1.5
    assert srv.queries >= 1 and srv.cancels >= 1
    # the next attempt reconnects (the stalled connection was dropped)
    assert len(srv.conns) - srv.cancels >= 2
    assert wall < 8


def test_blocking_sigterm_stops_a_stalled_statement_at_once(tmp_path, fake_pg):
    """The main thread never sits in libpq: SIGTERM ends a stalled statement within the watch
    step, not at --attempt-timeout (30 s here)."""
    if probe.psycopg2 is None:
        pytest.skip('NOT TESTED: psycopg2 missing')
    srv = fake_pg('stall')
    log = str(tmp_path / 'probe.log')
    proc = subprocess.Popen([sys.executable, PROBE_PATH, 'run', '--connect-mode', 'blocking', '--dsn',
                             'host=127.0.0.1 port=%d dbname=app user=app' % srv.port, '--attempt-timeout', '30',
                             '--duration', '60', '--log', log], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.time() + 10
        while srv.queries < 1 and time.time() < end:
            time.sleep(0.05)
        assert srv.queries >= 1, 'the probe never sent its first statement'
        time.sleep(0.2)
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.time() - t0 < 2.5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    start, attempts, end_rec = probe.split_log(probe.read_jsonl(log))
    assert end_rec['reason'] == 'signal %d' % signal.SIGTERM
    assert attempts[-1]['error_class'] == 'Stopped' and attempts[-1]['cut'] is True


def _pg_port(dsn):
    return int(re.search(r'port=(\d+)', dsn).group(1))


def test_blocking_multihost_run_against_real_postgres(throwaway_pg, tmp_path, silent_port):
    """First host swallows packets, second is a real PostgreSQL: libpq moves on after
    connect_timeout and the probe writes; the same DSN in async mode never gets past host 1."""
    port = _pg_port(throwaway_pg)
    dsn = 'host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=postgres target_session_attrs=read-write' % (
        silent_port, port)
    recs, wall, _res = run_probe(tmp_path, dsn, '--connect-mode', 'blocking', '--connect-timeout', '2',
                                 '--interval', '0.02', '--duration', '3.5', '--attempt-timeout', '10')
    start, attempts, end = probe.split_log(recs)
    assert start['connect_mode'] == 'blocking'
    rep = probe.analyze(recs)
    assert rep['complete'] and rep['overall']['failed'] == 0 and rep['overall']['acknowledged'] > 10
    first = attempts[0]
    assert 1.0 <= first['t_end'] - first['t_start'] <= 4.0  # host 1's connect_timeout, then host 2
    assert {a['via'] for a in attempts} == {'127.0.0.1:%d' % port}
    assert {a['node'] for a in attempts} == {'127.0.0.1'}
    present = probe.fetch_present(throwaway_pg, start['run_id'], wait=5)
    assert probe.find_lost(recs, present)['lost'] == 0
    # why the mode exists: asynchronous connections never leave the silent first host
    recs, wall, _res = run_probe(tmp_path, dsn, '--connect-timeout', '1', '--duration', '1.5', name='async.log')
    rep = probe.analyze(recs)
    assert rep['overall']['acknowledged'] == 0 and rep['overall']['failed'] >= 1
    assert set(rep['overall']['errors']) == {'Timeout/connect'}


def test_blocking_cancel_ends_a_lock_wait_on_real_postgres(throwaway_pg, tmp_path):
    """A real stall on a live server (INSERT waiting on a lock): the cancel request ends it
    within CANCEL_GRACE (no socket shutdown needed); writes resume once the lock is gone and
    nothing acknowledged is lost."""
    import psycopg2
    admin = psycopg2.connect(throwaway_pg, connect_timeout=5)
    try:
        with admin.cursor() as cur:
            cur.execute(probe.TABLE_DDL)
            admin.commit()
            cur.execute('LOCK TABLE probe_writes IN ACCESS EXCLUSIVE MODE')  # held until rollback
        log = str(tmp_path / 'probe.log')
        proc = subprocess.Popen([sys.executable, PROBE_PATH, 'run', '--connect-mode', 'blocking', '--dsn', throwaway_pg,
                                 '--attempt-timeout', '0.5', '--interval', '0.05', '--duration', '3', '--log', log],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(1.4)
            admin.rollback()
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    finally:
        admin.close()
    recs = probe.read_jsonl(log)
    attempts = _attempts(recs)
    stalled = [a for a in attempts if a['error_class'] == 'Timeout']
    assert stalled and all(a['phase'] == 'insert' for a in stalled)
    assert any('cancel requested, the call returned' in a['error'] for a in stalled)
    assert all(a['t_end'] - a['t_start'] < 1.5 for a in stalled)
    assert attempts[-1]['ok'] is True
    present = probe.fetch_present(throwaway_pg, probe.split_log(recs)[0]['run_id'], wait=5)
    res = probe.find_lost(recs, present)
    assert res['acknowledged'] > 5 and res['lost'] == 0


# ---------------------------------------------------------------------------------------------
# plot.py (only where matplotlib is installed: it is a bench dependency, not a test one)

def test_plot_timeline_writes_png(tmp_path):
    pytest.importorskip('matplotlib')
    plot = load_script('bench/plot.py', 'pgha_bench_plot')
    evs = [{'t': 1001.0, 'name': 'crash', 'phase': 'start'}, {'t': 1004.0, 'name': 'crash', 'phase': 'end'}]
    lanes = [{'label': 'crash/default#1', 'log': synth('o' * 20 + 'x' * 30 + 's' + 'o' * 20), 'events': evs},
             {'label': 'crash/reference#1', 'log': synth('o' * 20 + 'x' * 60 + 'o' * 20), 'events': evs},
             {'label': 'switchover/default#1', 'log': synth('o' * 40), 'events': []}]
    d = plot.lane_data(lanes[0]['log'], evs)
    assert d['t0'] == 1001.0 and d['end'] == pytest.approx(3.0) and len(d['fail']) == 30
    out = str(tmp_path / 't.png')
    plot.plot_timeline(lanes, out, title='t', window=(-2, 8))
    with open(out, 'rb') as fh:
        assert fh.read(8) == b'\x89PNG\r\n\x1a\n'
