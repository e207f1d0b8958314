# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/keepalived/files/pgha-balancer-check.py against real local servers: a PgBouncer port on
127.0.0.1 that answers an SSLRequest ('N' or 'S'), answers garbage, closes without a word,
accepts but never answers (a listening socket never accepted: the timeout path) or refuses (a
bound socket that does not listen); HAProxy's runtime API on a Unix socket in a temporary
directory (reads "show stat", writes HAProxy 2.6's CSV, closes); and the peers' stats pages
(http.server serving the same CSV at "/;csv" behind HTTP basic auth), a peer that refuses and one
that never answers. Nothing of the script is mocked and no test sleeps: the slow paths wait out the
script's own timeout (TIMEOUT), and the tests check that they wait no longer."""

import base64
import json
import os
import shutil
import socket
import socketserver
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.pgha.cluster.tests.unit.utils import LocalHTTPServer, load_script

check_script = load_script('roles/keepalived/files/pgha-balancer-check.py', 'pgha_balancer_check')

TIMEOUT = 0.3              # the config's "timeout": each probe waits at most this long
MARGIN = 0.7               # a slow machine's allowance on top of a timeout
SSL_REQUEST = bytes.fromhex('0000000804d2162f')  # int32 8, int32 80877103, as a PostgreSQL client sends it
STATS_USER = 'admin'
STATS_PASSWORD = 'S3cret-stats-pw'
BACKEND = 'postgres_write'


# ---------------------------------------------------------------------------------------------
# HAProxy's `show stat` CSV (HAProxy 2.6's first 80 columns; a real line has more)

COLUMNS = ('pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,'
           'status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,'
           'type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,'
           'hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,'
           'comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,'
           'agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,'
           'agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot').split(',')
PROXY_IDS = {'stats': 2, 'postgres_write': 3, 'postgres_read': 4}
ADDRESSES = {'pg1': '10.0.0.11:5432', 'pg2': '10.0.0.12:5432', 'pg3': '10.0.0.13:5432'}


def _row(pxname, svname, status, sid=0, mode='tcp'):
    row = dict.fromkeys(COLUMNS, '')
    row.update(pxname=pxname, svname=svname, status=status, pid='1', iid=str(PROXY_IDS.get(pxname, 5)),
               sid=str(sid), mode=mode, qcur='0', scur='0', smax='2', stot='14', bin='2288', bout='9812')
    up = status.startswith('UP')
    checked = status != 'no check'
    if svname == 'FRONTEND':
        row.update(type='0', slim='2000', rate='0', rate_max='1', conn_rate='0', conn_rate_max='1', conn_tot='14')
    elif svname == 'BACKEND':
        row.update(type='1', weight='3', act='3', bck='0', lastchg='312', downtime='0', lbtot='14',
                   algo='roundrobin', lastsess='5', qtime='0', ctime='0', rtime='0', ttime='1204')
    elif checked:
        row.update(type='2', weight='1', act='1', bck='0', chkfail='3', chkdown='1', lastchg='312', downtime='40',
                   lbtot='14', addr=ADDRESSES[svname], lastsess='5', check_duration='2',
                   check_status='L7OK' if up else 'L7STS', check_code='200' if up else '503',
                   last_chk='HTTP status check returned code <3C>%s<3E>' % ('200' if up else '503'),
                   check_desc='Layer7 check passed' if up else 'Layer7 wrong status',
                   check_rise='3', check_fall='3', check_health='4' if up else '0')
    else:
        row.update(type='2', weight='1', act='1', bck='0', lastchg='312', lbtot='14', addr=ADDRESSES[svname])
    return ','.join(row[c] for c in COLUMNS) + ','   # HAProxy ends every line with a comma


def stat_csv(write=('UP', 'DOWN', 'DOWN'), read=('DOWN', 'UP', 'UP'), write_backend=BACKEND):
    """`show stat` of a balancer: a stats listener, then the listen sections `postgres_write` and
    `postgres_read` (FRONTEND, pg1..pg3, BACKEND), the statuses of pg1..pg3 given per section."""
    lines = ['# ' + ','.join(COLUMNS) + ',', _row('stats', 'FRONTEND', 'OPEN', mode='http')]
    for section, statuses in ((write_backend, write), ('postgres_read', read)):
        lines.append(_row(section, 'FRONTEND', 'OPEN'))
        for sid, (name, status) in enumerate(zip(('pg1', 'pg2', 'pg3'), statuses), 1):
            lines.append(_row(section, name, status, sid))
        up = any(s.startswith('UP') or s == 'no check' for s in statuses)
        lines.append(_row(section, 'BACKEND', 'UP' if up else 'DOWN'))
    return '\n'.join(lines) + '\n\n'   # the runtime API ends its answer with an empty line


def test_stat_csv_looks_like_haproxys():
    text = stat_csv(write=('UP 1/2', 'DOWN 1/2', 'no check'))
    lines = text.split('\n')
    assert lines[0].startswith('# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,'
                               'eresp,wretr,wredis,status,')
    assert lines[-2:] == ['', '']
    rows = [line.split(',') for line in lines[1:-2]]
    assert all(len(r) == len(COLUMNS) + 1 and r[-1] == '' for r in rows)
    status = COLUMNS.index('status')
    assert [(r[0], r[1], r[status]) for r in rows] == [
        ('stats', 'FRONTEND', 'OPEN'),
        ('postgres_write', 'FRONTEND', 'OPEN'), ('postgres_write', 'pg1', 'UP 1/2'),
        ('postgres_write', 'pg2', 'DOWN 1/2'), ('postgres_write', 'pg3', 'no check'),
        ('postgres_write', 'BACKEND', 'UP'),
        ('postgres_read', 'FRONTEND', 'OPEN'), ('postgres_read', 'pg1', 'DOWN'),
        ('postgres_read', 'pg2', 'UP'), ('postgres_read', 'pg3', 'UP'), ('postgres_read', 'BACKEND', 'UP')]


# ---------------------------------------------------------------------------------------------
# PgBouncer: a TCP port on 127.0.0.1

class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class PgBouncerPort(object):
    """Reads the client's first 8 bytes (recorded in self.received) and writes `reply` (b'N': a
    PgBouncer without TLS; b'S': with TLS; b'': closes without a word; anything else: garbage)."""

    def __init__(self, reply=b'N'):
        self.reply = reply
        self.received = []
        port = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                data = b''
                try:
                    while len(data) < 8:
                        chunk = self.request.recv(8 - len(data))
                        if not chunk:
                            break
                        data += chunk
                    port.received.append(data)
                    if not port.reply:
                        return  # socketserver closes the connection
                    self.request.sendall(port.reply)
                    self.request.recv(1)  # until the client closes (a real PgBouncer waits for more)
                except OSError:
                    pass

        self.server = _TCPServer(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Ports(object):
    """Ports of 127.0.0.1 that refuse (a bound socket that does not listen: the kernel resets the
    connection) or never answer (a listening socket never accepted: the kernel completes the
    connection, nobody reads the request)."""

    def __init__(self):
        self.socks = []

    def _socket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socks.append(s)
        s.bind(('127.0.0.1', 0))
        return s, s.getsockname()[1]

    def refusing(self):
        return self._socket()[1]

    def silent(self):
        s, port = self._socket()
        s.listen(64)
        return port

    def close(self):
        for s in self.socks:
            s.close()


@pytest.fixture
def ports():
    p = Ports()
    yield p
    p.close()


@pytest.fixture
def pgbouncer():
    made = []

    def factory(reply=b'N'):
        made.append(PgBouncerPort(reply))
        return made[-1]
    yield factory
    for p in made:
        p.stop()


# ---------------------------------------------------------------------------------------------
# HAProxy's runtime API: a Unix socket in a temporary directory

class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class RuntimeAPI(object):
    """Reads one command line (recorded in self.commands) and answers `show stat` with self.csv,
    anything else with HAProxy's "Unknown command", then closes, as HAProxy does in non-interactive
    mode."""

    def __init__(self, directory, csv_text):
        self.csv = csv_text
        self.commands = []
        self.path = os.path.join(directory, 'admin.sock')
        api = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                line = self.rfile.readline().decode()
                api.commands.append(line)
                if line.strip() == 'show stat':
                    self.wfile.write(api.csv.encode())
                else:
                    self.wfile.write(b'Unknown command: \'%s\'\n\n' % line.strip().encode())

        self.server = _UnixServer(self.path, Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sockdir():
    # not pytest's tmp_path: a Unix socket's path has at most 107 bytes
    d = tempfile.mkdtemp(prefix='ka-')
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def haproxy(sockdir):
    """This balancer's HAProxy; its `show stat` is haproxy.csv (pg1 the writer unless a test says
    otherwise)."""
    api = RuntimeAPI(sockdir, stat_csv())
    yield api
    api.stop()


# ---------------------------------------------------------------------------------------------
# a peer's HAProxy stats page: http.server on 127.0.0.1

class StatsPage(object):
    """HAProxy's stats page: "/;csv" answers self.csv to the right basic-auth credentials, 401
    (with HAProxy's WWW-Authenticate) to none or wrong ones, 404 elsewhere. Every request line
    and Authorization header is recorded."""

    def __init__(self, csv_text, user=STATS_USER, password=STATS_PASSWORD):
        self.csv = csv_text
        self.requests = []   # (request line, Authorization header or None)
        self.token = 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
        page = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                page.requests.append((self.requestline, self.headers.get('Authorization')))
                if self.headers.get('Authorization') != page.token:
                    return self.answer(401, 'text/html', '<html><body><h1>401 Unauthorized</h1></body></html>\n',
                                       {'WWW-Authenticate': 'Basic realm="HAProxy Statistics"'})
                if self.path != '/;csv':
                    return self.answer(404, 'text/html', '<html><body><h1>404 Not Found</h1></body></html>\n')
                self.answer(200, 'text/csv', page.csv)

            def answer(self, status, ctype, body, headers=None):
                data = body.encode()
                self.send_response(status)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = LocalHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/;csv' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stats_page():
    made = []

    def factory(csv_text):
        made.append(StatsPage(csv_text))
        return made[-1]
    yield factory
    for p in made:
        p.stop()


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch):
    # the tests that want a proxy setting set it themselves
    for var in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY',
                'no_proxy', 'NO_PROXY'):
        monkeypatch.delenv(var, raising=False)


def config(pgbouncer_port, haproxy_socket, peers=(), **extra):
    conf = {'pgbouncer': {'host': '127.0.0.1', 'port': pgbouncer_port}, 'haproxy_socket': haproxy_socket,
            'write_backend': BACKEND, 'peers': [{'name': n, 'url': u} for n, u in peers],
            'stats_user': STATS_USER, 'stats_password': STATS_PASSWORD, 'timeout': TIMEOUT}
    conf.update(extra)
    return conf


def timed_check(conf):
    start = time.monotonic()
    healthy, reason = check_script.check(conf)
    return healthy, reason, time.monotonic() - start


# ---------------------------------------------------------------------------------------------
# PgBouncer's greeting

@pytest.mark.parametrize('reply', [b'N', b'S'])
def test_pgbouncer_answering_an_ssl_request_answers(pgbouncer, reply):
    pgb = pgbouncer(reply)
    assert check_script.pgbouncer_answers('127.0.0.1', pgb.port, TIMEOUT) is None
    assert pgb.received == [SSL_REQUEST]


@pytest.mark.parametrize('reply', [b'E', b'HTTP/1.1 400 Bad Request\r\n\r\n', b''])
def test_pgbouncer_answering_anything_else_does_not(pgbouncer, reply):
    pgb = pgbouncer(reply)
    start = time.monotonic()
    problem = check_script.pgbouncer_answers('127.0.0.1', pgb.port, TIMEOUT)
    assert time.monotonic() - start < TIMEOUT + MARGIN
    assert problem == 'PgBouncer 127.0.0.1:%d answered %r to an SSLRequest' % (pgb.port, reply[:1])


def test_pgbouncer_refusing_does_not_answer(ports):
    port = ports.refusing()
    start = time.monotonic()
    problem = check_script.pgbouncer_answers('127.0.0.1', port, TIMEOUT)
    assert time.monotonic() - start < TIMEOUT
    assert problem.startswith('PgBouncer 127.0.0.1:%d: ' % port) and 'refused' in problem


def test_pgbouncer_silent_does_not_answer_within_the_timeout(ports):
    port = ports.silent()
    start = time.monotonic()
    problem = check_script.pgbouncer_answers('127.0.0.1', port, TIMEOUT)
    elapsed = time.monotonic() - start
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + MARGIN
    assert problem == 'PgBouncer 127.0.0.1:%d: timed out' % port


# ---------------------------------------------------------------------------------------------
# HAProxy's CSV

def test_up_servers_counts_up_and_going_down_only():
    text = stat_csv(write=('UP', 'UP 1/2', 'DOWN'))
    assert check_script.up_servers(text, BACKEND) == ['pg1', 'pg2']
    assert check_script.up_servers(text, 'postgres_read') == ['pg2', 'pg3']
    assert check_script.up_servers(stat_csv(write=('DOWN 1/2', 'DOWN', 'MAINT')), BACKEND) == []
    # no check: HAProxy's status of a server without health checks; for the write backend (checked
    # against Patroni's /primary) that is no evidence of a leader
    assert check_script.up_servers(stat_csv(write=('no check', 'DOWN', 'DOWN')), BACKEND) == []
    assert check_script.up_servers(stat_csv(write=('MAINT', 'UP 2/3', 'DOWN 2/3')), BACKEND) == ['pg2']
    assert check_script.up_servers(stat_csv(), 'postgres_other') == []
    assert check_script.up_servers('', BACKEND) == []


def test_has_backend():
    text = stat_csv()
    assert check_script.has_backend(text, BACKEND)
    assert check_script.has_backend(text, 'postgres_read')
    assert not check_script.has_backend(text, 'postgres_other')
    assert not check_script.has_backend("Unknown command: 'show stat'\n\n", BACKEND)
    assert not check_script.has_backend('', BACKEND)


# ---------------------------------------------------------------------------------------------
# check(): this balancer alone

def test_healthy_with_a_local_writer(pgbouncer, haproxy):
    pgb = pgbouncer()
    healthy, reason, elapsed = timed_check(config(pgb.port, haproxy.path))
    assert (healthy, reason) == (True, 'PgBouncer answers; HAProxy writes to pg1')
    assert haproxy.commands == ['show stat\n']
    assert pgb.received == [SSL_REQUEST]
    assert elapsed < TIMEOUT


@pytest.mark.parametrize('write,writers', [
    (('UP', 'DOWN', 'DOWN'), 'pg1'),
    (('DOWN', 'DOWN', 'UP 1/2'), 'pg3'),             # going down: HAProxy still routes to it
    (('MAINT', 'UP', 'no check'), 'pg2'),
    (('UP', 'UP', 'DOWN 1/2'), 'pg1, pg2'),          # two writers (a split brain HAProxy still routes to)
])
def test_healthy_writer_statuses(pgbouncer, haproxy, write, writers):
    haproxy.csv = stat_csv(write=write)
    assert check_script.check(config(pgbouncer().port, haproxy.path)) == (
        True, 'PgBouncer answers; HAProxy writes to %s' % writers)


def test_defaults_of_the_config(pgbouncer, haproxy):
    # write_backend and timeout have defaults; the PgBouncer host defaults to 127.0.0.1
    conf = {'pgbouncer': {'port': pgbouncer().port}, 'haproxy_socket': haproxy.path}
    assert check_script.check(conf) == (True, 'PgBouncer answers; HAProxy writes to pg1')
    # as the role writes it: the port and the timeout may come as strings
    conf = config(str(pgbouncer().port), haproxy.path, timeout=str(TIMEOUT))
    assert check_script.check(conf)[0] is True


@pytest.mark.parametrize('kind', ['refusing', 'garbage', 'closing', 'silent'])
def test_unhealthy_when_pgbouncer_does_not_answer(pgbouncer, ports, haproxy, kind):
    port = {'refusing': ports.refusing, 'silent': ports.silent,
            'garbage': lambda: pgbouncer(b'\x00garbage').port, 'closing': lambda: pgbouncer(b'').port}[kind]()
    healthy, reason, elapsed = timed_check(config(port, haproxy.path))
    assert healthy is False
    assert reason.startswith('PgBouncer 127.0.0.1:%d' % port)
    assert elapsed < TIMEOUT + MARGIN
    assert haproxy.commands == []        # PgBouncer first: HAProxy is not asked


def test_unhealthy_when_the_haproxy_socket_is_missing(pgbouncer, sockdir):
    path = os.path.join(sockdir, 'missing.sock')
    healthy, reason, elapsed = timed_check(config(pgbouncer().port, path))
    assert healthy is False
    assert reason.startswith('HAProxy runtime API %s: ' % path) and 'No such file' in reason
    assert elapsed < TIMEOUT + MARGIN


def test_unhealthy_when_the_haproxy_socket_refuses(pgbouncer, sockdir):
    # a stale socket file that nobody listens on any more (HAProxy stopped)
    path = os.path.join(sockdir, 'stale.sock')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    healthy, reason = check_script.check(config(pgbouncer().port, path))
    assert healthy is False
    assert reason.startswith('HAProxy runtime API %s: ' % path) and 'refused' in reason


def test_unhealthy_when_the_haproxy_socket_is_silent(pgbouncer, sockdir):
    path = os.path.join(sockdir, 'silent.sock')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)   # never accepted
    try:
        healthy, reason, elapsed = timed_check(config(pgbouncer().port, path))
    finally:
        s.close()
    assert (healthy, reason) == (False, 'HAProxy runtime API %s: timed out' % path)
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + MARGIN


@pytest.mark.parametrize('answer', [stat_csv(write_backend='postgres_primary'),
                                    "Unknown command: 'show stat'\n\n", 'Permission denied\n\n', ''])
def test_unhealthy_when_haproxy_has_no_write_backend(pgbouncer, haproxy, stats_page, answer):
    haproxy.csv = answer
    peer = stats_page(stat_csv())
    assert check_script.check(config(pgbouncer().port, haproxy.path, [('lb2', peer.url)])) == (
        False, 'HAProxy has no backend postgres_write')
    assert peer.requests == []


def test_the_write_backend_is_configurable(pgbouncer, haproxy):
    haproxy.csv = stat_csv(write_backend='postgres_primary', write=('DOWN', 'UP', 'DOWN'))
    assert check_script.check(config(pgbouncer().port, haproxy.path, write_backend='postgres_primary')) == (
        True, 'PgBouncer answers; HAProxy writes to pg2')


# ---------------------------------------------------------------------------------------------
# check(): no local writer, the peers decide

NO_WRITER = ('DOWN', 'DOWN 1/2', 'MAINT')


def test_unhealthy_when_a_peer_has_a_writer(pgbouncer, haproxy, stats_page):
    haproxy.csv = stat_csv(write=NO_WRITER, read=('UP', 'UP', 'UP'))   # reads still go: they do not count
    peer = stats_page(stat_csv(write=('DOWN', 'UP', 'DOWN')))
    healthy, reason, elapsed = timed_check(config(pgbouncer().port, haproxy.path, [('lb2', peer.url)]))
    assert (healthy, reason) == (False, 'HAProxy has no write server UP; peer lb2 writes to pg2')
    assert peer.requests == [('GET /;csv HTTP/1.1', peer.token)]
    assert elapsed < TIMEOUT


def test_a_peer_going_down_still_counts(pgbouncer, haproxy, stats_page):
    haproxy.csv = stat_csv(write=('DOWN 1/2', 'DOWN', 'DOWN'))
    peer = stats_page(stat_csv(write=('DOWN', 'DOWN', 'UP 1/2')))
    assert check_script.check(config(pgbouncer().port, haproxy.path, [('lb2', peer.url)])) == (
        False, 'HAProxy has no write server UP; peer lb2 writes to pg3')


def test_a_peer_without_a_name_is_named_by_its_url(pgbouncer, haproxy, stats_page):
    haproxy.csv = stat_csv(write=NO_WRITER)
    peer = stats_page(stat_csv())
    conf = config(pgbouncer().port, haproxy.path)
    conf['peers'] = [{'url': peer.url}]
    assert check_script.check(conf) == (False, 'HAProxy has no write server UP; peer %s writes to pg1' % peer.url)


def test_the_first_peer_with_a_writer_is_named(pgbouncer, haproxy, stats_page, ports):
    haproxy.csv = stat_csv(write=NO_WRITER)
    lb2 = stats_page(stat_csv(write=NO_WRITER))
    lb4 = stats_page(stat_csv(write=('DOWN', 'DOWN', 'UP')))
    peers = [('lb2', lb2.url), ('lb3', 'http://127.0.0.1:%d/;csv' % ports.silent()), ('lb4', lb4.url)]
    healthy, reason, elapsed = timed_check(config(pgbouncer().port, haproxy.path, peers))
    assert (healthy, reason) == (False, 'HAProxy has no write server UP; peer lb4 writes to pg3')
    assert len(lb2.requests) == 1 and len(lb4.requests) == 1
    assert elapsed < TIMEOUT + MARGIN   # one silent peer: one timeout


NO_LEADER = (True, 'PgBouncer answers; no write server UP here nor on any peer (no leader for now)')


def test_healthy_when_no_balancer_has_a_writer(pgbouncer, haproxy, stats_page):
    haproxy.csv = stat_csv(write=NO_WRITER)
    lb2 = stats_page(stat_csv(write=('DOWN', 'DOWN', 'DOWN')))
    lb3 = stats_page(stat_csv(write=('no check', 'MAINT', 'DOWN 1/2'), read=('UP', 'UP', 'UP')))
    assert check_script.check(config(pgbouncer().port, haproxy.path, [('lb2', lb2.url), ('lb3', lb3.url)])) == NO_LEADER
    assert len(lb2.requests) == 1 and len(lb3.requests) == 1


def test_healthy_when_there_are_no_peers(pgbouncer, haproxy):
    haproxy.csv = stat_csv(write=NO_WRITER)
    assert check_script.check(config(pgbouncer().port, haproxy.path)) == NO_LEADER
    conf = config(pgbouncer().port, haproxy.path)
    del conf['peers']
    assert check_script.check(conf) == NO_LEADER


def test_healthy_when_the_peer_refuses(pgbouncer, haproxy, ports):
    haproxy.csv = stat_csv(write=NO_WRITER)
    peers = [('lb2', 'http://127.0.0.1:%d/;csv' % ports.refusing())]
    healthy, reason, elapsed = timed_check(config(pgbouncer().port, haproxy.path, peers))
    assert (healthy, reason) == NO_LEADER
    assert elapsed < TIMEOUT


def test_healthy_when_the_peer_is_silent_within_the_timeout(pgbouncer, haproxy, ports):
    haproxy.csv = stat_csv(write=NO_WRITER)
    peers = [('lb2', 'http://127.0.0.1:%d/;csv' % ports.silent())]
    healthy, reason, elapsed = timed_check(config(pgbouncer().port, haproxy.path, peers))
    assert (healthy, reason) == NO_LEADER
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + MARGIN


@pytest.mark.parametrize('user,password', [('', ''), (STATS_USER, 'wrong'), ('other', STATS_PASSWORD)])
def test_healthy_when_the_peer_refuses_the_credentials(pgbouncer, haproxy, stats_page, user, password):
    haproxy.csv = stat_csv(write=NO_WRITER)
    peer = stats_page(stat_csv())
    conf = config(pgbouncer().port, haproxy.path, [('lb2', peer.url)], stats_user=user, stats_password=password)
    assert check_script.check(conf) == NO_LEADER
    assert len(peer.requests) == 1
    assert peer.requests[0][1] == (None if not user else
                                   'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode())


def test_healthy_when_the_peer_page_is_not_the_csv(pgbouncer, haproxy, stats_page):
    haproxy.csv = stat_csv(write=NO_WRITER)
    peer = stats_page(stat_csv())
    url = peer.url.replace('/;csv', '/')        # 404 here; HAProxy would serve HTML
    assert check_script.check(config(pgbouncer().port, haproxy.path, [('lb2', url)])) == NO_LEADER
    assert len(peer.requests) == 1


def test_the_peers_are_reached_directly_whatever_the_proxy_settings(pgbouncer, haproxy, stats_page, ports,
                                                                    monkeypatch):
    # a peer on the balancers' own subnet is never behind a proxy: a proxy setting in keepalived's
    # environment or a shell's (running the check by hand) must not make the peer unreachable (nor
    # hand the stats password to the proxy). urllib's default opener reads the proxies once, when
    # first used: forget it, so that this test does not depend on the order of the tests.
    monkeypatch.setattr(urllib.request, '_opener', None)
    haproxy.csv = stat_csv(write=NO_WRITER)
    peer = stats_page(stat_csv())
    proxy = 'http://127.0.0.1:%d' % ports.refusing()
    for var in ('http_proxy', 'HTTP_PROXY', 'all_proxy'):
        monkeypatch.setenv(var, proxy)
    assert check_script.check(config(pgbouncer().port, haproxy.path, [('lb2', peer.url)])) == (
        False, 'HAProxy has no write server UP; peer lb2 writes to pg1')
    assert peer.requests == [('GET /;csv HTTP/1.1', peer.token)]


# ---------------------------------------------------------------------------------------------
# main(): what keepalived runs

def write_config(tmp_path, conf):
    path = tmp_path / 'pgha-balancer-check.json'
    path.write_text(json.dumps(conf, indent=2) + '\n')
    return str(path)


def run_main(capsys, *argv):
    rc = check_script.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_main_exit_0_when_healthy(tmp_path, capsys, pgbouncer, haproxy):
    path = write_config(tmp_path, config(pgbouncer().port, haproxy.path))
    assert run_main(capsys, '--config', path) == (0, 'healthy: PgBouncer answers; HAProxy writes to pg1\n', '')


def test_main_exit_1_when_unhealthy(tmp_path, capsys, ports, haproxy):
    port = ports.refusing()
    path = write_config(tmp_path, config(port, haproxy.path))
    rc, out, err = run_main(capsys, '--config', path)
    assert (rc, err) == (1, '')
    assert out.startswith('unhealthy: PgBouncer 127.0.0.1:%d: ' % port) and out.count('\n') == 1


def test_main_exit_1_when_a_peer_has_the_writer(tmp_path, capsys, pgbouncer, haproxy, stats_page):
    haproxy.csv = stat_csv(write=NO_WRITER)
    peer = stats_page(stat_csv())
    path = write_config(tmp_path, config(pgbouncer().port, haproxy.path, [('lb2', peer.url)]))
    assert run_main(capsys, '--config', path) == (
        1, 'unhealthy: HAProxy has no write server UP; peer lb2 writes to pg1\n', '')


def test_main_exit_0_when_no_balancer_has_a_writer(tmp_path, capsys, pgbouncer, haproxy, ports):
    haproxy.csv = stat_csv(write=NO_WRITER)
    path = write_config(tmp_path, config(pgbouncer().port, haproxy.path,
                                         [('lb2', 'http://127.0.0.1:%d/;csv' % ports.refusing())]))
    assert run_main(capsys, '--config', path) == (0, 'healthy: ' + NO_LEADER[1] + '\n', '')


@pytest.mark.parametrize('kind', ['missing', 'directory', 'not json', 'empty'])
def test_main_exit_1_when_the_config_is_unreadable(tmp_path, capsys, kind):
    path = tmp_path / 'pgha-balancer-check.json'
    if kind == 'directory':
        path.mkdir()
    elif kind == 'not json':
        path.write_text('pgbouncer: {port: 6432}\n')
    elif kind == 'empty':
        path.write_text('')
    rc, out, err = run_main(capsys, '--config', str(path))
    assert (rc, err) == (1, '')
    assert out.startswith('cannot read %s: ' % path) and out.count('\n') == 1


def test_main_needs_a_config(capsys):
    with pytest.raises(SystemExit) as exc:
        check_script.main([])
    assert exc.value.code == 2
    assert '--config' in capsys.readouterr().err


def test_the_stats_password_is_never_printed(tmp_path, capsys, pgbouncer, haproxy, stats_page, ports, sockdir):
    """Every outcome's line, including the peers' failures (a 401 to the credentials)."""
    writer, none = stat_csv(), stat_csv(write=NO_WRITER)
    pgb = pgbouncer().port
    wrong = StatsPage(stat_csv(), password='another')
    try:
        cases = [
            (config(pgb, haproxy.path, [('lb2', stats_page(writer).url)]), writer),
            (config(pgb, haproxy.path, [('lb2', stats_page(writer).url)]), none),
            (config(pgb, haproxy.path, [('lb2', stats_page(none).url)]), none),
            (config(pgb, haproxy.path, [('lb2', wrong.url)]), none),
            (config(pgb, haproxy.path, [('lb2', 'http://127.0.0.1:%d/;csv' % ports.refusing())]), none),
            (config(pgb, haproxy.path), stat_csv(write_backend='postgres_other')),
            (config(pgb, os.path.join(sockdir, 'missing.sock')), writer),
            (config(ports.refusing(), haproxy.path), writer),
            (config(pgbouncer(b'?').port, haproxy.path), writer),
        ]
        lines = []
        for conf, local in cases:
            haproxy.csv = local
            rc, out, err = run_main(capsys, '--config', write_config(tmp_path, conf))
            lines.append(out)
            assert STATS_PASSWORD not in out + err
        assert [line.split(':')[0] for line in lines] == ['healthy', 'unhealthy', 'healthy', 'healthy', 'healthy',
                                                          'unhealthy', 'unhealthy', 'unhealthy',
                                                          'unhealthy']
    finally:
        wrong.stop()
