# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real HTTP server emulating the REST API of a 3-member Patroni cluster (3.0.2 or 4.0.x).

Each member listens on its own 127.0.0.1 ephemeral port; all share one cluster state.
State transitions are real: a switchover/failover moves the leader and bumps the timeline,
the old leader rejoins as a replica after ``rejoin_delay`` seconds; a restart changes the
member's postmaster start time. Faults can be injected per member.
"""

import base64
import copy
import datetime
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler

from ansible_collections.pgha.cluster.tests.unit.utils import LocalHTTPServer


class Member(object):
    def __init__(self, name):
        self.name = name
        self.state = 'running'
        self.timeline = 1
        self.lag = 0
        self.tags = {}
        self.pending_restart = False
        self.start_time = '2026-11-23 04:00:00.000+00:00'
        self.server = None
        self.port = None
        # api_url advertised in GET /cluster when it differs from the one the tests connect to
        self.advertised_url = None
        # faults: 'hang' (seconds), 'badjson' (bool), 'status' (int, for GET requests)
        self.faults = {}
        # walsenders in its GET /patroni (Patroni's `replication`), e.g. cascading standbys of a replica
        self.replication = []


class FakePatroni(object):
    def __init__(self, version='4.0.7', names=('pg1', 'pg2', 'pg3'), leader='pg1', auth=('patroni', 'secret'),
                 synchronous=False, rejoin_delay=0.3, tls=None):
        self.version = version
        # (certfile, keyfile): serve HTTPS like Patroni's restapi.certfile/keyfile
        self.tls = tls
        self.lock = threading.RLock()
        self.members = dict((n, Member(n)) for n in names)
        self.order = list(names)
        self.leader = leader
        self.auth = auth
        self.paused = False
        self.scheduled = None
        self.sync_standby = None
        self.rejoin_delay = rejoin_delay
        self.config = {
            'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10, 'maximum_lag_on_failover': 1048576,
            'postgresql': {'use_pg_rewind': True, 'parameters': {'max_connections': 100, 'wal_level': 'replica'}},
        }
        if synchronous:
            self.config['synchronous_mode'] = True
            self.sync_standby = [n for n in names if n != leader][0]
        self.requests = []          # (member, method, path, body)
        self.request_times = []     # (time.monotonic(), member, method, path)
        self.overrides = {}         # (method, path) -> (status, body) for the next request
        self.timers = []
        for m in self.members.values():
            m.state = 'running' if m.name == leader else self.replica_state
        self.history = []

    # -- naming generations -------------------------------------------------------------
    @property
    def v3(self):
        return self.version.startswith('3.')

    @property
    def replica_state(self):
        return 'running' if self.v3 else 'streaming'

    @property
    def primary_word(self):
        return 'master' if self.v3 else 'primary'

    # -- lifecycle -------------------------------------------------------------------------
    def start(self):
        for name in self.order:
            self._start_member(self.members[name])
        return self

    def _start_member(self, m):
        fake = self

        class Handler(PatroniHandler):
            cluster = fake
            member = m

        server = LocalHTTPServer(('127.0.0.1', m.port or 0), Handler)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        m.server = server
        m.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.01}, daemon=True).start()

    def stop_member(self, name):
        """Make a member unreachable (connection refused)."""
        m = self.members[name]
        if m.server is not None:
            m.server.shutdown()
            m.server.server_close()
            m.server = None

    def stop(self):
        for t in self.timers:
            t.cancel()
        for name in self.order:
            self.stop_member(name)

    def url(self, name):
        return '%s://127.0.0.1:%d' % ('https' if self.tls else 'http', self.members[name].port)

    @property
    def urls(self):
        return [self.url(n) for n in self.order]

    def later(self, delay, func):
        t = threading.Timer(delay, func)
        t.daemon = True
        self.timers.append(t)
        t.start()

    # -- views -------------------------------------------------------------------------------
    def role_in_cluster(self, m):
        if m.name == self.leader:
            return 'leader'
        if self.sync_standby == m.name:
            return 'sync_standby'
        return 'replica'

    def cluster_json(self):
        with self.lock:
            members = []
            for name in self.order:
                m = self.members[name]
                entry = {'name': m.name, 'role': self.role_in_cluster(m), 'state': m.state,
                         'api_url': (m.advertised_url or self.url(name)) + '/patroni', 'host': '10.0.0.%d' % (self.order.index(name) + 1),
                         'port': 5432, 'timeline': m.timeline}
                if m.name != self.leader:
                    entry['lag'] = m.lag
                    if not self.v3:
                        entry['receive_lag'] = m.lag if isinstance(m.lag, int) else 'unknown'
                        entry['replay_lag'] = entry['receive_lag']
                if m.tags:
                    entry['tags'] = m.tags
                if m.pending_restart:
                    entry['pending_restart'] = True
                members.append(entry)
            data = {'members': members}
            if not self.v3:
                data['scope'] = 'pgha'
            if self.paused:
                data['pause'] = True
            if self.scheduled:
                data['scheduled_switchover'] = dict(self.scheduled)
            return data

    def patroni_json(self, m):
        with self.lock:
            leader = m.name == self.leader
            data = {'state': m.state, 'postmaster_start_time': m.start_time,
                    'role': self.primary_word if leader else 'replica', 'server_version': 150008,
                    'timeline': m.timeline, 'dcs_last_seen': int(time.time()),
                    'patroni': {'version': self.version, 'scope': 'pgha', 'name': m.name}}
            if leader:
                data['xlog'] = {'location': 67108864}
            else:
                data['xlog'] = {'received_location': 67108864, 'replayed_location': 67108864, 'paused': False}
                if not self.v3:
                    data['replication_state'] = 'streaming'
            if m.replication:
                data['replication'] = [dict(r) for r in m.replication]
            if m.pending_restart:
                data['pending_restart'] = True
            if self.paused:
                data['pause'] = True
            return data

    # -- transitions ----------------------------------------------------------------------------
    def _takeover(self, candidate):
        """Promote candidate now; the old leader rejoins later on the new timeline."""
        with self.lock:
            old = self.leader
            new_tl = max(m.timeline for m in self.members.values()) + 1
            self.history.append([new_tl - 1, 67108864, 'no recovery target specified',
                                 datetime.datetime.now(datetime.timezone.utc).isoformat(), candidate])
            self.leader = candidate
            c = self.members[candidate]
            c.timeline, c.state, c.lag = new_tl, 'running', 0
            if self.sync_standby == candidate:
                self.sync_standby = old
            if old and old in self.members:
                self.members[old].state = 'stopped'
                self.members[old].lag = 'unknown'

        def rejoin():
            with self.lock:
                for m in self.members.values():
                    if m.name != self.leader and (m.name == old or m.state in ('running', 'streaming')):
                        m.state, m.timeline, m.lag = self.replica_state, new_tl, 0
        self.later(self.rejoin_delay, rejoin)

    def _failover_problem(self, leader, candidate, action):
        if leader and leader != self.leader:
            return 'leader name does not match'
        if candidate:
            if action == 'switchover' and self.config.get('synchronous_mode') and candidate != self.sync_standby:
                return 'candidate name does not match with sync_standby'
            if candidate not in self.members:
                return 'candidate does not exists'
            m = self.members[candidate]
            if m.tags.get('nofailover') or m.state not in ('running', 'streaming'):
                return '%s is not possible: no good candidates have been found' % action
        return None


class PatroniHandler(BaseHTTPRequestHandler):
    cluster = None
    member = None
    protocol_version = 'HTTP/1.0'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _send(self, status, body, content_type='application/json'):
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _text(self, status, text):
        self._send(status, text, 'text/html')

    def _body(self):
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        try:
            return json.loads(raw.decode('utf-8')) if raw else {}
        except ValueError:
            return None

    def _check_auth(self):
        auth = self.cluster.auth
        if not auth:
            return True
        header = self.headers.get('Authorization')
        if header is None:
            self._text(401, 'no auth header received')
            return False
        expected = 'Basic ' + base64.b64encode(('%s:%s' % auth).encode()).decode()
        if header != expected:
            self._text(401, 'not authenticated')
            return False
        return True

    def _faults(self, method, path):
        f = self.member.faults
        if f.get('hang'):
            time.sleep(f['hang'])
        if f.get('hang_post') and method != 'GET':
            time.sleep(f['hang_post'])
        override = self.cluster.overrides.pop((method, path), None)
        if override:
            self._text(*override)
            return True
        if method == 'GET' and f.get('status'):
            self._text(f['status'], 'service unavailable')
            return True
        if method == 'GET' and f.get('badjson'):
            self._send(200, b'{"members": [ this is not json')
            return True
        return False

    def _dispatch(self, method):
        path = self.path.split('?')[0].rstrip('/') or '/'
        body = self._body() if method in ('POST', 'PATCH', 'PUT') else None
        self.cluster.requests.append((self.member.name, method, path, body))
        self.cluster.request_times.append((time.monotonic(), self.member.name, method, path))
        if self._faults(method, path):
            return
        handler = getattr(self, 'h_%s_%s' % (method, path.strip('/').replace('/', '_') or 'root'), None)
        if handler is None:
            self._text(404, 'Not Found')
            return
        if method != 'GET' and not self._check_auth():
            return
        if body is None and method in ('POST', 'PATCH', 'PUT'):
            self._text(400, 'Bad Request')
            return
        if method in ('GET', 'DELETE'):
            handler()
        else:
            handler(body)

    def do_GET(self):
        self._dispatch('GET')

    def do_POST(self):
        self._dispatch('POST')

    def do_PATCH(self):
        self._dispatch('PATCH')

    def do_DELETE(self):
        self._dispatch('DELETE')

    # -- endpoints ---------------------------------------------------------------------------
    def h_GET_cluster(self):
        self._send(200, self.cluster.cluster_json())

    def h_GET_liveness(self):
        self._text(200, '')

    def h_GET_patroni(self):
        self._send(200, self.cluster.patroni_json(self.member))

    def h_GET_config(self):
        with self.cluster.lock:
            self._send(200, self.cluster.config)

    def h_GET_history(self):
        self._send(200, self.cluster.history)

    def h_PATCH_config(self, body):
        c = self.cluster

        def patch(target, changes):
            for k, v in changes.items():
                if v is None:
                    target.pop(k, None)
                elif isinstance(v, dict) and isinstance(target.get(k), dict):
                    patch(target[k], v)
                else:
                    target[k] = copy.deepcopy(v)
        with c.lock:
            patch(c.config, body)
            params = (body.get('postgresql') or {}).get('parameters') or {}
            if any(k in ('max_connections', 'shared_buffers', 'wal_level') for k in params):
                for m in c.members.values():
                    m.pending_restart = True
            self._send(200, c.config)

    def h_POST_switchover(self, body, action='switchover'):
        c = self.cluster
        leader = body.get('leader')
        candidate = body.get('candidate') or body.get('member')
        scheduled_at = body.get('scheduled_at')
        if action == 'failover' and not candidate:
            return self._text(400, 'Failover could be performed only to a specific candidate')
        if action == 'switchover' and not leader:
            if c.v3:
                # Patroni 3.0 still accepted the deprecated "master" key
                leader = body.get('master')
            if not leader:
                return self._text(400, 'Switchover could be performed only from a specific leader')
        if scheduled_at:
            if c.paused:
                return self._text(400, "Can't schedule switchover in the paused state")
            with c.lock:
                c.scheduled = {'at': scheduled_at, 'from': leader, 'to': candidate}
            return self._text(202, 'Switchover scheduled')
        if c.paused and not candidate:
            return self._text(400, 'Switchover is possible only to a specific candidate in a paused state')
        if leader and leader == candidate:
            return self._text(400, 'Switchover target and source are the same')
        problem = c._failover_problem(leader, candidate, action)
        if problem:
            return self._text(412, problem)
        c._takeover(candidate)
        return self._text(200, 'Successfully %sed over to "%s"' % (action[:-4], candidate))

    def h_POST_failover(self, body):
        return self.h_POST_switchover(body, action='failover')

    def h_DELETE_switchover(self):
        with self.cluster.lock:
            if self.cluster.scheduled:
                self.cluster.scheduled = None
                return self._text(200, 'scheduled switchover deleted')
        return self._text(404, 'no switchover is scheduled')

    def h_POST_restart(self, body):
        c = self.cluster
        m = self.member
        if body.get('restart_pending') and not m.pending_restart:
            return self._text(503, 'restart conditions are not satisfied')
        with c.lock:
            m.state = 'restarting'
            m.pending_restart = False

        def done():
            with c.lock:
                m.state = 'running' if m.name == c.leader else c.replica_state
                m.start_time = datetime.datetime.now(datetime.timezone.utc).isoformat()
        c.later(0.2, done)
        return self._text(200, 'restarted successfully')
