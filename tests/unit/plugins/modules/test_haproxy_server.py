# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""haproxy_server against a real fake HAProxy (stats page and runtime API socket)."""

import json

import pytest

from ansible_collections.pgha.cluster.plugins.modules import haproxy_server as module
from ansible_collections.pgha.cluster.tests.unit.utils import run_module


@pytest.fixture(params=['page', 'socket'])
def conn(request, haproxy):
    if request.param == 'page':
        return dict(stats_url=haproxy.url, stats_user='admin', stats_password='statspw', timeout=2)
    return dict(socket=haproxy.socket_path, timeout=2)


def test_read_everything(conn):
    r = run_module(module, dict(conn))
    assert not r.failed and not r['changed']
    assert {(s['backend'], s['server'], s['status']) for s in r['servers']} >= {('postgres_write', 'pg1', 'UP'),
                                                                                ('postgres_read', 'pg2', 'UP')}
    assert 'statspw' not in json.dumps(r)


def test_force_up_and_wait(conn, haproxy):
    r = run_module(module, dict(conn, backend='postgres_write', server='pg2', state='up'))
    assert not r.failed and r['changed'] and r['server']['status'] == 'DOWN'
    r = run_module(module, dict(conn, backend='postgres_write', server='pg1', state='down', wait_for_up=['pg2'],
                                wait_timeout=2, poll_interval=0.05))
    assert not r.failed and r['changed'] and r['up'] == ['pg2'] and r['elapsed'] < 2
    r = run_module(module, dict(conn, backend='postgres_write', server='pg1', state='down'))
    assert not r.failed and not r['changed']
    assert len(haproxy.actions) == 2


def test_check_mode_is_honest(conn, haproxy):
    r = run_module(module, dict(conn, backend='postgres_write', server='pg2', state='maint'), check_mode=True)
    assert not r.failed and r['changed'] and not haproxy.actions
    r = run_module(module, dict(conn, backend='postgres_write', server='pg1', state='up'), check_mode=True)
    assert not r.failed and not r['changed']


def test_wait_timeout_fails_clearly(conn):
    r = run_module(module, dict(conn, backend='postgres_write', wait_for_up=['pg3'], wait_timeout=0.3,
                                poll_interval=0.05))
    assert r.failed and "UP servers of postgres_write are ['pg1']" in r['msg'] and "exactly ['pg3']" in r['msg']
    r = run_module(module, dict(conn, backend='postgres_read', wait_for_up=['pg2'], wait_match='contains',
                                wait_timeout=0.3))
    assert not r.failed


def test_wait_for_drained(conn, haproxy):
    r = run_module(module, dict(conn, wait_for_drained=['pg1'], wait_timeout=0.3, poll_interval=0.05))
    assert r.failed and 'not drained' in r['msg'] and 'postgres_write/pg1 UP' in r['msg']
    haproxy.apply('postgres_write', 'pg1', 'health', 'down')
    r = run_module(module, dict(conn, wait_for_drained=['pg1', 'pg1_leader'], wait_timeout=1, poll_interval=0.05))
    assert not r.failed and len(r['servers']) == 2


@pytest.mark.parametrize('extra,needle', [
    (dict(backend='nope'), 'no server in backend nope'),
    (dict(backend='postgres_write', server='pg9', state='up'), 'has no server pg9'),
])
def test_bad_names(conn, extra, needle):
    r = run_module(module, dict(conn, **extra))
    assert r.failed and needle in r['msg']


def test_arguments():
    r = run_module(module, dict(backend='postgres_write'))
    assert r.failed and 'socket' in r['msg']
    r = run_module(module, dict(socket='/x', stats_url='http://h:7000/'))
    assert r.failed and 'mutually exclusive' in r['msg']
    r = run_module(module, dict(socket='/x', state='up'))
    assert r.failed and 'server' in r['msg']
