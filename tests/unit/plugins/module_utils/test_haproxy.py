# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/haproxy against a real fake HAProxy (stats page over HTTP, runtime API Unix socket)."""

import time

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.haproxy import (
    HAProxyClient,
    HAProxyError,
    in_state,
    is_up,
    parse_csv,
)


@pytest.fixture(params=['page', 'socket'])
def client(request, haproxy):
    if request.param == 'page':
        return HAProxyClient(stats_url=haproxy.url, user='admin', password='statspw', timeout=2)
    return HAProxyClient(socket_path=haproxy.socket_path, timeout=2)


def test_parse_csv_is_robust():
    text = ('# pxname,svname,scur,status,check_status\n'
            'postgres_write,FRONTEND,0,OPEN,\n\n'
            'postgres_write,pg1,3,UP,L7OK\n'
            'postgres_write,"pg,2",0,DOWN 1/2,L7STS\n\n')
    rows = parse_csv(text)
    assert [r['svname'] for r in rows] == ['FRONTEND', 'pg1', 'pg,2']
    assert rows[2]['status'] == 'DOWN 1/2'
    for bad in ('', '<html>login</html>', '# a,b\n'):
        with pytest.raises(HAProxyError):
            parse_csv(bad)


def test_states():
    assert is_up('UP') and is_up('UP 1/2') and not is_up('DOWN') and not is_up('DRAIN') and not is_up('no check')
    assert in_state('UP', 'up') and not in_state('UP 1/2', 'up') and in_state('DOWN', 'down')
    assert in_state('MAINT (via x)', 'maint') and in_state('DRAIN', 'drain') and in_state('UP', 'ready')
    assert not in_state('MAINT', 'ready')


def test_read_set_wait(client, haproxy):
    rows = client.servers('postgres_write')
    assert [(r['server'], r['status']) for r in rows] == [('pg1', 'UP'), ('pg2', 'DOWN'), ('pg3', 'DOWN')]
    assert rows[0]['check'] == 'L7OK' and rows[0]['scur'] == 0
    assert {r['backend'] for r in client.servers()} == {'postgres_write', 'postgres_read'}
    client.set_server('postgres_write', 'pg2', 'up')
    client.set_server('postgres_write', 'pg1', 'down')
    done, up, elapsed, error = client.wait_up('postgres_write', ['pg2'], 1, 0.05)
    assert done and up == ['pg2'] and error is None
    client.set_server('postgres_read', 'pg3', 'maint')
    assert haproxy.backends['postgres_read']['pg3']['status'] == 'MAINT'
    client.set_server('postgres_read', 'pg3', 'ready')
    assert haproxy.backends['postgres_read']['pg3']['status'] == 'UP'
    assert [a[1:] for a in haproxy.actions][:2] == [('postgres_write', 'pg2', 'health', 'up'),
                                                    ('postgres_write', 'pg1', 'health', 'down')]


def test_wait_is_bounded_and_sees_a_late_change(client, haproxy):
    start = time.monotonic()
    done, up, elapsed, error = client.wait_up('postgres_write', ['pg3'], 0.3, 0.05)
    assert not done and up == ['pg1'] and 0.3 <= time.monotonic() - start < 1.5
    haproxy.apply('postgres_write', 'pg1', 'health', 'down')
    done, rows, elapsed, error = client.wait_drained(['pg1', 'pg1_leader'], None, 1, 0.05)
    assert done and [r['backend'] for r in rows] == ['postgres_write', 'postgres_read']
    haproxy.backends['postgres_write']['pg2']['scur'] = 2
    haproxy.apply('postgres_write', 'pg2', 'health', 'down')
    done, rows, elapsed, error = client.wait_drained(['pg2'], 'postgres_write', 0.2, 0.05)
    assert not done and rows[0]['scur'] == 2


def test_unknown_server(client):
    with pytest.raises(HAProxyError) as e:
        client.set_server('postgres_write', 'nope', 'down')
    assert 'nope' in str(e.value) or 'NONE' in str(e.value)


def test_page_errors(haproxy):
    bad = HAProxyClient(stats_url=haproxy.url, user='admin', password='wrong', timeout=2)
    with pytest.raises(HAProxyError) as e:
        bad.servers()
    assert '401' in str(e.value) and 'wrong' not in str(e.value)
    haproxy.admin = False
    page = HAProxyClient(stats_url=haproxy.url, user='admin', password='statspw', timeout=2)
    with pytest.raises(HAProxyError) as e:
        page.set_server('postgres_write', 'pg2', 'up')
    assert 'stats admin' in str(e.value) and 'DENY' in str(e.value)
    haproxy.stop()
    with pytest.raises(HAProxyError) as e:
        page.servers()
    assert 'cannot reach the HAProxy stats page' in str(e.value)


def test_socket_errors(tmp_path):
    with pytest.raises(HAProxyError) as e:
        HAProxyClient(socket_path=str(tmp_path / 'none.sock')).servers()
    assert 'cannot use the HAProxy runtime API socket' in str(e.value)
    with pytest.raises(HAProxyError):
        HAProxyClient()
    with pytest.raises(HAProxyError):
        HAProxyClient(socket_path='/x', stats_url='http://h:7000/')
