# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/patroni/files/pgha-leader-watch.py against real local servers: a fake etcd v3 JSON
gateway (with leases that expire by time, prefix ranges and transactions of several compares)
and a fake Patroni REST API (http.server on 127.0.0.1), and a leader host on
127.0.0.0/8 whose ports answer (a listening socket), refuse (a bound socket that does not listen:
the kernel resets the connection) or stay silent (see LeaderHost.silent), and a REST port
served over TLS the way Patroni serves it (TLSPort), with a CA and certificates made here. Nothing
of the script is mocked; the clock of DeadLeaderRelease.step(now) is passed in, so no test sleeps
(the probes of a TLS port that never answers wait out their timeout)."""

import argparse
import base64
import json
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.pgha.cluster.tests.unit.utils import LocalHTTPServer, load_script, make_ca, make_leaf, write_pem

watch = load_script('roles/patroni/files/pgha-leader-watch.py', 'pgha_leader_watch')

SCOPE = 'pgha'
NAMESPACE = '/service/'
PREFIX = '/service/pgha/'
LEADER_KEY = PREFIX + 'leader'
LEADER_HOST = '127.0.0.77'   # the Patroni leader's host; the fake etcd (this host) is 127.0.0.1
CONNECT_TIMEOUT = 0.05       # --connect-timeout: a silent port costs this much per probe
RELEASE_AFTER = 3.0          # --release-after (the fast profile's value)
T0 = 1000.0                  # the first step's monotonic time
SUSPECT_ROOT = '/pgha/pgha/suspect/'  # the watchers' suspicions: <root><leader key revision>/<name>
WATCHERS = 'pg1,pg2,pg3'     # --watchers; the watcher under test is pg2 unless a test says otherwise


def enc(text):
    return base64.b64encode(text.encode()).decode()


def dec(text):
    return base64.b64decode(text).decode()


def _serve(handler):
    server = LocalHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True).start()
    return server


def _shutdown(server):
    server.shutdown()
    server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# ---------------------------------------------------------------------------------------------
# a fake etcd v3 JSON gateway

class LeaseNotFound(Exception):
    """etcd's "requested lease not found" (gRPC NotFound: HTTP 404 from the gateway)."""


class FakeEtcd(object):
    """The part of etcd's v3 JSON gateway the script uses. Keys and values are base64; int64s are
    strings; like the gateway (proto3 JSON), it leaves out empty and false fields: no "kvs" for
    a missing key, no "succeeded" for a failed transaction, no "TTL" in the keepalive of a lease
    that is gone. Leases expire by time (self.clock(), time.monotonic() moved on by advance()):
    an expired lease is gone with every key attached to it, as on an etcd server. Every request
    is recorded."""

    def __init__(self, member_id='101', leader_id='102'):
        self.lock = threading.RLock()
        self.revision = 1
        self.kv = {}               # key -> {'value', 'create_revision', 'mod_revision', 'version', 'lease'}
        self.leases = {}           # lease ID (int) -> {'ttl', 'expires'}
        self.next_lease = 7587862072907315000
        self.skew = 0.0            # advance(): the fake's clock ahead of time.monotonic()
        self.members = []          # as /v3/cluster/member/list returns them
        self.member_id, self.leader_id = member_id, leader_id  # /v3/maintenance/status
        self.requests = []         # (path, body)
        self.before_txn = None     # called when a txn arrives, before its compare is evaluated
        self.unavailable = []      # paths whose next request gets a 503 (once each)
        fake = self

        class Handler(_Handler):
            def do_POST(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = json.loads(self.rfile.read(length).decode() or '{}')
                with fake.lock:
                    fake.requests.append((self.path, body))
                    try:
                        if self.path in fake.unavailable:
                            fake.unavailable.remove(self.path)
                            raise OSError('unavailable')
                        status, reply = 200, fake.handle(self.path, body)
                    except OSError:
                        status, reply = 503, {'error': 'etcdserver: request timed out', 'code': 14}
                    except LeaseNotFound:
                        status, reply = 404, {'error': 'etcdserver: requested lease not found', 'code': 5}
                    except (KeyError, ValueError) as exc:  # anything this fake does not emulate
                        status, reply = 400, {'error': 'unsupported: %r' % (exc,), 'code': 3}
                self.reply(status, reply)

        self.server = _serve(Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]

    def stop(self):
        _shutdown(self.server)

    # -- time and leases -----------------------------------------------------------------------
    def clock(self):
        return time.monotonic() + self.skew

    def advance(self, seconds):
        with self.lock:
            self.skew += seconds
            self.expire()

    def expire(self):
        with self.lock:
            now = self.clock()
            for lease in [i for i, l in self.leases.items() if l['expires'] <= now]:
                self.drop_lease(lease)

    def drop_lease(self, lease):
        del self.leases[lease]
        for key in [k for k, kv in self.kv.items() if kv.get('lease') == lease]:
            self.delete(key)

    def grant(self, ttl):
        with self.lock:
            self.next_lease += 1
            self.leases[self.next_lease] = {'ttl': int(ttl), 'expires': self.clock() + int(ttl)}
            return self.next_lease

    # -- the store -----------------------------------------------------------------------------
    def put(self, key, value, lease=0):
        """Set a key (a dict or list is stored as JSON); returns its new mod_revision."""
        if not isinstance(value, str):
            value = json.dumps(value)
        with self.lock:
            self.expire()
            if lease and int(lease) not in self.leases:
                raise LeaseNotFound(lease)
            self.revision += 1
            old = self.kv.get(key)
            self.kv[key] = {'value': value, 'mod_revision': self.revision, 'lease': int(lease or 0),
                            'create_revision': old['create_revision'] if old else self.revision,
                            'version': old['version'] + 1 if old else 1}
            return self.revision

    def suspect(self, revision, name, ttl=60):
        """Another watcher's suspicion of the leader key at revision: its key, under a lease."""
        return self.put('%s%s/%s' % (SUSPECT_ROOT, revision, name), {'leader': 'pg1'}, lease=self.grant(ttl))

    def delete(self, key, range_end=None):
        """Delete key, or every key in [key, range_end); returns how many (one revision for all)."""
        with self.lock:
            keys = [k for k in self.kv if k == key or (range_end is not None and key <= k < range_end)]
            for k in keys:
                del self.kv[k]
            if keys:
                self.revision += 1
            return len(keys)

    def suspicions(self):
        """{revision: sorted names} of the suspicion keys present."""
        self.expire()
        found = {}
        for key in self.kv:
            if key.startswith(SUSPECT_ROOT):
                revision, name = key[len(SUSPECT_ROOT):].split('/')
                found.setdefault(int(revision), []).append(name)
        return {r: sorted(names) for r, names in found.items()}

    def add_member(self, name, client_urls, member_id=None):
        m = {'ID': member_id or str(1000 + len(self.members)), 'peerURLs': ['http://192.0.2.1:2380']}
        if name:  # an added, not yet started member has neither a name nor client URLs
            m['name'] = name
        if client_urls:
            m['clientURLs'] = list(client_urls)
        self.members.append(m)
        return m

    @property
    def txns(self):
        return [body for path, body in self.requests if path == '/v3/kv/txn']

    def paths(self):
        return [request[0] for request in self.requests]

    def writes(self):
        """The requests that change something in etcd."""
        return [(path, body) for path, body in self.requests
                if path in ('/v3/kv/put', '/v3/kv/txn', '/v3/kv/deleterange') or path.startswith('/v3/lease/')]

    # -- the gateway ---------------------------------------------------------------------------
    def header(self):
        return {'cluster_id': '7', 'member_id': self.member_id, 'revision': str(self.revision), 'raft_term': '2'}

    def handle(self, path, body):
        self.expire()
        if path == '/v3/kv/range':
            return self.range(body)
        if path == '/v3/kv/put':
            if set(body) - {'key', 'value', 'lease'}:
                raise ValueError(sorted(body))
            self.put(dec(body['key']), dec(body.get('value', '')), body.get('lease', 0))
            return {'header': self.header()}
        if path == '/v3/kv/txn':
            if self.before_txn:
                self.before_txn()
                self.expire()
            succeeded = all(self.holds(c) for c in body.get('compare', []))
            responses = [self.apply(op) for op in body.get('success' if succeeded else 'failure', [])]
            reply = {'header': self.header()}
            if succeeded:
                reply['succeeded'] = True
            if responses:
                reply['responses'] = responses
            return reply
        if path == '/v3/lease/grant':
            if set(body) != {'TTL'}:
                raise ValueError(sorted(body))
            lease = self.grant(body['TTL'])
            return {'header': self.header(), 'ID': str(lease), 'TTL': str(self.leases[lease]['ttl'])}
        if path == '/v3/lease/keepalive':
            # a stream on etcd: the gateway answers one request with one {"result": ...}
            lease = int(body['ID'])
            result = {'header': self.header(), 'ID': str(lease)}
            if lease in self.leases:
                self.leases[lease]['expires'] = self.clock() + self.leases[lease]['ttl']
                result['TTL'] = str(self.leases[lease]['ttl'])
            return {'result': result}
        if path == '/v3/lease/revoke':
            lease = int(body['ID'])
            if lease not in self.leases:
                raise LeaseNotFound(lease)
            self.drop_lease(lease)
            return {'header': self.header()}
        if path == '/v3/cluster/member/list':
            return {'header': self.header(), 'members': self.members}
        if path == '/v3/maintenance/status':
            return {'header': self.header(), 'version': '3.5.17', 'leader': self.leader_id}
        if path == '/v3/maintenance/transfer-leadership':
            return {'header': self.header()}
        raise KeyError(path)

    def range(self, body):
        if set(body) - {'key', 'range_end', 'keys_only'}:  # serializable, limit...: not what the script sends
            raise ValueError(sorted(body))
        key = dec(body['key'])
        end = dec(body['range_end']) if 'range_end' in body else None
        keys = sorted(k for k in self.kv if k == key or (end is not None and key <= k < end))
        reply = {'header': self.header()}
        if keys:
            reply['kvs'] = []
            for k in keys:
                kv = self.kv[k]
                item = {'key': enc(k), 'create_revision': str(kv['create_revision']),
                        'mod_revision': str(kv['mod_revision']), 'version': str(kv['version'])}
                if kv['lease']:
                    item['lease'] = str(kv['lease'])
                if not body.get('keys_only'):
                    item['value'] = enc(kv['value'])
                reply['kvs'].append(item)
            reply['count'] = str(len(keys))
        return reply

    def holds(self, cmp):
        # MOD and VERSION, each EQUAL, GREATER, LESS or NOT_EQUAL (proto3 defaults: VERSION, EQUAL)
        target, result = cmp.get('target', 'VERSION'), cmp.get('result', 'EQUAL')
        if target not in ('MOD', 'VERSION') or set(cmp) - {'key', 'target', 'result', 'mod_revision', 'version'}:
            raise ValueError(cmp)
        kv = self.kv.get(dec(cmp['key']))
        field = 'mod_revision' if target == 'MOD' else 'version'
        have, want = (kv[field] if kv else 0), int(cmp.get(field, 0))
        return {'EQUAL': have == want, 'GREATER': have > want, 'LESS': have < want,
                'NOT_EQUAL': have != want}[result]

    def apply(self, op):
        (kind, req), = op.items()
        if kind != 'request_delete_range' or set(req) - {'key', 'range_end'}:
            raise ValueError(op)
        deleted = self.delete(dec(req['key']), dec(req['range_end']) if 'range_end' in req else None)
        return {'response_delete_range': {'header': self.header(), 'deleted': str(deleted)}}


# ---------------------------------------------------------------------------------------------
# a leader host on 127.0.0.0/8 whose ports answer, refuse or stay silent

class LeaderHost(object):
    def __init__(self, monkeypatch, host=LEADER_HOST):
        self.host = host
        self.monkeypatch = monkeypatch
        self.socks = []
        self.emulated = set()  # (host, port) made silent by the fallback below

    def close(self):
        for s in self.socks:
            s.close()

    def _socket(self, host):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socks.append(s)
        s.bind((host or self.host, 0))
        return s, s.getsockname()[1]

    def answering(self, host=None):
        """A port whose connect succeeds (the kernel completes it; nothing needs to accept)."""
        s, port = self._socket(host)
        s.listen(64)  # room for every probe of a test: none is accepted
        return port

    def refusing(self, host=None):
        """A port held by a bound socket that does not listen: a connect is refused."""
        return self._socket(host)[1]

    def silent(self, host=None):
        """A port whose connect times out, as when the host is gone.

        On 127.0.0.0/8 an unused port refuses (that is an answer); silence is a listening socket
        whose accept queue is full and never drained: Linux then drops an incoming SYN, so the
        client's connect times out (its SYN is only retried after 1 s, well past
        CONNECT_TIMEOUT). The queue is filled and the timeout checked here, with the real
        socket.create_connection. Where a kernel behaves otherwise, the fallback is to
        monkeypatch socket.create_connection (the OS boundary) to time out for this one
        address; every other connection, HTTP included, stays real."""
        host = host or self.host
        s, port = self._socket(host)
        s.listen(0)
        for _attempt in range(8):
            try:
                self.socks.append(socket.create_connection((host, port), timeout=CONNECT_TIMEOUT))
            except socket.timeout:
                return port  # the queue is full: silent
            except OSError:
                break
        self._emulate_silence(host, port)
        return port

    def _emulate_silence(self, host, port):
        if not self.emulated:
            real = socket.create_connection

            def create_connection(address, *args, **kwargs):
                if tuple(address[:2]) in self.emulated:
                    raise socket.timeout('timed out')
                return real(address, *args, **kwargs)
            self.monkeypatch.setattr(watch.socket, 'create_connection', create_connection)
        self.emulated.add((host, port))


# ---------------------------------------------------------------------------------------------
# a fake Patroni: GET /primary only

class FakePatroni(object):
    def __init__(self, primary_status):
        self.status = primary_status
        self.requests = []
        fake = self

        class Handler(_Handler):
            def do_GET(self):
                fake.requests.append(self.path)
                if self.path == '/primary':
                    self.reply(fake.status, {'role': 'primary' if fake.status == 200 else 'replica'})
                else:
                    self.reply(404, {})

        self.server = _serve(Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]

    def stop(self):
        _shutdown(self.server)


# ---------------------------------------------------------------------------------------------
# a REST port on the leader's host served over TLS, as Patroni serves it

class TLSPort(object):
    """A port on the leader's host (LEADER_HOST) that serves one connection, in a thread, as
    `mode` says, and what the server saw of it in self.seen:

    first      the first byte the client sent (peeked before anything else): b'\\x16' opens a TLS
               record (a ClientHello), b'' is a close without a byte
    handshake  'ok', or the exception of the server's do_handshake()
    peercert   whether the client presented a certificate
    read       what the server then read (http.server reads the request line): b'' when the client
               closed with a close_notify, an exception otherwise (ragged EOFs are not suppressed)
    unwrap     'ok', or the exception of the server's close_notify (Patroni's shutdown_request)

    Modes: 'tls' serves as Patroni's REST API does (the handshake in the connection's thread,
    then a read of the request, then unwrap); 'hold' completes the handshake, then neither
    reads nor closes until self.release is set; 'mute' accepts and never answers; 'text'
    answers with an SSH banner and closes; 'reset' resets the connection after the first byte;
    'plain' reads without TLS until the client closes (self.seen['bytes'])."""

    def __init__(self, mode, context=None, host=LEADER_HOST):
        self.mode, self.context = mode, context
        self.seen = {}
        self.release = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(1)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def result(self):
        """What the server saw, once it is done with the connection."""
        self.release.set()
        self.thread.join(15)
        assert not self.thread.is_alive()
        return self.seen

    def close(self):
        self.release.set()
        self.sock.close()

    def _serve(self):
        try:
            conn = self.sock.accept()[0]
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            self.seen['first'] = conn.recv(1, socket.MSG_PEEK)
            if self.mode in ('mute', 'plain'):
                self.seen['bytes'] = self._read_to_eof(conn)
            elif self.mode == 'text':
                conn.recv(65536)
                conn.sendall(b'SSH-2.0-OpenSSH_9.2\r\n')
            elif self.mode == 'reset':
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            else:
                self._serve_tls(conn)

    @staticmethod
    def _read_to_eof(conn):
        data = b''
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except OSError:
            return data

    def _serve_tls(self, conn):
        with self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False,
                                      suppress_ragged_eofs=False) as tls:
            try:
                tls.do_handshake()
            except OSError as exc:
                self.seen['handshake'] = exc
                return
            self.seen['handshake'] = 'ok'
            self.seen['peercert'] = bool(tls.getpeercert())
            if self.mode == 'hold':
                self.release.wait(10)
                return
            try:
                self.seen['read'] = tls.recv(65536)
            except OSError as exc:
                self.seen['read'] = exc
                return
            try:
                tls.unwrap()
                self.seen['unwrap'] = 'ok'
            except OSError as exc:
                self.seen['unwrap'] = exc


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    """The cluster CA and the leader host's certificate (for LEADER_HOST; the watch presents the
    same kind of certificate as a client), and another CA."""
    d = tmp_path_factory.mktemp('pki')
    ca_key, ca_cert = make_ca('cluster CA')
    key, cert = make_leaf(ca_key, ca_cert, ips=(LEADER_HOST,))
    return {
        'ca': write_pem(d / 'ca.crt', ca_cert),
        'other_ca': write_pem(d / 'other.crt', make_ca('another CA')[1]),
        'cert': write_pem(d / 'server.crt', cert),
        'key': write_pem(d / 'server.key', key),
    }


def server_context(pki, verify_client=True):
    """Patroni's REST API context: the host certificate; with verify_client, a client certificate
    from the cluster CA is required (restapi.verify_client: required)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki['cert'], pki['key'])
    if verify_client:
        ctx.load_verify_locations(pki['ca'])
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(pki, ca='ca'):
    """The watch's CONTEXT, made as main() makes it from --cacert, --cert and --key."""
    ctx = ssl.create_default_context(cafile=pki[ca])
    ctx.load_cert_chain(pki['cert'], pki['key'])
    return ctx


@pytest.fixture
def tls_port():
    made = []

    def factory(mode, context=None):
        made.append(TLSPort(mode, context))
        return made[-1]
    yield factory
    for p in made:
        p.close()


# ---------------------------------------------------------------------------------------------
# fixtures and helpers

@pytest.fixture
def etcd():
    made = []

    def factory(**kwargs):
        made.append(FakeEtcd(**kwargs))
        return made[-1]
    yield factory
    for f in made:
        f.stop()


@pytest.fixture
def leader_host(monkeypatch):
    h = LeaderHost(monkeypatch)
    yield h
    h.close()


@pytest.fixture
def patroni():
    made = []

    def factory(primary_status):
        made.append(FakePatroni(primary_status))
        return made[-1]
    yield factory
    for f in made:
        f.stop()


def args_for(fake, **extra):
    """What main() parses, for DeadLeaderRelease and move_etcd_leader_away."""
    args = dict(etcd=fake.url, patroni='http://127.0.0.1:1', scope=SCOPE, namespace=NAMESPACE, interval=1.0,
                timeout=2.0, connect_timeout=CONNECT_TIMEOUT, release_after=RELEASE_AFTER, once=True,
                name='pg2', watchers=WATCHERS)
    args.update(extra)
    return argparse.Namespace(**args)


def make_cluster(fake, rest_port, etcd_port, leader='pg1', host=LEADER_HOST, etcd_member=True, config=None,
                 scheme='http'):
    """Patroni's keys for a 3-member cluster led by `leader` on `host` (its REST API's URL with
    `scheme`), and an etcd member list with this host (127.0.0.1, the fake etcd itself) and a
    third host; the leader's host gets an etcd member too when `etcd_member`. Returns the leader
    key's mod_revision."""
    fake.put(PREFIX + 'config', config if config is not None else {'ttl': 20, 'loop_wait': 5, 'retry_timeout': 7})
    fake.put(PREFIX + 'members/' + leader, {
        'conn_url': 'postgres://%s:5432/postgres' % host, 'api_url': '%s://%s:%d/patroni' % (scheme, host, rest_port),
        'state': 'running', 'role': 'primary', 'version': '4.0.7', 'xlog_location': 50331648, 'timeline': 1})
    fake.put(PREFIX + 'members/pg2', {'conn_url': 'postgres://127.0.0.1:5432/postgres',
                                      'api_url': 'http://127.0.0.1:8008/patroni', 'state': 'streaming',
                                      'role': 'replica'})
    fake.add_member('pg2', [fake.url])
    fake.add_member('pg3', ['http://127.0.0.3:2379'])
    if etcd_member:
        fake.add_member(leader, ['http://%s:%d' % (host, etcd_port)])
    return fake.put(LEADER_KEY, leader)


def assert_release_txn(txn, revision, voters=('pg2', 'pg3')):
    """One compare-and-delete of the leader key at `revision`, under the suspicions of `voters`
    for that revision (each still there: version > 0); it deletes the key and those suspicions."""
    cmp = txn['compare'][0]
    assert dec(cmp['key']) == LEADER_KEY
    assert (cmp['target'], cmp['result']) == ('MOD', 'EQUAL')
    assert int(cmp['mod_revision']) == revision
    assert [(dec(c['key']), c['target'], c['result'], int(c['version'])) for c in txn['compare'][1:]] == \
        [('%s%d/%s' % (SUSPECT_ROOT, revision, v), 'VERSION', 'GREATER', 0) for v in voters]
    prefix = '%s%d/' % (SUSPECT_ROOT, revision)
    assert txn['success'] == [
        {'request_delete_range': {'key': enc(LEADER_KEY)}},                   # that key, no range
        {'request_delete_range': {'key': enc(prefix), 'range_end': enc(prefix[:-1] + '0')}}]  # '/' + 1
    assert not txn.get('failure')


def steps(release, times):
    return [release.step(t) for t in times]


def assert_released_on_a_fresh_clock(release, fake, revision):
    """Long after earlier steps: the silence counts from the next step, then one release (pg3's
    watcher suspects the same revision)."""
    fake.suspect(revision, 'pg3')
    t1 = T0 + 20 * RELEASE_AFTER
    assert release.step(t1) is None
    assert 'deleted its leader key' in release.step(t1 + RELEASE_AFTER)
    assert len(fake.txns) == 1
    assert_release_txn(fake.txns[0], revision)


# ---------------------------------------------------------------------------------------------
# host_answers

def test_host_answers_listening_port(leader_host):
    assert watch.host_answers(leader_host.host, leader_host.answering(), CONNECT_TIMEOUT) is True


def test_host_answers_refused_connection_is_an_answer(leader_host):
    assert watch.host_answers(leader_host.host, leader_host.refusing(), CONNECT_TIMEOUT) is True


def test_host_answers_closed_port_on_localhost_is_an_answer():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more: refused
    assert watch.host_answers('127.0.0.1', port, CONNECT_TIMEOUT) is True


def test_host_answers_silent_port_is_no_answer_within_the_timeout(leader_host):
    port = leader_host.silent()
    t = time.monotonic()
    assert watch.host_answers(leader_host.host, port, CONNECT_TIMEOUT) is False
    assert time.monotonic() - t < CONNECT_TIMEOUT + 1.0


@pytest.mark.parametrize('verified', [True, False], ids=['cluster-CA', 'no-cacert'])
def test_host_answers_tls_completes_the_handshake_and_closes_cleanly(monkeypatch, pki, tls_port, verified):
    """Patroni does the handshake outside any try: a probe that closes without one is a traceback
    in the leader's journal. With --cacert, the probe verifies the server and presents its
    certificate (the server requires one here); without, it shakes hands without checking. It
    then sends close_notify: the server reads b'' (the quiet end of http.server's handler), and
    its own close_notify (Patroni's shutdown_request) goes through."""
    monkeypatch.setattr(watch, 'CONTEXT', client_context(pki) if verified else None)
    port = tls_port('tls', server_context(pki, verify_client=verified))
    assert watch.host_answers(LEADER_HOST, port.port, CONNECT_TIMEOUT * 20, tls=True) is True
    seen = port.result()
    assert seen['first'] == b'\x16'
    assert seen['handshake'] == 'ok'
    assert seen['peercert'] is verified
    assert seen['read'] == b''
    assert seen['unwrap'] == 'ok'


@pytest.mark.parametrize('mode', ['another-CA', 'text', 'reset'])
def test_host_answers_tls_handshake_that_fails_is_an_answer(monkeypatch, pki, tls_port, mode):
    """A connect that succeeds is an answer whatever the handshake then does: a certificate the
    probe does not trust, a server that does not speak TLS, a reset. The host is up."""
    if mode == 'another-CA':
        monkeypatch.setattr(watch, 'CONTEXT', client_context(pki, ca='other_ca'))
        port = tls_port('tls', server_context(pki))
    else:
        port = tls_port(mode)
    assert watch.host_answers(LEADER_HOST, port.port, CONNECT_TIMEOUT * 20, tls=True) is True
    seen = port.result()
    assert seen['first'] == b'\x16'  # the probe tried
    if mode == 'another-CA':
        assert isinstance(seen['handshake'], ssl.SSLError)


@pytest.mark.parametrize('mode', ['mute', 'hold'])
def test_host_answers_tls_that_never_completes_is_an_answer_within_twice_the_timeout(tls_port, pki, mode):
    """A server that accepts and then never answers the ClientHello ('mute'), or never answers the
    close_notify ('hold'): an answer, once the probe has waited out its timeout for the TLS part
    (the connect has its own): at most twice the connect timeout in all."""
    timeout = 0.5
    port = tls_port(mode, server_context(pki, verify_client=False))
    t = time.monotonic()
    assert watch.host_answers(LEADER_HOST, port.port, timeout, tls=True) is True
    elapsed = time.monotonic() - t
    seen = port.result()
    assert seen['first'] == b'\x16'
    if mode == 'mute':
        assert elapsed >= 0.8 * timeout  # it did wait for the handshake
        assert seen['bytes'].startswith(b'\x16')
    else:
        assert seen['handshake'] == 'ok'
    assert elapsed < 2 * timeout + 1.0


def test_host_answers_without_tls_is_a_plain_connect(monkeypatch, pki, tls_port):
    """http (and the etcd client port): a connect and a close, not a byte sent, even with
    --cacert; http.server reads b'' and returns quietly."""
    monkeypatch.setattr(watch, 'CONTEXT', client_context(pki))
    port = tls_port('plain')
    assert watch.host_answers(LEADER_HOST, port.port, CONNECT_TIMEOUT * 20) is True
    seen = port.result()
    assert seen['first'] == b'' and seen['bytes'] == b''


# ---------------------------------------------------------------------------------------------
# DeadLeaderRelease: the release of a silent leader's key

def test_silent_leader_host_is_released_after_release_after(etcd, leader_host):
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    fake.suspect(revision, 'pg3')                        # the other replica's watcher suspects it too
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None                      # the first silent observation starts the clock
    assert release.step(T0 + RELEASE_AFTER - 0.1) is None
    assert fake.txns == [] and LEADER_KEY in fake.kv
    msg = release.step(T0 + RELEASE_AFTER)
    assert len(fake.txns) == 1
    assert_release_txn(fake.txns[0], revision)
    assert LEADER_KEY not in fake.kv
    assert {PREFIX + 'config', PREFIX + 'members/pg1', PREFIX + 'members/pg2'} <= set(fake.kv)
    assert 'leader pg1 at %s' % LEADER_HOST in msg
    assert 'deleted its leader key (revision %d)' % revision in msg
    assert '%.1f s' % RELEASE_AFTER in msg
    assert 'suspected by pg2, pg3 (2 of the 2 other watchers, 2 needed)' in msg
    assert fake.suspicions() == {}                       # deleted with the key
    assert len(fake.leases) == 1                         # its own lease revoked, pg3's left to pg3
    # the key is gone: nothing more to do
    assert release.step(T0 + 2 * RELEASE_AFTER) is None
    assert len(fake.txns) == 1


def test_release_reads_the_keys_of_its_namespace_and_scope(etcd, leader_host):
    fake = etcd()
    fake.suspect(make_cluster(fake, leader_host.silent(), leader_host.silent()), 'pg3')
    release = watch.DeadLeaderRelease(args_for(fake, namespace='service'))  # no slashes: same prefix
    fake.requests[:] = []
    release.step(T0)
    ranged = [dec(body['key']) for path, body in fake.requests if path == '/v3/kv/range']
    assert ranged == [LEADER_KEY, PREFIX + 'members/pg1', PREFIX + 'config']
    assert 'deleted its leader key' in release.step(T0 + RELEASE_AFTER)


def test_a_leader_answering_on_its_rest_port_costs_two_reads(etcd, leader_host):
    """The usual tick: the leader's REST port answers, and neither the member list nor the
    cluster config is read."""
    fake = etcd()
    make_cluster(fake, leader_host.answering(), leader_host.silent())
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    assert [(path, dec(body['key'])) for path, body in fake.requests] == \
        [('/v3/kv/range', LEADER_KEY), ('/v3/kv/range', PREFIX + 'members/pg1')]


@pytest.mark.parametrize('scheme', ['https', 'http'])
def test_step_probes_the_rest_port_with_tls_when_its_url_is_https(monkeypatch, etcd, leader_host, pki, tls_port,
                                                                  scheme):
    """The api_url's scheme decides, not --cacert: an https leader gets a TLS handshake and a
    close_notify, an http one a plain connect (a TLS ClientHello there would be a bad request)."""
    monkeypatch.setattr(watch, 'CONTEXT', client_context(pki))
    fake = etcd()
    port = tls_port('tls' if scheme == 'https' else 'plain', server_context(pki))
    make_cluster(fake, port.port, leader_host.silent(), scheme=scheme)
    release = watch.DeadLeaderRelease(args_for(fake, connect_timeout=CONNECT_TIMEOUT * 20))
    assert release.step(T0) is None
    assert release.suspect is None                       # it answered
    assert [dec(body['key']) for path, body in fake.requests] == [LEADER_KEY, PREFIX + 'members/pg1']
    seen = port.result()
    if scheme == 'https':
        assert (seen['first'], seen['handshake'], seen['peercert'], seen['read'], seen['unwrap']) == \
            (b'\x16', 'ok', True, b'', 'ok')
    else:
        assert (seen['first'], seen['bytes']) == (b'', b'')


def test_an_https_leader_whose_handshake_fails_still_answers(monkeypatch, etcd, leader_host, pki, tls_port):
    monkeypatch.setattr(watch, 'CONTEXT', client_context(pki, ca='other_ca'))
    fake = etcd()
    port = tls_port('tls', server_context(pki))
    make_cluster(fake, port.port, leader_host.silent(), scheme='https')
    release = watch.DeadLeaderRelease(args_for(fake, connect_timeout=CONNECT_TIMEOUT * 20))
    assert release.step(T0) is None
    assert release.suspect is None                       # it answered: no silence clock started
    assert fake.txns == []
    seen = port.result()
    assert seen['first'] == b'\x16' and isinstance(seen['handshake'], ssl.SSLError)


def test_an_answer_restarts_the_clock(etcd, leader_host):
    fake = etcd()
    silent_rest = leader_host.silent()
    revision = make_cluster(fake, silent_rest, leader_host.silent())
    fake.suspect(revision, 'pg3')
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    # the REST API answers once (the member key changes, the leader key does not)
    fake.put(PREFIX + 'members/pg1', {'api_url': 'http://%s:%d/patroni' % (LEADER_HOST, leader_host.answering())})
    assert release.step(T0 + 1) is None
    fake.put(PREFIX + 'members/pg1', {'api_url': 'http://%s:%d/patroni' % (LEADER_HOST, silent_rest)})
    assert release.step(T0 + 2) is None                  # silent again: the clock starts anew
    assert release.step(T0 + RELEASE_AFTER) is None      # not since T0
    assert release.step(T0 + 2 + RELEASE_AFTER - 0.1) is None
    assert fake.txns == []
    assert release.step(T0 + 2 + RELEASE_AFTER) is not None
    assert len(fake.txns) == 1
    assert_release_txn(fake.txns[0], revision)


def test_refused_connections_are_answers(etcd, leader_host):
    # the host is up, Patroni and etcd are down: not the case this is for
    fake = etcd()
    make_cluster(fake, leader_host.refusing(), leader_host.refusing())
    release = watch.DeadLeaderRelease(args_for(fake))
    assert steps(release, [T0, T0 + RELEASE_AFTER, T0 + 10 * RELEASE_AFTER]) == [None, None, None]
    assert fake.txns == []
    assert LEADER_KEY in fake.kv


@pytest.mark.parametrize('rest,etcd_port', [
    ('answering', 'silent'), ('silent', 'answering'), ('refusing', 'silent'), ('silent', 'refusing')])
def test_one_port_answering_is_enough(etcd, leader_host, rest, etcd_port):
    fake = etcd()
    make_cluster(fake, getattr(leader_host, rest)(), getattr(leader_host, etcd_port)())
    release = watch.DeadLeaderRelease(args_for(fake))
    assert steps(release, [T0, T0 + RELEASE_AFTER, T0 + 10 * RELEASE_AFTER]) == [None, None, None]
    assert fake.txns == []


def test_paused_cluster_is_left_alone(etcd, leader_host):
    fake = etcd()
    config = {'ttl': 20, 'loop_wait': 5, 'pause': True}
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent(), config=config)
    release = watch.DeadLeaderRelease(args_for(fake))
    assert steps(release, [T0, T0 + RELEASE_AFTER, T0 + 10 * RELEASE_AFTER]) == [None, None, None]
    assert fake.txns == []
    # resumed: the same silent leader is released, the clock counting from the resume
    fake.put(PREFIX + 'config', dict(config, pause=False))
    assert_released_on_a_fresh_clock(release, fake, revision)


def test_a_pause_forgets_the_silence_seen_before(etcd, leader_host):
    fake = etcd()
    fake.suspect(make_cluster(fake, leader_host.silent(), leader_host.silent()), 'pg3')
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    fake.put(PREFIX + 'config', {'pause': True})
    assert release.step(T0 + 1) is None
    fake.put(PREFIX + 'config', {'pause': False})
    assert release.step(T0 + RELEASE_AFTER) is None      # counted from here, not from T0
    assert fake.txns == []
    assert release.step(T0 + 2 * RELEASE_AFTER) is not None


@pytest.mark.parametrize('member', ['none', 'unstarted', 'other-host'])
def test_leader_host_without_etcd_member_is_left_alone(etcd, leader_host, member):
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent(), etcd_member=False)
    etcd_port = leader_host.silent()
    if member == 'unstarted':  # added to the cluster, never started: no client URLs
        fake.add_member(None, [])
    elif member == 'other-host':  # the same port, on another address
        fake.add_member('pg4', ['http://127.0.0.78:%d' % etcd_port])
    release = watch.DeadLeaderRelease(args_for(fake))
    assert steps(release, [T0, T0 + RELEASE_AFTER, T0 + 10 * RELEASE_AFTER]) == [None, None, None]
    assert fake.txns == []
    # an etcd member on the leader's host: both signals, released
    fake.add_member('pg1', ['http://%s:%d' % (LEADER_HOST, etcd_port)])
    assert_released_on_a_fresh_clock(release, fake, revision)


def test_leader_without_member_key_is_left_alone(etcd, leader_host):
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent())
    fake.delete(PREFIX + 'members/pg1')
    release = watch.DeadLeaderRelease(args_for(fake))
    assert steps(release, [T0, T0 + RELEASE_AFTER]) == [None, None]
    assert fake.txns == []


def test_a_new_revision_of_the_key_restarts_the_clock(etcd, leader_host):
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent())
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    revision = fake.put(LEADER_KEY, 'pg1')               # the same leader wrote its key again
    fake.suspect(revision, 'pg3')
    assert release.step(T0 + RELEASE_AFTER) is None      # a new observation: the clock restarts
    assert fake.txns == []
    assert release.step(T0 + 2 * RELEASE_AFTER - 0.1) is None
    assert fake.txns == []
    assert release.step(T0 + 2 * RELEASE_AFTER) is not None
    assert_release_txn(fake.txns[0], revision)


def test_a_new_leader_restarts_the_clock(etcd, leader_host):
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent())
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    # pg3 leads now, on another silent host with an etcd member: its silence counts from now
    host3 = '127.0.0.79'
    fake.put(PREFIX + 'members/pg3', {'api_url': 'http://%s:%d/patroni' % (host3, leader_host.silent(host3))})
    fake.add_member('pg3', ['http://%s:%d' % (host3, leader_host.silent(host3))])
    revision = fake.put(LEADER_KEY, 'pg3')
    fake.suspect(revision, 'pg1')                        # pg3 leads: pg1 and pg2 are the others
    assert release.step(T0 + RELEASE_AFTER) is None
    assert fake.txns == []
    msg = release.step(T0 + 2 * RELEASE_AFTER)
    assert 'leader pg3 at %s' % host3 in msg
    assert_release_txn(fake.txns[0], revision, voters=('pg1', 'pg2'))


def test_key_changed_before_the_delete_is_left_alone(etcd, leader_host):
    fake = etcd()
    first = make_cluster(fake, leader_host.silent(), leader_host.silent())
    fake.suspect(first, 'pg3')
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    # the key gets a new revision after the script's last read, before its txn is applied
    fake.before_txn = lambda: fake.put(LEADER_KEY, 'pg1')
    msg = release.step(T0 + RELEASE_AFTER)
    assert msg.endswith(': the leader key or a suspicion changed meanwhile: left it alone')
    assert len(fake.txns) == 1
    assert_release_txn(fake.txns[0], first)
    assert fake.kv[LEADER_KEY]['value'] == 'pg1'
    second = fake.kv[LEADER_KEY]['mod_revision']
    assert second > first
    assert fake.suspicions() == {first: ['pg2', 'pg3']}  # the failed txn deleted nothing
    # the next step sees the new revision: its suspicion of the old one is revoked and the clock
    # starts anew
    fake.before_txn = None
    fake.suspect(second, 'pg3')
    t1 = T0 + RELEASE_AFTER + 1
    assert release.step(t1) is None
    assert fake.suspicions() == {first: ['pg3'], second: ['pg3']}
    assert release.step(t1 + RELEASE_AFTER - 0.1) is None
    assert len(fake.txns) == 1
    assert release.step(t1 + RELEASE_AFTER) is not None
    assert len(fake.txns) == 2
    assert_release_txn(fake.txns[1], second)
    assert LEADER_KEY not in fake.kv


def test_no_leader_key_does_nothing_and_forgets(etcd, leader_host):
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent())
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    assert release.suspect is not None and release.since == T0
    fake.delete(LEADER_KEY)
    fake.requests[:] = []
    assert release.step(T0 + RELEASE_AFTER) is None
    assert (release.suspect, release.since) == (None, None)
    assert fake.paths() == ['/v3/kv/range']              # the leader key only
    assert fake.txns == []


def test_no_leader_key_in_an_empty_etcd(etcd):
    fake = etcd()
    release = watch.DeadLeaderRelease(args_for(fake))
    assert steps(release, [T0, T0 + RELEASE_AFTER]) == [None, None]
    assert fake.paths() == ['/v3/kv/range', '/v3/kv/range']


# ---------------------------------------------------------------------------------------------
# the majority: lease-bound suspicions of a leader key revision

def suspicion_key(revision, name):
    return '%s%d/%s' % (SUSPECT_ROOT, revision, name)


def test_a_single_suspecting_replica_never_deletes(etcd, leader_host):
    """The cut link between the leader and one replica: that replica's watcher sees the leader
    silent for as long as the cut lasts, the other replica sees it fine. A suspicion alone (1 of 2)
    never deletes the key: the leader keeps leading."""
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    msg = release.step(T0 + RELEASE_AFTER)
    assert msg == ('leader pg1 at %s has answered neither on its REST API nor on etcd for %.1f s here; suspected '
                   'by pg2 (1 of the 2 other watchers, 2 needed): waiting for a majority (revision %d)'
                   % (LEADER_HOST, RELEASE_AFTER, revision))
    # the suspicion: its own key for that revision, under a lease of the script's TTL
    kv = fake.kv[suspicion_key(revision, 'pg2')]
    assert fake.leases[kv['lease']]['ttl'] == release.ttl == 5   # 2 x 1 + 2 x 0.05 + 2, rounded up
    assert json.loads(kv['value']) == {'leader': 'pg1', 'host': LEADER_HOST, 'silent': RELEASE_AFTER}
    # a long cut: the suspicion is renewed every tick and logged once, nothing more
    fake.requests[:] = []
    assert steps(release, [T0 + RELEASE_AFTER + i for i in range(1, 60)]) == [None] * 59
    assert fake.txns == []
    assert LEADER_KEY in fake.kv and fake.kv[LEADER_KEY]['mod_revision'] == revision
    assert fake.paths().count('/v3/lease/keepalive') == 59
    assert '/v3/lease/grant' not in fake.paths() and '/v3/kv/put' not in fake.paths()
    assert fake.suspicions() == {revision: ['pg2']}


def test_two_suspecting_replicas_delete(etcd, leader_host):
    """The leader's host crashed: both replicas' watchers (two real ones, out of phase) suspect
    it; the later suspicion completes the majority and that watcher deletes the key."""
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    pg2 = watch.DeadLeaderRelease(args_for(fake, name='pg2'))
    pg3 = watch.DeadLeaderRelease(args_for(fake, name='pg3'))
    assert pg2.step(T0) is None
    assert pg3.step(T0 + 0.6) is None
    assert 'suspected by pg2 (1 of the 2' in pg2.step(T0 + RELEASE_AFTER)
    assert fake.txns == []
    msg = pg3.step(T0 + 0.6 + RELEASE_AFTER)
    assert msg.startswith('leader pg1 at %s has answered neither' % LEADER_HOST)
    assert msg.endswith('suspected by pg2, pg3 (2 of the 2 other watchers, 2 needed): '
                        'deleted its leader key (revision %d)' % revision)
    assert len(fake.txns) == 1
    assert_release_txn(fake.txns[0], revision)
    assert LEADER_KEY not in fake.kv and fake.suspicions() == {}
    # pg2 sees the key gone: it revokes its lease (its key went with the txn)
    assert pg2.step(T0 + RELEASE_AFTER + 1) is None
    assert fake.leases == {} and pg2.lease is None and pg3.lease is None
    assert len(fake.txns) == 1


def test_the_released_leaders_lease_is_revoked(etcd, leader_host):
    """Patroni's leader key and member key live under the leader's lease. The release revokes
    that lease too: Patroni's update_leader() only refreshes the lease while it believes it holds
    the key, so a leader cut off for less than ttl would come back, refresh its lease and promote
    itself beside the new leader. Only the lease read at the released revision is revoked."""
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent())
    lease = fake.grant(20)
    fake.put(PREFIX + 'members/pg1', {'api_url': 'http://%s:%d/patroni' % (LEADER_HOST, leader_host.silent()),
                                      'role': 'primary'}, lease=lease)
    revision = fake.put(LEADER_KEY, 'pg1', lease=lease)
    fake.suspect(revision, 'pg3')
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    msg = release.step(T0 + RELEASE_AFTER)
    assert msg.endswith('deleted its leader key (revision %d) and revoked its lease %d' % (revision, lease))
    assert lease not in fake.leases
    assert LEADER_KEY not in fake.kv and PREFIX + 'members/pg1' not in fake.kv
    assert PREFIX + 'members/pg2' in fake.kv


def test_a_stale_suspicion_does_not_count(etcd, leader_host):
    """A watcher that froze or died while it suspected: its lease is not renewed and expires on
    the etcd server, with its key; it is then no vote."""
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    fake.suspect(revision, 'pg3', ttl=5)
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    fake.advance(5)                                      # pg3's lease runs out
    assert 'waiting for a majority' in release.step(T0 + RELEASE_AFTER)
    assert steps(release, [T0 + RELEASE_AFTER + i for i in range(1, 5)]) == [None] * 4
    assert fake.txns == [] and LEADER_KEY in fake.kv
    assert fake.suspicions() == {revision: ['pg2']}


def test_a_suspicion_that_expires_before_the_txn_fails_it(etcd, leader_host):
    """pg3's suspicion is there when it is read, and expires before the transaction is applied:
    etcd's compare (version > 0) fails the transaction, nothing is deleted."""
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    fake.suspect(revision, 'pg3', ttl=2)
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    fake.before_txn = lambda: fake.advance(2)            # pg3's lease runs out, not pg2's (5 s)
    msg = release.step(T0 + RELEASE_AFTER)
    assert msg.endswith('(2 of the 2 other watchers, 2 needed): the leader key or a suspicion changed meanwhile: '
                        'left it alone')
    assert len(fake.txns) == 1
    assert_release_txn(fake.txns[0], revision)
    assert fake.kv[LEADER_KEY]['mod_revision'] == revision
    assert fake.suspicions() == {revision: ['pg2']}      # its own suspicion stands
    fake.before_txn = None
    assert 'waiting for a majority' in release.step(T0 + RELEASE_AFTER + 1)
    assert len(fake.txns) == 1


def test_a_suspicion_of_an_old_revision_does_not_count(etcd, leader_host):
    """pg3 suspected an earlier leader key (another term, or the same leader before it rewrote
    its key): that is no suspicion of this one."""
    fake = etcd()
    old = make_cluster(fake, leader_host.silent(), leader_host.silent())
    fake.suspect(old, 'pg3')
    revision = fake.put(LEADER_KEY, 'pg1')
    release = watch.DeadLeaderRelease(args_for(fake))
    assert steps(release, [T0 + i for i in range(0, 10)]).count(None) == 9  # one "waiting" line
    assert fake.txns == [] and fake.kv[LEADER_KEY]['mod_revision'] == revision
    assert fake.suspicions() == {old: ['pg3'], revision: ['pg2']}


@pytest.mark.parametrize('other', ['pg1', 'pg9', 'pg3x', ''])
def test_only_the_other_watchers_suspicions_count(etcd, leader_host, other):
    """The leader's own name under the suspicion prefix (pg1), a member that is no watcher (pg9),
    a name that only starts like one: none is a vote."""
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    fake.put(suspicion_key(revision, other), {'leader': 'pg1'}, lease=fake.grant(60))
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    assert 'suspected by pg2 (1 of the 2 other watchers, 2 needed): waiting' in release.step(T0 + RELEASE_AFTER)
    assert steps(release, [T0 + RELEASE_AFTER + 1, T0 + RELEASE_AFTER + 2]) == [None, None]
    assert fake.txns == [] and LEADER_KEY in fake.kv


def test_five_watchers_need_three_of_the_four_others(etcd, leader_host):
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    release = watch.DeadLeaderRelease(args_for(fake, watchers='pg1,pg2,pg3,pg4,pg5'))
    fake.suspect(revision, 'pg4')
    assert release.step(T0) is None
    assert 'suspected by pg2, pg4 (2 of the 4 other watchers, 3 needed): waiting' in \
        release.step(T0 + RELEASE_AFTER)
    assert fake.txns == []
    fake.suspect(revision, 'pg5')
    assert 'suspected by pg2, pg4, pg5 (3 of the 4 other watchers, 3 needed): deleted' in \
        release.step(T0 + RELEASE_AFTER + 1)
    assert_release_txn(fake.txns[0], revision, voters=('pg2', 'pg4', 'pg5'))


def test_majority_of_the_other_watchers():
    assert [watch.majority(others) for others in range(1, 7)] == [1, 2, 2, 3, 3, 4]


def test_the_leader_key_naming_this_member_is_never_suspected(etcd, leader_host):
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent())
    release = watch.DeadLeaderRelease(args_for(fake, name='pg1'))
    assert steps(release, [T0, T0 + RELEASE_AFTER, T0 + 2 * RELEASE_AFTER]) == [None, None, None]
    assert fake.writes() == []


def make_suspicious(fake, leader_host):
    """pg2's watcher suspecting pg1 (silent REST and etcd ports): (release, revision, REST port)."""
    rest = leader_host.silent()
    revision = make_cluster(fake, rest, leader_host.silent())
    release = watch.DeadLeaderRelease(args_for(fake))
    release.step(T0)
    assert 'waiting for a majority' in release.step(T0 + RELEASE_AFTER)
    assert fake.suspicions() == {revision: ['pg2']}
    return release, revision, rest


@pytest.mark.parametrize('change', ['answers', 'refuses', 'new-revision', 'new-leader', 'no-key', 'paused',
                                    'leads'])
def test_the_suspicion_is_revoked_as_soon_as_it_ends(etcd, leader_host, change):
    fake = etcd()
    release, revision, _rest = make_suspicious(fake, leader_host)
    lease = release.lease
    if change in ('answers', 'refuses'):
        port = leader_host.answering() if change == 'answers' else leader_host.refusing()
        fake.put(PREFIX + 'members/pg1', {'api_url': 'http://%s:%d/patroni' % (LEADER_HOST, port)})
    elif change == 'new-revision':
        fake.put(LEADER_KEY, 'pg1')
    elif change == 'new-leader':
        fake.put(LEADER_KEY, 'pg2')                      # this member leads now (by the key)
    elif change == 'no-key':
        fake.delete(LEADER_KEY)
    elif change == 'paused':
        fake.put(PREFIX + 'config', {'pause': True})
    fake.requests[:] = []
    if change == 'leads':
        release.forget()                                 # what main() does when the local Patroni leads
    else:
        assert release.step(T0 + RELEASE_AFTER + 1) is None
    assert [body for path, body in fake.requests if path == '/v3/lease/revoke'] == [{'ID': lease}]
    assert release.lease is None and fake.leases == {}
    assert fake.suspicions() == {}
    assert fake.txns == []


def test_once_silent_the_two_probes_run_together(etcd, leader_host):
    """The first silent tick probes the REST port, then the etcd port (two connect timeouts);
    the next ones probe both at once (one): the suspicion, and the release, come that much
    sooner after a crash."""
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent())
    if leader_host.emulated:
        pytest.skip('silence emulated: a probe does not wait out its timeout here')
    release = watch.DeadLeaderRelease(args_for(fake, connect_timeout=0.4))
    took = []
    for t in (T0, T0 + 1, T0 + 2):
        started = time.monotonic()
        assert release.step(t) is None
        took.append(time.monotonic() - started)
    assert took[0] >= 0.8
    assert 0.4 <= took[1] < 0.75 and 0.4 <= took[2] < 0.75
    assert fake.txns == []


def test_an_expired_lease_of_its_own_is_granted_again(etcd, leader_host):
    """A tick late by more than the TTL (a stalled VM, a slow etcd): its suspicion lapsed; the
    next tick grants a new lease and writes the key again."""
    fake = etcd()
    release, revision, _rest = make_suspicious(fake, leader_host)
    first = release.lease
    fake.advance(release.ttl)
    assert fake.suspicions() == {}
    fake.requests[:] = []
    assert release.step(T0 + RELEASE_AFTER + 1) is None
    assert fake.paths().count('/v3/lease/keepalive') == 1
    assert fake.paths().count('/v3/lease/grant') == 1
    assert release.lease != first
    assert fake.suspicions() == {revision: ['pg2']}


def test_a_suspicion_whose_write_failed_is_written_on_the_next_tick(etcd, leader_host):
    """The lease was granted, the put of the key failed (a slow etcd): the tick fails, the next
    one renews that lease and writes the key."""
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    release = watch.DeadLeaderRelease(args_for(fake))
    assert release.step(T0) is None
    fake.unavailable.append('/v3/kv/put')
    with pytest.raises(OSError):
        release.step(T0 + RELEASE_AFTER)
    assert release.lease is not None and fake.suspicions() == {}
    fake.requests[:] = []
    assert 'waiting for a majority' in release.step(T0 + RELEASE_AFTER + 1)
    assert [p for p in fake.paths() if p.startswith('/v3/lease/') or p == '/v3/kv/put'] == \
        ['/v3/lease/keepalive', '/v3/kv/put']
    assert fake.suspicions() == {revision: ['pg2']}


def test_a_revoke_that_fails_is_left_to_the_ttl(etcd, leader_host):
    fake = etcd()
    release, _revision, _rest = make_suspicious(fake, leader_host)
    fake.drop_lease(int(release.lease))                  # gone already: the revoke gets a 404
    release.forget()
    assert release.lease is None and release.suspect is None


def test_a_paused_cluster_gets_no_suspicion(etcd, leader_host):
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent(), config={'ttl': 20, 'pause': True})
    pg2 = watch.DeadLeaderRelease(args_for(fake, name='pg2'))
    pg3 = watch.DeadLeaderRelease(args_for(fake, name='pg3'))
    for t in [T0 + i for i in range(0, 10)]:
        assert (pg2.step(t), pg3.step(t)) == (None, None)
    assert fake.writes() == []
    assert LEADER_KEY in fake.kv


def test_a_frozen_leader_host_is_not_suspected(etcd, leader_host):
    """docker pause: the processes are frozen, but the host's kernel still completes the TCP
    handshake on a listening socket (here: listening, never accepting). That is an answer: nothing
    is suspected, the key expires after ttl (Patroni's own path)."""
    fake = etcd()
    make_cluster(fake, leader_host.answering(), leader_host.answering())
    pg2 = watch.DeadLeaderRelease(args_for(fake, name='pg2'))
    pg3 = watch.DeadLeaderRelease(args_for(fake, name='pg3'))
    for t in [T0 + i for i in range(0, 8)]:
        assert (pg2.step(t), pg3.step(t)) == (None, None)
    assert fake.writes() == []


@pytest.mark.parametrize('argv', [[], ['--name', 'pg2'], ['--name', 'pg4', '--watchers', WATCHERS],
                                  ['--watchers', WATCHERS]])
def test_main_refuses_a_release_without_its_name_among_the_watchers(monkeypatch, capsys, argv):
    monkeypatch.setattr(sys, 'argv', ['pgha-leader-watch.py', '--patroni', 'http://127.0.0.1:1', '--scope', SCOPE,
                                      '--once', '--release-after', '3'] + argv)
    with pytest.raises(SystemExit) as exc:
        watch.main()
    assert exc.value.code == 2
    assert '--release-after needs --name, one of --watchers' in capsys.readouterr()[1]


def test_main_with_release_after_0_never_writes(monkeypatch, capsys, etcd, patroni, leader_host):
    """--release-after 0: no suspicion, no lease, no transaction, tick after tick, even for a
    silent leader with every other watcher suspecting it (and no --name or --watchers needed)."""
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    fake.suspect(revision, 'pg3')
    fake.requests[:] = []
    local = patroni(503)
    ticks = []

    def sleep(_seconds):
        ticks.append(1)
        if len(ticks) == 5:
            raise _TickDone()
    monkeypatch.setattr(watch.time, 'sleep', sleep)
    monkeypatch.setattr(sys, 'argv', ['pgha-leader-watch.py', '--etcd', fake.url, '--patroni', local.url,
                                      '--scope', SCOPE, '--release-after', '0', '--interval', '0'])
    with pytest.raises(_TickDone):
        watch.main()
    assert local.requests == ['/primary'] * 5
    assert fake.requests == []
    assert LEADER_KEY in fake.kv
    assert capsys.readouterr() == ('', '')


def test_main_revokes_its_suspicion_when_it_stops(monkeypatch, capsys, etcd, patroni, leader_host):
    """systemd stops the service (SIGTERM: SystemExit) while it suspects: the lease is revoked,
    not left to its TTL."""
    fake = etcd()
    revision = make_cluster(fake, leader_host.silent(), leader_host.silent())
    local = patroni(503)
    ticks = []
    real_sleep = time.sleep

    def sleep(_seconds):
        ticks.append(1)
        if len(ticks) == 2:
            assert fake.suspicions() == {revision: ['pg2']}
            raise SystemExit(0)
        real_sleep(0.05)
    monkeypatch.setattr(watch.time, 'sleep', sleep)
    with pytest.raises(SystemExit):
        run_main(monkeypatch, ['--etcd', fake.url, '--patroni', local.url, '--scope', SCOPE, '--interval', '0',
                               '--release-after', '0.01', '--connect-timeout', str(CONNECT_TIMEOUT)])
    assert fake.paths()[-1] == '/v3/lease/revoke'
    assert fake.suspicions() == {} and fake.leases == {}
    assert 'waiting for a majority' in capsys.readouterr()[0]


# ---------------------------------------------------------------------------------------------
# move_etcd_leader_away: the Patroni leader's duty

def test_move_etcd_leader_away_to_a_started_member_that_sees_the_same_leader(etcd, leader_host):
    local = etcd(member_id='101', leader_id='101')
    other_leader = etcd(member_id='103', leader_id='103')  # a member that sees another leader
    peer = etcd(member_id='104', leader_id='101')
    local.add_member('pg1', [local.url], member_id='101')
    local.add_member(None, [], member_id='102')                           # not started
    local.add_member('pg2', ['http://%s:%d' % (LEADER_HOST, leader_host.refusing())], member_id='105')
    local.add_member('pg3', [other_leader.url], member_id='103')
    local.add_member('pg4', [peer.url], member_id='104')
    msg = watch.move_etcd_leader_away(args_for(local))
    assert msg == 'this host leads Patroni: moved the etcd leadership to pg4'
    moves = [body for path, body in local.requests if path == '/v3/maintenance/transfer-leadership']
    assert moves == [{'targetID': '104'}]
    assert local.paths() == ['/v3/maintenance/status', '/v3/cluster/member/list',
                             '/v3/maintenance/transfer-leadership']
    assert other_leader.paths() == ['/v3/maintenance/status']


def test_move_etcd_leader_away_when_another_member_leads_etcd(etcd):
    local = etcd(member_id='101', leader_id='102')
    local.add_member('pg1', [local.url], member_id='101')
    assert watch.move_etcd_leader_away(args_for(local)) is None
    assert local.paths() == ['/v3/maintenance/status']


# ---------------------------------------------------------------------------------------------
# main()

def run_main(monkeypatch, argv):
    """main() with argv, as pg2 among WATCHERS unless argv names a member."""
    if '--name' not in argv:
        argv = argv + ['--name', 'pg2', '--watchers', WATCHERS]
    monkeypatch.setattr(sys, 'argv', ['pgha-leader-watch.py'] + argv)
    return watch.main()


@pytest.mark.parametrize('release_after', [0, RELEASE_AFTER])
def test_main_once_on_a_replica(monkeypatch, capsys, etcd, patroni, leader_host, release_after):
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent())
    fake.requests[:] = []
    local = patroni(503)
    rc = run_main(monkeypatch, ['--etcd', fake.url, '--patroni', local.url, '--scope', SCOPE, '--once',
                                '--release-after', str(release_after), '--connect-timeout', str(CONNECT_TIMEOUT)])
    assert rc == 0
    assert local.requests == ['/primary']
    if release_after:
        assert '/v3/kv/range' in fake.paths()            # the replica's duty ran: one step, no delete
        assert fake.txns == []
    else:
        assert fake.requests == []                       # release off: no request to etcd at all
    assert capsys.readouterr() == ('', '')


def test_main_once_with_tls_shakes_hands_with_the_leaders_rest_api(monkeypatch, capsys, etcd, patroni, leader_host,
                                                                   pki, tls_port):
    """As deployed with TLS: main() makes CONTEXT from --cacert/--cert/--key, and the probe of the
    https leader completes a handshake with a REST API that requires a client certificate."""
    monkeypatch.setattr(watch, 'CONTEXT', None)          # main() sets it: restored after the test
    fake = etcd()
    port = tls_port('tls', server_context(pki))
    make_cluster(fake, port.port, leader_host.silent(), scheme='https')
    local = patroni(503)
    rc = run_main(monkeypatch, ['--etcd', fake.url, '--patroni', local.url, '--scope', SCOPE, '--once',
                                '--release-after', str(RELEASE_AFTER), '--connect-timeout', '1',
                                '--cacert', pki['ca'], '--cert', pki['cert'], '--key', pki['key']])
    assert rc == 0
    assert capsys.readouterr() == ('', '')
    seen = port.result()
    assert (seen['first'], seen['handshake'], seen['peercert'], seen['read'], seen['unwrap']) == \
        (b'\x16', 'ok', True, b'', 'ok')
    assert fake.txns == []


class _TickDone(Exception):
    pass


def test_main_ticks_every_interval_whatever_the_tick_took(monkeypatch, capsys, etcd, patroni, leader_host):
    """While the leader's host is silent a tick spends two connect timeouts probing it; the
    loop then sleeps only what is left of --interval, so a tick starts every interval."""
    fake = etcd()
    make_cluster(fake, leader_host.silent(), leader_host.silent())
    local = patroni(503)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        raise _TickDone()
    monkeypatch.setattr(watch.time, 'sleep', sleep)
    with pytest.raises(_TickDone):
        run_main(monkeypatch, ['--etcd', fake.url, '--patroni', local.url, '--scope', SCOPE, '--interval', '2',
                               '--release-after', str(RELEASE_AFTER), '--connect-timeout', str(CONNECT_TIMEOUT)])
    assert capsys.readouterr() == ('', '')
    assert len(slept) == 1
    # the tick waited out two silent probes (2 x CONNECT_TIMEOUT) before it slept
    assert 0.0 <= slept[0] <= 2 - 2 * CONNECT_TIMEOUT + 0.05


def test_main_once_on_the_leader_checks_the_etcd_leadership(monkeypatch, capsys, etcd, patroni):
    fake = etcd(member_id='101', leader_id='102')
    local = patroni(200)
    rc = run_main(monkeypatch, ['--etcd', fake.url, '--patroni', local.url, '--scope', SCOPE, '--once',
                                '--release-after', str(RELEASE_AFTER)])
    assert rc == 0
    assert fake.paths() == ['/v3/maintenance/status']    # the leader's duty, not the replica's
    assert capsys.readouterr() == ('', '')


def test_main_once_without_a_local_patroni_logs_and_exits_0(monkeypatch, capsys, etcd):
    fake = etcd()
    s = socket.socket()
    s.bind(('127.0.0.1', 0))  # bound, not listening: refused
    try:
        rc = run_main(monkeypatch, ['--etcd', fake.url, '--patroni', 'http://127.0.0.1:%d' % s.getsockname()[1],
                                    '--scope', SCOPE, '--once', '--release-after', str(RELEASE_AFTER)])
    finally:
        s.close()
    assert rc == 0
    out, err = capsys.readouterr()
    assert out == '' and err.startswith('check failed: ')
    assert fake.requests == []


def test_main_once_with_a_non_http_reply_logs_and_exits_0(monkeypatch, capsys, etcd):
    """A reply that is not HTTP (http.client.BadStatusLine, not an OSError) is logged like any
    failed check: the service must not die and lose its silence clock."""
    fake = etcd()
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(1)
    server.settimeout(5)

    def answer_like_ssh():
        try:
            conn = server.accept()[0]
        except OSError:
            return
        with conn:
            conn.sendall(b'SSH-2.0-OpenSSH_9.2\r\n')

    thread = threading.Thread(target=answer_like_ssh, daemon=True)
    thread.start()
    try:
        rc = run_main(monkeypatch, ['--etcd', fake.url, '--patroni', 'http://127.0.0.1:%d' % server.getsockname()[1],
                                    '--scope', SCOPE, '--once', '--release-after', str(RELEASE_AFTER)])
    finally:
        thread.join(5)
        server.close()
    assert rc == 0
    out, err = capsys.readouterr()
    assert out == '' and err.startswith('check failed: ')
    assert fake.requests == []
