# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HAProxy client for the collection: read server states, force health/state, wait for a routing.

Two transports, the same operations:

* the runtime API over its Unix socket (``stats socket ... level admin``), for a module running on
  the balancer: ``show stat``, ``set server <b>/<s> health up|down``, ``set server <b>/<s> state
  ready|drain|maint``;
* the stats page over HTTP(S) with basic auth, for a module running elsewhere (the controller):
  ``GET <uri>;csv`` for the states, and the page's admin form (``POST <uri>`` with ``s=<server>``,
  ``action=<hrunn|hdown|ready|drain|maint>``, ``b=<backend>``; HAProxy answers 303 with
  ``Location: <uri>;st=<DONE|NONE|PART|ERRP|EXCD|DENY|UNKN|IVAL>``). The page accepts actions only
  with ``stats admin if <condition>`` in its listener (the haproxy role's ``haproxy_stats_admin``).
"""

import csv
import io
import socket
import time

from urllib.error import HTTPError
from urllib.parse import urlencode

from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.urls import open_url

# Runtime API command and stats page action of each settable state.
HEALTH_STATES = ('up', 'down')
ADMIN_STATES = ('ready', 'drain', 'maint')
STATES = HEALTH_STATES + ADMIN_STATES
PAGE_ACTIONS = {'up': 'hrunn', 'down': 'hdown', 'ready': 'ready', 'drain': 'drain', 'maint': 'maint'}
PAGE_STATUS = {
    'DONE': 'done',
    'NONE': 'nothing done (unknown backend or server, or the action does not apply to it)',
    'PART': 'only partly done',
    'ERRP': 'the request was malformed',
    'EXCD': 'the request was too large',
    'DENY': 'actions are not allowed on this stats page: it needs `stats admin if <condition>` '
            '(the haproxy role sets it with haproxy_stats_admin when the page has a user and password)',
    'UNKN': 'unexpected error',
    'IVAL': 'invalid request (unknown action?)',
}
SPECIAL_ROWS = ('FRONTEND', 'BACKEND')


class HAProxyError(Exception):
    """An error talking to HAProxy; ``str()`` is a message meant for the user."""


def haproxy_argument_spec():
    """Connection options of the modules that talk to HAProxy."""
    return dict(
        socket=dict(type='path'),
        stats_url=dict(type='str'),
        stats_user=dict(type='str'),
        stats_password=dict(type='str', no_log=True),
        ca_path=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        timeout=dict(type='float', default=5.0),
    )


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def parse_csv(text):
    """Parse ``show stat`` / ``<uri>;csv`` output into a list of dicts keyed by the header's names.

    The header line starts with ``# `` (``# pxname,svname,...``); lines after it that do not have the
    header's columns (blank lines, the trailing empty line) are skipped. Raises HAProxyError without
    a header."""
    lines = [line for line in to_text(text, errors='surrogate_or_replace').splitlines() if line.strip()]
    if not lines or not lines[0].startswith('#'):
        raise HAProxyError('not HAProxy CSV statistics (no "# pxname,svname,..." header); starts with %r'
                           % (lines[0][:80] if lines else ''))
    header = [h.strip() for h in lines[0].lstrip('#').strip().split(',')]
    if header[:2] != ['pxname', 'svname']:
        raise HAProxyError('unexpected HAProxy CSV header: %r' % lines[0][:80])
    rows = []
    for values in csv.reader(io.StringIO('\n'.join(lines[1:]))):
        if len(values) < 2:
            continue
        rows.append(dict(zip(header, values)))
    return rows


def server_row(row):
    """The summary of one CSV server row used in results: backend, server, status, scur, check."""
    return dict(backend=row.get('pxname', ''), server=row.get('svname', ''), status=row.get('status', ''),
                scur=_int(row.get('scur')), check=row.get('check_status', ''))


def is_up(status):
    """UP, or UP going down (``UP 1/2``); not DRAIN, MAINT, DOWN, NOLB or ``no check``."""
    return (status or '').startswith('UP')


def in_state(status, state):
    """Whether a server showing ``status`` already is in ``state`` (nothing to send)."""
    status = status or ''
    if state == 'up':
        return status == 'UP'
    if state == 'down':
        return status == 'DOWN'
    if state == 'maint':
        return status.startswith('MAINT')
    if state == 'drain':
        return status.startswith('DRAIN')
    if state == 'ready':
        return not (status.startswith('MAINT') or status.startswith('DRAIN'))
    raise ValueError(state)


class HAProxyClient(object):
    """HAProxy through its runtime API socket (``socket``) or its stats page (``stats_url``)."""

    def __init__(self, socket_path=None, stats_url=None, user=None, password=None, ca_path=None,
                 validate_certs=True, timeout=5.0):
        if bool(socket_path) == bool(stats_url):
            raise HAProxyError('give either socket (the runtime API socket, on the balancer) or stats_url (the stats '
                               'page, e.g. https://10.0.0.21:7000/), not both and not neither')
        self.socket_path = socket_path
        self.stats_url = None
        if stats_url:
            url = stats_url.strip()
            if url.count('/') < 3:
                url += '/'
            self.stats_url = url.split(';')[0]
        self.user = user
        self.password = password
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.timeout = float(timeout)

    @classmethod
    def from_params(cls, p):
        return cls(socket_path=p.get('socket'), stats_url=p.get('stats_url'), user=p.get('stats_user'),
                   password=p.get('stats_password'), ca_path=p.get('ca_path'),
                   validate_certs=p.get('validate_certs', True), timeout=p.get('timeout') or 5.0)

    @property
    def name(self):
        """Where this HAProxy is reached (for results and messages; never a password)."""
        return self.socket_path or self.stats_url

    # -- transports ---------------------------------------------------------------------------
    def command(self, line):
        """One runtime API command over the Unix socket; returns HAProxy's answer."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(self.socket_path)
                sock.sendall(line.encode('utf-8') + b'\n')
                chunks = []
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
            except socket.timeout:
                raise HAProxyError('HAProxy runtime API %s did not answer %r within %ss'
                                   % (self.socket_path, line, self.timeout))
            except OSError as e:
                raise HAProxyError('cannot use the HAProxy runtime API socket %s: %s (is HAProxy running, and may this '
                                   'user open the socket? it is mode 660, group haproxy)'
                                   % (self.socket_path, to_native(e)))
        finally:
            sock.close()
        return to_text(b''.join(chunks), errors='surrogate_or_replace')

    def _open(self, url, data=None):
        return open_url(url, data=data, method='POST' if data is not None else 'GET',
                        headers={'Content-Type': 'application/x-www-form-urlencoded'} if data is not None else None,
                        url_username=self.user, url_password=self.password, force_basic_auth=bool(self.user),
                        timeout=self.timeout, validate_certs=self.validate_certs, ca_path=self.ca_path,
                        use_proxy=False, follow_redirects='none', use_netrc=False)

    def _page_error(self, what, e):
        if isinstance(e, HTTPError):
            if e.code == 401:
                return HAProxyError('the HAProxy stats page %s refused the credentials (401) for %s: check stats_user '
                                    'and stats_password (haproxy_stats_user/haproxy_stats_password)' % (self.stats_url, what))
            return HAProxyError('the HAProxy stats page %s answered HTTP %s to %s' % (self.stats_url, e.code, what))
        if isinstance(e, socket.timeout) or 'timed out' in to_native(e):
            return HAProxyError('the HAProxy stats page %s did not answer %s within %ss' % (self.stats_url, what, self.timeout))
        reason = getattr(e, 'reason', e)
        if 'CERTIFICATE_VERIFY_FAILED' in to_native(reason):
            return HAProxyError('the TLS certificate of the HAProxy stats page %s cannot be verified (%s): set ca_path '
                                'to the CA that signed it' % (self.stats_url, to_native(reason)))
        return HAProxyError('cannot reach the HAProxy stats page %s for %s: %s' % (self.stats_url, what, to_native(reason)))

    def _page_csv(self):
        try:
            resp = self._open(self.stats_url + ';csv')
            return resp.read()
        except Exception as e:  # pylint: disable=broad-except
            raise self._page_error('GET ;csv', e)

    def _page_action(self, backend, servers, action):
        # The admin form takes several servers in one POST: one round trip, one st= for all.
        body = urlencode([('s', s) for s in servers] + [('action', action), ('b', backend)]).encode('ascii')
        what = 'the action %s on %s/%s' % (action, backend, ','.join(servers))
        location = None
        try:
            resp = self._open(self.stats_url, data=body)
            location = resp.headers.get('Location') if hasattr(resp, 'headers') else None
            status = resp.getcode()
        except HTTPError as e:
            status = e.code
            if status not in (301, 302, 303, 307):
                raise self._page_error(what, e)
            location = e.headers.get('Location') if e.headers else None
        except Exception as e:  # pylint: disable=broad-except
            raise self._page_error(what, e)
        code = None
        if location and ';st=' in location:
            code = location.split(';st=', 1)[1][:4]
        if code != 'DONE':
            raise HAProxyError('the HAProxy stats page %s did not do %s: %s (HTTP %s, st=%s)'
                               % (self.stats_url, what, PAGE_STATUS.get(code, 'no admin status in the answer'),
                                  status, code))

    # -- operations ---------------------------------------------------------------------------
    def stat_rows(self):
        """Every CSV row (frontends, backends and servers) as dicts keyed by column name."""
        if self.socket_path:
            text = self.command('show stat')
        else:
            text = self._page_csv()
        return parse_csv(text)

    def servers(self, backend=None):
        """Server rows (summaries, see server_row) of one backend, or of every backend."""
        return [server_row(r) for r in self.stat_rows()
                if r.get('svname') not in SPECIAL_ROWS and (backend is None or r.get('pxname') == backend)]

    def up_servers(self, backend, rows=None):
        rows = self.servers(backend) if rows is None else rows
        return sorted(r['server'] for r in rows if r['backend'] == backend and is_up(r['status']))

    def set_server(self, backend, server, state):
        """Force the health (up, down) or set the admin state (ready, drain, maint) of one server, or of
        a list of servers of ``backend`` (one request through the stats page)."""
        if state not in STATES:
            raise ValueError(state)
        servers = [server] if isinstance(server, str) else list(server)
        if not servers:
            return
        if self.socket_path:
            kind = 'health' if state in HEALTH_STATES else 'state'
            for name in servers:
                line = 'set server %s/%s %s %s' % (backend, name, kind, state)
                answer = self.command(line).strip()
                if answer:
                    raise HAProxyError('HAProxy (%s) refused "%s": %s' % (self.socket_path, line, answer))
        else:
            self._page_action(backend, servers, PAGE_ACTIONS[state])

    @staticmethod
    def _poll(read, done, initial, timeout, interval):
        """Call ``read()`` until ``done(value)``, bounded by ``timeout`` seconds; an HAProxyError is
        kept as the last error and the poll goes on. Returns ``(done, value, elapsed, last_error)``."""
        start = time.monotonic()
        value, error = initial, None
        while True:
            try:
                value = read()
                error = None
                if done(value):
                    return True, value, time.monotonic() - start, None
            except HAProxyError as e:
                error = str(e)
            elapsed = time.monotonic() - start
            if elapsed >= timeout:
                return False, value, elapsed, error
            time.sleep(max(0.01, min(interval, timeout - elapsed)))

    def wait_up(self, backend, expected, timeout, interval=0.2, match='exact'):
        """Poll (bounded) until the UP servers of ``backend`` equal ``expected`` (``match=exact``) or
        include all of them (``match=contains``). Returns ``(done, up, elapsed, last_error)``."""
        want = sorted(set(expected))
        return self._poll(lambda: self.up_servers(backend),
                          lambda up: up == want if match == 'exact' else set(want) <= set(up),
                          None, timeout, interval)

    def wait_drained(self, servers, backend, timeout, interval=0.2):
        """Poll (bounded) until every row of ``servers`` (in ``backend``, or in every backend) is not UP
        and has no session, and at least one such row exists. Returns ``(done, rows, elapsed, last_error)``."""
        names = set(servers)
        return self._poll(lambda: [r for r in self.servers(backend) if r['server'] in names],
                          lambda rows: bool(rows) and not any(is_up(r['status']) or r['scur'] for r in rows),
                          [], timeout, interval)
