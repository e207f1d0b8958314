# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgha_switchover against real local servers: a fake Patroni cluster (HTTP), two fake PgBouncer
admin consoles (PostgreSQL wire protocol, psycopg2 talks to them) and two fake HAProxies (stats page
over HTTP, runtime API over a Unix socket)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.pgha.cluster.plugins.modules import pgha_switchover as module
from ansible_collections.pgha.cluster.tests.unit.fake_haproxy import FakeHAProxy
from ansible_collections.pgha.cluster.tests.unit.fake_pgbouncer import FakePgBouncer
from ansible_collections.pgha.cluster.tests.unit.utils import REPO, run_module

PGB_PASSWORD = 'pgb-Secret-9'
STATS_PASSWORD = 'stats-Secret-7'
API_PASSWORD = 'secret'


@pytest.fixture
def stack(make_fake, tmp_path):
    patroni = make_fake('4.0.7')
    poolers = [FakePgBouncer(password=PGB_PASSWORD, auth='md5', name='b1'),
               FakePgBouncer(password=PGB_PASSWORD, auth='cleartext', name='b2')]
    haproxies = [FakeHAProxy(auth=('admin', STATS_PASSWORD)), FakeHAProxy(socket_dir=tmp_path)]
    yield patroni, poolers, haproxies
    for x in poolers + haproxies:
        x.stop()


def args(stack, **extra):
    patroni, poolers, haproxies = stack
    a = dict(api_url=patroni.urls, api_username='patroni', api_password=API_PASSWORD, timeout=2,
             leader='pg1', candidate='pg2',
             pgbouncers=[dict(host='127.0.0.1', port=p.port, password=PGB_PASSWORD, sslmode='disable',
                              connect_timeout=2) for p in poolers],
             haproxies=[dict(stats_url=haproxies[0].url, user='admin', password=STATS_PASSWORD),
                        dict(socket=haproxies[1].socket_path, name='balancer2')],
             pause_timeout=2, switchover_timeout=3, routing_timeout=2, poll_interval=0.05)
    a.update(extra)
    return a


def post_times(patroni):
    return [t for t, m, method, path in patroni.request_times if method == 'POST' and path == '/switchover']


def assert_no_secret(result):
    text = json.dumps(result)
    for secret in (PGB_PASSWORD, STATS_PASSWORD, API_PASSWORD):
        assert secret not in text


def test_happy_path_order_and_phases(stack):
    patroni, poolers, haproxies = stack
    r = run_module(module, args(stack))
    assert not r.failed, r['msg']
    assert r['changed'] and r['old_leader'] == 'pg1' and r['new_leader'] == 'pg2'
    assert r['timeline_after'] == r['timeline_before'] + 1
    assert patroni.leader == 'pg2'
    for p in poolers:
        assert p.words() == ['PAUSE', 'RECONNECT', 'RESUME'] and not p.paused
    post = post_times(patroni)
    assert len(post) == 1
    # every PAUSE before the switchover; write routing after it; RESUME after the write routing;
    # the read backend only after RESUME (it is not on the clients' path)
    assert max(p.times('PAUSE')[0] for p in poolers) < post[0]
    writes = [a for h in haproxies for a in h.actions if a[1] == 'postgres_write']
    reads = [a for h in haproxies for a in h.actions if a[1] == 'postgres_read']
    assert writes and min(a[0] for a in writes) > post[0]
    assert min(p.times('RECONNECT')[0] for p in poolers) > max(a[0] for a in writes)
    assert reads and min(a[0] for a in reads) > max(p.times('RESUME')[0] for p in poolers)
    for h in haproxies:
        assert h.up('postgres_write') == ['pg2']
        assert h.backends['postgres_read']['pg2']['status'] == 'DOWN'
        expected = {('postgres_write', 'pg2', 'up'), ('postgres_write', 'pg1', 'down'),
                    ('postgres_write', 'pg3', 'down'), ('postgres_read', 'pg2', 'down')}
        assert {(a[1], a[2], a[4]) for a in h.actions} == expected
    ph = r['phases']
    assert all(isinstance(ph[k], float) for k in ('pause_s', 'switchover_s', 'routing_s', 'resume_s', 'stall_s'))
    assert ph['stall_s'] >= ph['pause_s'] + ph['switchover_s'] + ph['routing_s'] + ph['resume_s'] - 0.05
    stall = max(p.times('RESUME')[0] for p in poolers) - min(p.times('PAUSE')[0] for p in poolers)
    assert stall <= ph['stall_s'] + 0.01
    assert [x['resumed'] for x in r['pgbouncers']] == [True, True]
    assert [x['up'] for x in r['haproxies']] == [['pg2'], ['pg2']] and r['haproxies'][1]['name'] == 'balancer2'
    assert r['watchdog'] == 'released'
    assert 'pg1 -> pg2' in r['msg']
    assert_no_secret(r)


def test_candidate_already_leads(stack):
    patroni, poolers, haproxies = stack
    r = run_module(module, args(stack, candidate='pg1'))
    assert not r.failed and not r['changed'] and 'already is the leader' in r['msg']
    assert not any(p.commands for p in poolers) and not post_times(patroni)


def test_check_mode_sends_nothing(stack):
    patroni, poolers, haproxies = stack
    r = run_module(module, args(stack), check_mode=True)
    assert not r.failed and r['changed'] and r['new_leader'] == 'pg2' and 'would switch over' in r['msg']
    assert not any(p.commands for p in poolers)
    assert all(p.connections == 1 for p in poolers)
    assert not post_times(patroni) and patroni.leader == 'pg1'
    assert not any(h.actions for h in haproxies)


def test_waits_for_cascading_standbys_then_pauses_at_once(stack):
    patroni, poolers, haproxies = stack
    started = []

    def catch_up():
        patroni.members['pg2'].replication = [{'application_name': 'pg3', 'state': 'streaming'}]

    def cascade():
        started.append(time.monotonic())
        patroni.members['pg2'].replication = [{'application_name': 'pg3', 'state': 'catchup'}]
        patroni.later(0.3, catch_up)

    patroni.later(0.5, cascade)
    r = run_module(module, args(stack, streaming_from_candidate=['pg3'], streaming_timeout=5))
    assert not r.failed, r['msg']
    assert r['new_leader'] == 'pg2' and r['streaming_wait_s'] >= 0.2
    # nothing paused before pg3 streamed from the candidate
    assert min(p.times('PAUSE')[0] for p in poolers) > started[0] + 0.3
    assert any('pg3 stream(s) from pg2' in e['event'] for e in r['events'])


def test_cascading_standby_that_never_streams_is_waited_for_within_the_bound_only(stack):
    patroni, poolers, haproxies = stack
    patroni.members['pg2'].replication = [{'application_name': 'pg3', 'state': 'catchup'}]
    r = run_module(module, args(stack, streaming_from_candidate=['pg3', 'pg4'], streaming_timeout=0.5))
    assert not r.failed, r['msg']
    # at least the bound; at most the bound plus one slow request (timeout 2 s) and some slack
    assert 0.5 <= r['streaming_wait_s'] < 5, r['streaming_wait_s']
    # Also a warning; the events are checked (ansible-core's warning list is process-global, and
    # other in-process module runs of the suite can leave it empty here).
    assert any('pg3, pg4 did not stream from pg2 within streaming_timeout=0.5s' in e['event'] for e in r['events'])
    # the switchover itself went on, with the pause bounded as always
    assert patroni.leader == 'pg2', r['events']
    for p in poolers:
        assert p.words() == ['PAUSE', 'RECONNECT', 'RESUME'], r['events']


def test_pause_failing_on_second_pooler_resumes_the_first(stack):
    patroni, poolers, haproxies = stack
    poolers[1].fail['PAUSE'] = 'pause refused for the test'
    r = run_module(module, args(stack))
    assert r.failed
    assert 'PAUSE failed on 127.0.0.1:%d' % poolers[1].port in r['msg'] and 'pause refused for the test' in r['msg']
    assert 'nothing else was changed' in r['msg'] and 'Patroni was not asked' in r['msg']
    assert poolers[0].words() == ['PAUSE', 'RESUME'] and not poolers[0].paused
    assert not post_times(patroni) and patroni.leader == 'pg1'
    assert not any(h.actions for h in haproxies)
    assert_no_secret(r)


def test_pause_that_never_completes_is_bounded(stack):
    patroni, poolers, haproxies = stack
    poolers[1].hang_pause = True
    start = time.monotonic()
    r = run_module(module, args(stack, pause_timeout=0.5))
    assert time.monotonic() - start < 5
    assert r.failed and 'did not complete within pause_timeout=0.5' in r['msg']
    assert 'RESUME' in poolers[0].words() and not poolers[0].paused
    assert 'RESUME' in poolers[1].words()
    assert not post_times(patroni)


def test_switchover_timeout_still_resumes(stack):
    patroni, poolers, haproxies = stack
    patroni.members['pg1'].faults['hang_post'] = 4
    start = time.monotonic()
    r = run_module(module, args(stack, switchover_timeout=0.6))
    assert time.monotonic() - start < 4
    assert r.failed and 'did not lead within switchover_timeout=0.6' in r['msg']
    assert 'Every PgBouncer was resumed' in r['msg']
    for p in poolers:
        assert p.words()[0] == 'PAUSE' and p.words()[-1] == 'RESUME' and not p.paused
    assert not any(h.actions for h in haproxies)
    assert r['phases']['stall_s'] >= 0.6


def test_patroni_refusal_fails_fast_and_resumes(stack):
    patroni, poolers, haproxies = stack
    patroni.overrides[('POST', '/switchover')] = (412, 'candidate name does not match with sync_standby')
    r = run_module(module, args(stack))
    assert r.failed and 'Patroni did not switch over' in r['msg'] and 'sync_standby' in r['msg']
    assert all(p.words() == ['PAUSE', 'RECONNECT', 'RESUME'] for p in poolers)
    assert r['phases']['stall_s'] < 2


def test_routing_error_still_resumes(stack):
    patroni, poolers, haproxies = stack
    haproxies[0].fail_actions = True
    r = run_module(module, args(stack))
    assert r.failed and 'The switchover to pg2 happened' in r['msg'] and 'did not do the action' in r['msg']
    assert all(p.words()[-1] == 'RESUME' and not p.paused for p in poolers)
    assert patroni.leader == 'pg2'
    assert r['haproxies'][0]['error'] and r['haproxies'][1]['error'] is None
    assert_no_secret(r)


def test_routing_timeout_still_resumes(stack):
    patroni, poolers, haproxies = stack
    haproxies[1].ignore_actions = True
    r = run_module(module, args(stack, routing_timeout=0.5))
    assert r.failed and 'within routing_timeout=0.5' in r['msg'] and "['pg1']" in r['msg']
    assert all(p.words()[-1] == 'RESUME' and not p.paused for p in poolers)


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_during_switchover_resumes(stack, sig):
    patroni, poolers, haproxies = stack
    patroni.members['pg1'].faults['hang_post'] = 4
    done = threading.Event()

    def interrupt_once_paused():
        # Not on a fixed timer: on a loaded machine the module may still be in its preflight (no
        # handler yet, and a SIGINT there would end the whole pytest session) or already done.
        deadline = time.monotonic() + 10
        while not done.is_set() and time.monotonic() < deadline:
            if all(p.paused for p in poolers) and post_times(patroni):
                os.kill(os.getpid(), sig)
                return
            time.sleep(0.02)

    sender = threading.Thread(target=interrupt_once_paused, daemon=True)
    sender.start()
    try:
        r = run_module(module, args(stack, switchover_timeout=5))
    except KeyboardInterrupt:
        pytest.fail('SIGINT reached the test outside the module\'s handler')
    finally:
        done.set()
        sender.join(5)
    assert r.failed and 'interrupted' in r['msg'] and 'every PgBouncer was resumed' in r['msg']
    assert all(p.words()[-1] == 'RESUME' and not p.paused for p in poolers)
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) or callable(signal.getsignal(signal.SIGTERM))


def test_resume_failure_says_what_to_do(stack):
    patroni, poolers, haproxies = stack
    poolers[0].fail['RESUME'] = 'resume refused for the test'
    r = run_module(module, args(stack, watchdog=False))
    assert r.failed and r['msg'].startswith('RESUME FAILED')
    assert 'PgBouncer on 127.0.0.1:%d may still be paused' % poolers[0].port in r['msg']
    assert 'dbname=pgbouncer" -c RESUME' in r['msg'] and 'The switchover itself completed' in r['msg']
    assert_no_secret(r)


def test_preflight_refusals_change_nothing(stack):
    patroni, poolers, haproxies = stack
    for extra, needle in ((dict(leader='pg3'), 'the leader is pg1, not pg3'),
                          (dict(candidate='pg9'), 'not a member'),
                          (dict(server_names={'pg2': 'db2'}), 'has no server db2')):
        r = run_module(module, args(stack, **extra))
        assert r.failed and needle in r['msg'] and 'nothing was changed' in r['msg']
    stopped = FakePgBouncer(password=PGB_PASSWORD)
    stopped.stop()
    a = args(stack)
    a['pgbouncers'].append(dict(host='127.0.0.1', port=stopped.port, password='wrong', sslmode='disable',
                                connect_timeout=1))
    r = run_module(module, a)
    assert r.failed and 'cannot reach the PgBouncer admin console' in r['msg']
    assert not any(p.commands for p in poolers) and not post_times(patroni) and patroni.leader == 'pg1'
    assert not any(h.actions for h in haproxies)


def test_tls_admin_console(stack, tmp_path):
    from ansible_collections.pgha.cluster.tests.unit.utils import make_ca, make_leaf, write_pem
    patroni, poolers, haproxies = stack
    ca_key, ca = make_ca('test-ca')
    key, cert = make_leaf(ca_key, ca, 'pgbouncer')
    tls = FakePgBouncer(password=PGB_PASSWORD, tls=(write_pem(tmp_path / 'c.pem', cert), write_pem(tmp_path / 'k.pem', key)))
    try:
        a = args(stack)
        a['pgbouncers'] = [dict(host='127.0.0.1', port=tls.port, password=PGB_PASSWORD, sslmode='verify-full',
                                sslrootcert=write_pem(tmp_path / 'ca.pem', ca), connect_timeout=2)]
        r = run_module(module, a)
        assert not r.failed, r['msg']
        assert tls.words() == ['PAUSE', 'RECONNECT', 'RESUME']
    finally:
        tls.stop()


def test_watchdog_resumes_after_sigkill(stack, tmp_path):
    """The module runs in its own process, is SIGKILLed while PgBouncer is paused; the watchdog resumes."""
    patroni, poolers, haproxies = stack
    patroni.members['pg1'].faults['hang_post'] = 8
    a = args(stack, switchover_timeout=10)
    path = tmp_path / 'args.json'
    path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': a}))
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, '.collections'))
    proc = subprocess.Popen([sys.executable, '-m', 'ansible_collections.pgha.cluster.plugins.modules.pgha_switchover',
                             str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 10
        while not all(p.paused for p in poolers) and time.monotonic() < end:
            time.sleep(0.02)
        assert all(p.paused for p in poolers), 'the module did not pause in time'
        proc.kill()
        killed = time.monotonic()
        proc.wait(5)
        while any(p.paused for p in poolers) and time.monotonic() < killed + 5:
            time.sleep(0.02)
        assert not any(p.paused for p in poolers), 'the watchdog did not resume'
        assert all(p.words()[-1] == 'RESUME' for p in poolers)
        assert max(p.times('RESUME')[-1] for p in poolers) - killed < 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


def test_bad_arguments():
    r = run_module(module, dict(candidate='pg2', pgbouncers=[], haproxies=[], poll_interval=0))
    assert r.failed and 'poll_interval' in r['msg'] and 'nothing was sent' in r['msg']
    r = run_module(module, dict(candidate='pg2', pgbouncers=[], haproxies=[{'name': 'x'}]))
    assert r.failed and 'stats_url' in r['msg']
