# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal PgBouncer admin console speaking the PostgreSQL wire protocol (v3), so that psycopg2
really talks to it: SSLRequest (refused, or TLS with a given certificate), startup, trust /
cleartext / md5 password authentication, ParameterStatus, BackendKeyData, ReadyForQuery, simple
queries (PAUSE, RESUME, RECONNECT, SHOW ...), CancelRequest, Terminate.

Every command received is recorded with its time (time.monotonic()) in ``commands``. Faults:
``fail[command] = message`` answers that command with an ErrorResponse; ``hang_pause = True``
never answers PAUSE (until a cancel request or a RESUME on another connection)."""

import hashlib
import socket
import ssl
import struct
import threading
import time

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608


def _msg(kind, payload=b''):
    return kind + struct.pack('!I', len(payload) + 4) + payload


def _cstr(text):
    return text.encode('utf-8') + b'\0'


class FakePgBouncer(object):
    def __init__(self, user='pgbouncer', password=None, auth='md5', tls=None, name='pgb'):
        self.user = user
        self.password = password
        self.auth = auth if password else 'trust'
        self.tls = tls          # (certfile, keyfile): accept SSLRequest
        self.name = name
        self.paused = False
        self.commands = []      # (monotonic time, command)
        self.fail = {}          # command word -> error message
        self.hang_pause = False
        self.lock = threading.Lock()
        self.pending = {}       # backend pid -> threading.Event (a PAUSE waiting)
        self.next_pid = 1000
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    # -- helpers for tests ---------------------------------------------------------------------
    def words(self):
        return [c.split()[0] for t, c in self.commands]

    def times(self, word):
        return [t for t, c in self.commands if c.split()[0] == word]

    def stop(self):
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass
        for ev in list(self.pending.values()):
            ev.set()

    # -- server ----------------------------------------------------------------------------------
    def _accept(self):
        while self.running:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        data = b''
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError()
            data += chunk
        return data

    def _read_startup(self, conn):
        length = struct.unpack('!I', self._read(conn, 4))[0]
        body = self._read(conn, length - 4)
        return struct.unpack('!I', body[:4])[0], body[4:]

    def _read_message(self, conn):
        kind = self._read(conn, 1)
        length = struct.unpack('!I', self._read(conn, 4))[0]
        return kind, self._read(conn, length - 4)

    @staticmethod
    def _error(text, code='08P01'):
        payload = b'S' + _cstr('ERROR') + b'V' + _cstr('ERROR') + b'C' + _cstr(code) + b'M' + _cstr(text) + b'\0'
        return _msg(b'E', payload)

    def _serve(self, conn):
        try:
            self._session(conn)
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _session(self, conn):
        while True:
            code, body = self._read_startup(conn)
            if code == SSL_REQUEST:
                if self.tls:
                    conn.sendall(b'S')
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(*self.tls)
                    conn = ctx.wrap_socket(conn, server_side=True)
                else:
                    conn.sendall(b'N')
                continue
            if code == GSS_REQUEST:
                conn.sendall(b'N')
                continue
            if code == CANCEL_REQUEST:
                pid = struct.unpack('!I', body[:4])[0]
                ev = self.pending.get(pid)
                if ev is not None:
                    ev.cancelled = True
                    ev.set()
                return
            break
        params = body.split(b'\0')
        startup = dict(zip([p.decode() for p in params[0::2]], [p.decode() for p in params[1::2]]))
        user = startup.get('user')
        if user != self.user:
            conn.sendall(self._error('no such user: %s' % user, '28000'))
            return
        if self.auth == 'cleartext':
            conn.sendall(_msg(b'R', struct.pack('!I', 3)))
            kind, payload = self._read_message(conn)
            ok = kind == b'p' and payload.rstrip(b'\0').decode() == self.password
        elif self.auth == 'md5':
            salt = b'\x01\x02\x03\x04'
            conn.sendall(_msg(b'R', struct.pack('!I', 5) + salt))
            kind, payload = self._read_message(conn)
            inner = hashlib.md5((self.password + self.user).encode()).hexdigest().encode()
            expected = b'md5' + hashlib.md5(inner + salt).hexdigest().encode()
            ok = kind == b'p' and payload.rstrip(b'\0') == expected
        else:
            ok = True
        if not ok:
            conn.sendall(self._error('password authentication failed for user "%s"' % user, '28P01'))
            return
        with self.lock:
            self.next_pid += 1
            pid = self.next_pid
            self.connections += 1
        out = _msg(b'R', struct.pack('!I', 0))
        for k, v in (('server_version', '1.24.1/bouncer'), ('client_encoding', 'UTF8'), ('server_encoding', 'UTF8'),
                     ('DateStyle', 'ISO'), ('standard_conforming_strings', 'on'), ('integer_datetimes', 'on')):
            out += _msg(b'S', _cstr(k) + _cstr(v))
        out += _msg(b'K', struct.pack('!II', pid, 4242))
        out += _msg(b'Z', b'I')
        conn.sendall(out)
        while True:
            kind, payload = self._read_message(conn)
            if kind == b'X':
                return
            if kind != b'Q':
                conn.sendall(self._error('only simple queries') + _msg(b'Z', b'I'))
                continue
            query = payload.rstrip(b'\0').decode().strip().rstrip(';')
            conn.sendall(self._answer(query, pid) + _msg(b'Z', b'I'))

    def _answer(self, query, pid):
        with self.lock:
            self.commands.append((time.monotonic(), query))
        word = query.split()[0].upper() if query else ''
        if word in self.fail:
            return self._error(self.fail[word])
        if word == 'PAUSE':
            if self.paused:
                return self._error('already suspended/paused')
            if self.hang_pause:
                ev = threading.Event()
                ev.cancelled = False
                self.pending[pid] = ev
                ev.wait(60)
                self.pending.pop(pid, None)
                if ev.cancelled:
                    return self._error('canceling statement due to user request', '57014')
                return self._error('PAUSE cancelled by RESUME')
            self.paused = True
            return _msg(b'C', _cstr('PAUSE'))
        if word == 'RESUME':
            for ev in list(self.pending.values()):
                ev.set()
            if not self.paused:
                return self._error('pooler is not paused/suspended')
            self.paused = False
            return _msg(b'C', _cstr('RESUME'))
        if word in ('RECONNECT', 'RELOAD', 'KILL', 'WAIT_CLOSE'):
            return _msg(b'C', _cstr(word))
        if word == 'SHOW':
            cols = [b'name', b'value']
            desc = struct.pack('!H', len(cols))
            for c in cols:
                desc += c + b'\0' + struct.pack('!IhIhih', 0, 0, 25, -1, -1, 0)
            row = struct.pack('!H', 2)
            for v in (b'paused', b'1' if self.paused else b'0'):
                row += struct.pack('!I', len(v)) + v
            return _msg(b'T', desc) + _msg(b'D', row) + _msg(b'C', _cstr('SHOW'))
        return self._error('invalid command')
