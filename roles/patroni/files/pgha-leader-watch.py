# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watch the Patroni leader from a database host that runs etcd too (installed by the patroni role).

Every --interval seconds, one of two duties, depending on what the local Patroni is:

The leader: keep the etcd leader off this host. A crash of the host that leads both Patroni and
etcd costs an etcd election first, and the new etcd leader renews every lease to its full TTL:
the Patroni leader key then expires well after ttl. When the local etcd member leads etcd, this
hands the leadership to another started member (etcd's MoveLeader).

A replica: release the key of a leader whose host is gone (--release-after seconds, 0 = off).
Patroni lets a crashed leader's key live out its ttl, and ttl cannot go below 20 s. When the
leader's host has answered neither on its Patroni REST port nor on its etcd client port for
--release-after seconds (a TCP connect, and on an https REST port a TLS handshake and
close_notify, without which Patroni logs an error; a refused connection or a failed handshake is
an answer: the host is up), this deletes the leader key in one etcd transaction that first
checks the key is still the same (same revision). Patroni's members wake on the deletion and
elect a new leader by their usual rules (synchronous standby, maximum_lag_on_failover, the
healthiest node). Only a host that is unreachable on two ports is acted on: crashed or cut off
from the majority, it cannot refresh its key anyway, and a commit on a primary cut off from the
others waits for its synchronous standby, which is the member promoted. Cut off from this
replica only (a partial partition), it costs one unneeded failover, never an acknowledged write.
A paused cluster is left alone, and so is a leader whose host runs no etcd member (two
independent signals are wanted).

Only the standard library; every request is bounded by --timeout. With TLS (--cacert) every
request verifies the server against the cluster CA and presents --cert/--key (etcd wants a
client certificate).
"""

import argparse
import base64
import http.client
import json
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

CONTEXT = None  # ssl.SSLContext with TLS on


def b64(text):
    return base64.b64encode(text.encode()).decode()


def post(url, body, timeout):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=timeout, context=CONTEXT) as resp:
        return json.loads(resp.read().decode() or '{}')


def leads_patroni(url, timeout):
    """True when the local Patroni leads; raises OSError when it does not answer."""
    try:
        with urllib.request.urlopen(url + '/primary', timeout=timeout, context=CONTEXT) as resp:
            return resp.status == 200
    except urllib.error.HTTPError:
        return False


def get_key(etcd, key, timeout):
    """(value, mod_revision) of an etcd key, or (None, None) when it does not exist."""
    kvs = post(etcd + '/v3/kv/range', {'key': b64(key)}, timeout).get('kvs') or []
    if not kvs:
        return None, None
    return base64.b64decode(kvs[0].get('value', '')).decode(), kvs[0]['mod_revision']


def host_answers(host, port, timeout, tls=False):
    """True when something at host answers a TCP connect, even with a refusal.

    With tls, a connect that succeeds is followed by a TLS handshake and a close_notify: Patroni
    does its REST API's handshake outside any try, and logs a traceback for each client that
    closes without one. The handshake is politeness only: when it fails or times out, the host
    has answered all the same. At most timeout for the connect, then timeout for the handshake
    and the close_notify together: 2 x timeout in all."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    with sock:
        if tls:
            deadline = time.monotonic() + timeout
            try:
                with (CONTEXT or unverified_context()).wrap_socket(sock, server_hostname=host) as conn:
                    conn.settimeout(max(deadline - time.monotonic(), 0.001))
                    conn.unwrap()  # sends close_notify, reads the server's (and its session tickets)
            except (OSError, ValueError):  # ssl.SSLError and timeouts are OSErrors
                pass
    return True


def unverified_context():
    """For the TLS handshake of an https REST port probed without --cacert: no trust needed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def move_etcd_leader_away(args):
    """The leader's duty; returns a message when it moved the etcd leadership."""
    status = post(args.etcd + '/v3/maintenance/status', {}, args.timeout)
    me, leader = str(status['header']['member_id']), str(status.get('leader', ''))
    if me != leader:
        return None
    members = post(args.etcd + '/v3/cluster/member/list', {}, args.timeout).get('members', [])
    for m in members:
        if str(m.get('ID')) == me or not m.get('clientURLs'):
            continue
        try:  # only to a member that answers and sees the same leader
            peer = post(m['clientURLs'][0] + '/v3/maintenance/status', {}, args.timeout)
        except (OSError, ValueError):
            continue
        if str(peer.get('leader', '')) != leader:
            continue
        post(args.etcd + '/v3/maintenance/transfer-leadership', {'targetID': str(m['ID'])}, args.timeout)
        return 'this host leads Patroni: moved the etcd leadership to %s' % m.get('name', m['ID'])
    return None


class DeadLeaderRelease:
    """A replica's duty: remembers since when the current leader's host has not answered."""

    def __init__(self, args):
        self.args = args
        self.prefix = '/%s/%s/' % (args.namespace.strip('/'), args.scope)
        self.suspect = None  # (leader name, key revision)
        self.since = None

    def forget(self):
        self.suspect = self.since = None

    def step(self, now):
        a = self.args
        name, revision = get_key(a.etcd, self.prefix + 'leader', a.timeout)
        member = get_key(a.etcd, self.prefix + 'members/' + name, a.timeout)[0] if name else None
        if not member:
            return self.forget()
        api = urllib.parse.urlsplit(json.loads(member).get('api_url', ''))
        # The REST port first: it answers on almost every tick, and then nothing more is read.
        if not api.hostname or host_answers(api.hostname, api.port or 8008, a.connect_timeout,
                                            tls=api.scheme == 'https'):
            return self.forget()
        client_urls = [urllib.parse.urlsplit(url)
                       for m in post(a.etcd + '/v3/cluster/member/list', {}, a.timeout).get('members', [])
                       for url in m.get('clientURLs') or []]
        etcd_ports = [url.port or 2379 for url in client_urls if url.hostname == api.hostname]
        if not etcd_ports or host_answers(api.hostname, etcd_ports[0], a.connect_timeout):
            return self.forget()
        config = get_key(a.etcd, self.prefix + 'config', a.timeout)[0]
        if config and json.loads(config).get('pause'):
            return self.forget()
        if self.suspect != (name, revision):
            self.suspect, self.since = (name, revision), now
            return None
        silent = now - self.since
        if silent < a.release_after:
            return None
        key = b64(self.prefix + 'leader')
        reply = post(a.etcd + '/v3/kv/txn', {
            'compare': [{'key': key, 'target': 'MOD', 'result': 'EQUAL', 'mod_revision': revision}],
            'success': [{'request_delete_range': {'key': key}}],
        }, a.timeout)
        self.forget()
        if not reply.get('succeeded'):
            return 'the leader key changed meanwhile: left it alone'
        return ('leader %s at %s has answered neither on its REST API nor on etcd for %.1f s: '
                'deleted its leader key (revision %s)' % (name, api.hostname, silent, revision))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    p.add_argument('--etcd', default='http://127.0.0.1:2379', help='local etcd client URL')
    p.add_argument('--patroni', required=True, help='local Patroni REST API URL')
    p.add_argument('--scope', required=True, help="Patroni's scope (cluster name)")
    p.add_argument('--namespace', default='/service/', help="Patroni's namespace")
    p.add_argument('--interval', type=float, default=1.0)
    p.add_argument('--timeout', type=float, default=2.0, help='for each HTTP request')
    p.add_argument('--connect-timeout', type=float, default=0.5,
                   help="for each TCP probe of the leader's host (and again for its TLS handshake)")
    p.add_argument('--release-after', type=float, default=0.0,
                   help="seconds the leader's host must stay silent before its key is deleted; 0: never")
    p.add_argument('--once', action='store_true', help='one check, then exit')
    p.add_argument('--cacert', help='cluster CA certificate (TLS on)')
    p.add_argument('--cert', help='client certificate for etcd (and Patroni)')
    p.add_argument('--key', help='key of --cert')
    args = p.parse_args()
    global CONTEXT  # pylint: disable=global-statement
    if args.cacert:
        CONTEXT = ssl.create_default_context(cafile=args.cacert)
        if args.cert:
            CONTEXT.load_cert_chain(args.cert, args.key)
    release = DeadLeaderRelease(args)
    last_error = None
    while True:
        started = time.monotonic()
        try:
            if leads_patroni(args.patroni, args.timeout):
                release.forget()
                msg = move_etcd_leader_away(args)
            else:
                msg = release.step(time.monotonic()) if args.release_after > 0 else None
            if msg:
                print(msg, flush=True)
            last_error = None
        except (OSError, ValueError, KeyError, http.client.HTTPException) as exc:
            if str(exc) != last_error:  # log a failure once, not every interval
                print('check failed: %s' % exc, file=sys.stderr, flush=True)
                last_error = str(exc)
        if args.once:
            return 0
        # A tick every interval, whatever the tick took: while the leader's host is silent, its
        # two probes take up to 2 x --connect-timeout, and sleeping a full interval after them
        # would stretch the release by up to a second.
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


if __name__ == '__main__':
    sys.exit(main())
