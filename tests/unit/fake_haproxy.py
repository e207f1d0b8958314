# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake HAProxy: one server state served through a real stats page (http.server: ``<uri>;csv`` and
the admin form's POST, answering 303 ``Location: <uri>;st=...`` like HAProxy) and a real runtime API
Unix socket (``show stat``, ``set server <b>/<s> health|state <x>``). Every action is recorded."""

import base64
import os
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

HEADER = ('# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,'
          'weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,'
          'rate_lim,rate_max,check_status,check_code,check_duration,')
COLUMNS = HEADER[2:].rstrip(',').split(',')
ACTIONS = {'hrunn': ('health', 'up'), 'hdown': ('health', 'down'), 'ready': ('state', 'ready'),
           'drain': ('state', 'drain'), 'maint': ('state', 'maint')}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class FakeHAProxy(object):
    def __init__(self, members=('pg1', 'pg2', 'pg3'), leader='pg1', auth=('admin', 'statspw'), admin=True,
                 uri='/', socket_dir=None):
        self.lock = threading.RLock()
        self.auth = auth
        self.admin = admin
        self.uri = uri
        self.actions = []       # (monotonic time, backend, server, kind, value)
        self.backends = {
            'postgres_write': dict((m, {'status': 'UP' if m == leader else 'DOWN', 'scur': 0}) for m in members),
            'postgres_read': dict((m, {'status': 'DOWN' if m == leader else 'UP', 'scur': 0}) for m in members),
        }
        self.fail_actions = False   # every action answers st=NONE / an error line
        self.ignore_actions = False  # actions "succeed" but change nothing (a HAProxy that will not route)
        fake = self

        class Handler(StatsHandler):
            haproxy = fake

        self.http = _Server(('127.0.0.1', 0), Handler)
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, kwargs={'poll_interval': 0.01}, daemon=True).start()
        self.socket_path = None
        self.unix = None
        if socket_dir:
            self.socket_path = os.path.join(str(socket_dir), 'admin.sock')
            self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.unix.bind(self.socket_path)
            self.unix.listen(16)
            threading.Thread(target=self._unix_loop, daemon=True).start()

    @property
    def url(self):
        return 'http://127.0.0.1:%d%s' % (self.port, self.uri)

    def stop(self):
        self.http.shutdown()
        self.http.server_close()
        if self.unix is not None:
            self.unix.close()

    # -- state ---------------------------------------------------------------------------------
    def csv(self):
        with self.lock:
            lines = [HEADER]
            lines.append('stats,FRONTEND,,,0,0,3000,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,')
            for b, servers in self.backends.items():
                lines.append('%s,FRONTEND,,,0,0,100,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,3,0,,,,0,0,0,0,,,,' % b)
                for name, s in servers.items():
                    values = dict.fromkeys(COLUMNS, '')
                    values.update(pxname=b, svname=name, scur=str(s['scur']), status=s['status'],
                                  check_status='L7OK' if s['status'].startswith('UP') else 'L7STS')
                    lines.append(','.join(values[c] for c in COLUMNS) + ',')
                lines.append('%s,BACKEND,0,0,0,0,100,0,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,0,0,,1,3,0,,0,,1,0,,0,,,,' % b)
            return '\n'.join(lines) + '\n\n'

    def apply(self, backend, server, kind, value):
        with self.lock:
            self.actions.append((time.monotonic(), backend, server, kind, value))
            if backend not in self.backends:
                return 'No such backend.'
            if server not in self.backends[backend]:
                return 'No such server.'
            if self.fail_actions:
                return 'Permission denied'
            if self.ignore_actions:
                return ''
            s = self.backends[backend][server]
            if kind == 'health':
                if not s['status'].startswith(('MAINT', 'DRAIN')):
                    s['status'] = 'UP' if value == 'up' else 'DOWN'
            elif value == 'maint':
                s['status'] = 'MAINT'
            elif value == 'drain':
                s['status'] = 'DRAIN'
            else:
                s['status'] = 'UP'
            return ''

    def up(self, backend):
        with self.lock:
            return sorted(n for n, s in self.backends[backend].items() if s['status'].startswith('UP'))

    # -- runtime API --------------------------------------------------------------------------------
    def _unix_loop(self):
        while True:
            try:
                conn, dummy = self.unix.accept()
            except OSError:
                return
            try:
                line = b''
                while not line.endswith(b'\n'):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    line += chunk
                conn.sendall(self.runtime(line.decode().strip()).encode())
            except OSError:
                pass
            finally:
                conn.close()

    def runtime(self, line):
        words = line.split()
        if words == ['show', 'stat']:
            return self.csv()
        if len(words) == 5 and words[:2] == ['set', 'server'] and '/' in words[2] and words[3] in ('health', 'state'):
            backend, server = words[2].split('/', 1)
            answer = self.apply(backend, server, words[3], words[4])
            return (answer + '\n\n') if answer else '\n'
        return 'Unknown command.\n\n'


class StatsHandler(BaseHTTPRequestHandler):
    haproxy = None
    protocol_version = 'HTTP/1.0'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _authorized(self):
        auth = self.haproxy.auth
        if not auth:
            return True
        expected = 'Basic ' + base64.b64encode(('%s:%s' % auth).encode()).decode()
        if self.headers.get('Authorization') != expected:
            self.send_response(401)
            self.send_header('WWW-Authenticate', 'Basic realm="HAProxy Statistics"')
            self.send_header('Content-Length', '0')
            self.end_headers()
            return False
        return True

    def do_GET(self):
        if not self._authorized():
            return
        if self.path != self.haproxy.uri + ';csv':
            body = b'<html>stats</html>'
            ctype = 'text/html'
        else:
            body = self.haproxy.csv().encode()
            ctype = 'text/plain'
        self.send_response(200)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if not self._authorized():
            return
        length = int(self.headers.get('Content-Length') or 0)
        form = parse_qs(self.rfile.read(length).decode())
        servers = form.get('s', [''])
        backend = form.get('b', [''])[0]
        action = form.get('action', [''])[0]
        if not self.haproxy.admin:
            code = 'DENY'
        elif action not in ACTIONS:
            code = 'IVAL'
        else:
            # As HAProxy: DONE when every server took the action, PART when some did, NONE when none.
            refused = [bool(self.haproxy.apply(backend, server, *ACTIONS[action])) for server in servers]
            code = 'NONE' if all(refused) else 'PART' if any(refused) else 'DONE'
        self.send_response(303)
        self.send_header('Location', '%s;st=%s' % (self.haproxy.uri, code))
        self.send_header('Content-Length', '0')
        self.end_headers()
