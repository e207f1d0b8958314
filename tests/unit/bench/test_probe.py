# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/probe.py: the analysis functions on synthetic logs (pure, fast), the CLI glue, and
`run` against a throwaway PostgreSQL when its binaries exist on this machine (skipped, and so
not counted as passing, when they do not; the lab exercises `run` through PgBouncer)."""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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


@pytest.fixture
def throwaway_pg():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip('NOT TESTED: no PostgreSQL server binaries (initdb/pg_ctl) on this machine')
    if probe.psycopg2 is None:
        pytest.skip('NOT TESTED: psycopg2 missing')
    pre = []
    if os.geteuid() == 0:  # initdb refuses root; run the cluster as the postgres user if present
        try:
            import pwd
            pwd.getpwnam('postgres')
        except (ImportError, KeyError):
            pytest.skip('NOT TESTED: running as root without a postgres user')
        pre = ['runuser', '-u', 'postgres', '--']
    # own temp dir: pytest's is private to root, and the server runs as postgres
    tmp_path = tempfile.mkdtemp(prefix='pgha-probe-test-')
    os.chmod(tmp_path, 0o777)
    data = os.path.join(tmp_path, 'data')
    port = _free_port()
    try:
        subprocess.run(pre + [os.path.join(bindir, 'initdb'), '-D', data, '-U', 'postgres', '--auth=trust', '-N'],
                       check=True, capture_output=True, timeout=60)
    except Exception:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise
    opts = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (port, tmp_path)
    subprocess.run(pre + [os.path.join(bindir, 'pg_ctl'), '-D', data, '-o', opts, '-l', os.path.join(tmp_path, 'pg.log'),
                          '-w', '-t', '20', 'start'], check=True, capture_output=True, timeout=30)
    try:
        yield 'host=127.0.0.1 port=%d user=postgres dbname=postgres' % port
    finally:
        subprocess.run(pre + [os.path.join(bindir, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', '-t', '20', 'stop'],
                       capture_output=True, timeout=30, check=False)
        shutil.rmtree(tmp_path, ignore_errors=True)


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
