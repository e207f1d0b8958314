# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watch the Patroni leader from a database host that runs etcd too (installed by the patroni role).

Every --interval seconds, one of two duties, depending on what the local Patroni is:

The leader: keep the etcd leader off this host. A crash of the host that leads both Patroni and
etcd costs an etcd election first, and the new etcd leader renews every lease to its full TTL:
the Patroni leader key then expires well after ttl. When the local etcd member leads etcd, this
hands the leadership to another started member (etcd's MoveLeader).

A replica: release the key of a leader whose host is gone, by a majority of the watchers
(--release-after seconds, 0 = off). Patroni lets a crashed leader's key live out its ttl, and ttl
cannot go below 20 s. The leader's host is silent when it answers neither on its Patroni REST
port nor on its etcd client port (a TCP connect, and on an https REST port a TLS handshake and
close_notify, without which Patroni logs an error; a refused connection or a failed handshake is
an answer: the host is up). A watcher that has seen it silent for --release-after seconds, for
the same leader key revision R, suspects it: it writes /pgha/<scope>/suspect/<R>/<--name>
attached to an etcd lease of its own (TTL max(2, ceil(2 x interval + 2 x connect-timeout +
timeout)) s: one tick of a watcher whose probes both time out and whose etcd is slow, plus a
whole interval to spare), renews the lease on every tick it still suspects and revokes it as soon
as it no longer does (the host answers, the key changes, the cluster is paused, this member
leads). A suspicion that is not renewed (a frozen or killed watcher, a watcher cut off from
etcd) expires by itself on the etcd server. A suspecting watcher reads the suspicions of R; when
they name a majority of the other watchers (--watchers without the leader: W - 1 of them,
floor((W - 1) / 2) + 1 needed; both replicas of 3 members), it sends one etcd transaction: if the
leader key's mod_revision is still R and each of those suspicions still exists (version > 0),
delete the leader key and the suspicions of R; otherwise nothing. Patroni's members wake on the
deletion and elect a new leader by their usual rules (synchronous standby,
maximum_lag_on_failover, the healthiest node). A paused cluster is left alone, and so is a leader
whose host runs no etcd member (two independent signals are wanted). Suspicions live outside
Patroni's namespace; R is an etcd revision, unique to one write of one key.

What each fault does (3 members, every one a watcher; "ttl" is Patroni's own expiry):

  leader host crash      both replicas see it silent and suspect it --release-after later; the
                         later suspicion completes the majority and its watcher deletes the key
                         in the same tick (the two watchers' ticks are out of phase by less than
                         an interval: on average interval / 3 later than one watcher alone; once
                         a key was seen silent its two probes run together, which wins back one
                         --connect-timeout, 0.5 s, on the tick that decides)
  leader fully cut off   the same; its PostgreSQL may take a commit, but the commit waits for
                         the synchronous standby, which is the member promoted: never
                         acknowledged; Patroni there demotes it after retry_timeout
  one link cut, leader   that replica suspects alone: 1 of 2, no deletion, the leader keeps
  <-> one replica        leading (its suspicion is renewed while the cut lasts, then revoked)
  replica <-> replica    neither suspects (both see the leader); etcd keeps its quorum through
  cut                    the leader's host; nothing happens
  leader frozen          the frozen host's kernel still completes TCP handshakes on its
  (docker pause, a       listening sockets (until a listen backlog fills: Patroni's REST port,
  stalled VM)            small backlog, goes silent after a few probes; etcd's, thousands deep,
                         keeps answering), so host_answers() is True and nobody suspects: the
                         key expires after ttl, Patroni's own path; unfrozen, the old leader
                         finds its key gone and demotes
  watcher frozen         its suspicion, if any, expires within the lease TTL and stops counting;
                         a crash in the meantime falls back to ttl if no majority is left
  etcd member frozen     on a replica: that watcher's requests time out, its suspicion is not
                         renewed and expires (no majority: ttl); on the leader's host: its port
                         still answers (kernel handshakes), no suspicion
  slow network or disk   a probe slower than --connect-timeout counts as silence, but one slow
                         path is one vote: a majority must see silence for --release-after on the
                         same revision; a slow etcd that lets a suspicion lapse between two
                         renewals only delays the release (the lease is granted again)

The decision is made by etcd, not by the watcher: the transaction's compares are evaluated
atomically by the etcd leader, so a suspicion that expired, or a key that a live leader rewrote,
between the read and the transaction makes it fail (and nothing is done).

Only the standard library; every request is bounded by --timeout. With TLS (--cacert) every
request verifies the server against the cluster CA and presents --cert/--key (etcd wants a
client certificate).
"""

import argparse
import base64
import http.client
import json
import math
import signal
import socket
import ssl
import sys
import threading
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


def leader_lease(etcd, key, revision, timeout):
    """The lease the leader key holds at mod_revision revision ('0' when none or changed)."""
    kvs = post(etcd + '/v3/kv/range', {'key': b64(key)}, timeout).get('kvs') or []
    if not kvs or str(kvs[0].get('mod_revision')) != str(revision):
        return '0'
    return str(kvs[0].get('lease') or '0')


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


class Probe(threading.Thread):
    """host_answers() in a thread (start()), or in this one (run()); answered() waits for it. A
    probe that died of an unexpected error counts as an answer."""

    def __init__(self, host, port, timeout, tls):
        super().__init__(daemon=True)
        self.target = (host, port, timeout, tls)
        self.result = True

    def run(self):
        self.result = None
        self.result = host_answers(*self.target)

    def answered(self):
        if self.ident is not None:
            self.join()
        return self.result is not False


def prefix_end(prefix):
    """etcd's range_end for every key that starts with prefix (its last byte plus one)."""
    data = prefix.encode()
    return base64.b64encode(data[:-1] + bytes([data[-1] + 1])).decode()


def majority(others):
    """Suspicions needed out of the watchers other than the leader: floor(others / 2) + 1."""
    return others // 2 + 1


class DeadLeaderRelease:
    """A replica's duty: since when the current leader's host has not answered, this watcher's
    lease-bound suspicion of it, and the majority's transaction."""

    def __init__(self, args):
        self.args = args
        self.prefix = '/%s/%s/' % (args.namespace.strip('/'), args.scope)
        self.suspect_root = '/pgha/%s/suspect/' % args.scope
        self.watchers = [w.strip() for w in (args.watchers or '').split(',') if w.strip()]
        self.ttl = max(2, int(math.ceil(2 * args.interval + 2 * args.connect_timeout + args.timeout)))
        self.suspect = None  # (leader name, key revision)
        self.since = None
        self.lease = None    # the lease of this watcher's suspicion key, while it suspects
        self.held = None     # that key, once written under that lease
        self.logged = None   # the suspecting watchers last logged

    def forget(self):
        """No suspicion: the clock stops and the suspicion key's lease, if any, is revoked (a
        revoke that fails leaves the lease to expire on its own)."""
        self.suspect = self.since = self.logged = self.held = None
        lease, self.lease = self.lease, None
        if lease is not None:
            try:
                post(self.args.etcd + '/v3/lease/revoke', {'ID': lease}, self.args.timeout)
            except (OSError, ValueError, http.client.HTTPException):
                pass

    def hold(self, key, value):
        """Keep key in etcd under this watcher's lease: renew the lease, or grant a new one when
        there is none or it expired (a late renewal after a stalled tick), and write the key
        when it is not written under that lease yet (a failed write is tried again next tick)."""
        a = self.args
        if self.lease is not None:
            reply = post(a.etcd + '/v3/lease/keepalive', {'ID': self.lease}, a.timeout)
            if int((reply.get('result') or {}).get('TTL') or 0) <= 0:
                self.lease = self.held = None  # expired with its key
            elif self.held == key:
                return
        if self.lease is None:
            self.lease = post(a.etcd + '/v3/lease/grant', {'TTL': self.ttl}, a.timeout)['ID']
        post(a.etcd + '/v3/kv/put', {'key': b64(key), 'value': b64(value), 'lease': self.lease}, a.timeout)
        self.held = key

    def suspicions(self, prefix, others):
        """Names (among others) whose suspicion key under prefix exists now."""
        kvs = post(self.args.etcd + '/v3/kv/range', {'key': b64(prefix), 'range_end': prefix_end(prefix),
                                                     'keys_only': True}, self.args.timeout).get('kvs') or []
        names = {base64.b64decode(kv['key']).decode()[len(prefix):] for kv in kvs}
        return sorted(names & set(others))

    def step(self, now):
        a = self.args
        name, revision = get_key(a.etcd, self.prefix + 'leader', a.timeout)
        member = get_key(a.etcd, self.prefix + 'members/' + name, a.timeout)[0] if name else None
        if not member or name == a.name:
            return self.forget()
        api = urllib.parse.urlsplit(json.loads(member).get('api_url', ''))
        if not api.hostname:
            return self.forget()
        rest = Probe(api.hostname, api.port or 8008, a.connect_timeout, tls=api.scheme == 'https')
        # The REST port first: it answers on almost every tick, and then nothing more is read. Once
        # this leader key was seen silent, the two probes run together: a silent tick then takes
        # one --connect-timeout, not two, and the suspicion comes that much sooner.
        if self.suspect == (name, revision):
            rest.start()
        else:
            rest.run()
            if rest.answered():
                return self.forget()
        client_urls = [urllib.parse.urlsplit(url)
                       for m in post(a.etcd + '/v3/cluster/member/list', {}, a.timeout).get('members', [])
                       for url in m.get('clientURLs') or []]
        etcd_ports = [url.port or 2379 for url in client_urls if url.hostname == api.hostname]
        if not etcd_ports or host_answers(api.hostname, etcd_ports[0], a.connect_timeout) or rest.answered():
            return self.forget()
        config = get_key(a.etcd, self.prefix + 'config', a.timeout)[0]
        if config and json.loads(config).get('pause'):
            return self.forget()
        if self.suspect != (name, revision):
            self.forget()  # a suspicion of an older key is revoked
            self.suspect, self.since = (name, revision), now
            return None
        silent = now - self.since
        if silent < a.release_after:
            return None
        # This watcher suspects the leader: its lease-bound suspicion of revision R, then the
        # majority's count, read back from etcd (never from memory).
        prefix = '%s%s/' % (self.suspect_root, revision)
        self.hold(prefix + a.name, json.dumps({'leader': name, 'host': api.hostname, 'silent': round(silent, 1)}))
        others = [w for w in self.watchers if w != name]
        needed = majority(len(others))
        voters = self.suspicions(prefix, others)
        seen = ('leader %s at %s has answered neither on its REST API nor on etcd for %.1f s here; suspected by %s '
                '(%d of the %d other watchers, %d needed)' % (name, api.hostname, silent, ', '.join(voters) or 'nobody',
                                                              len(voters), len(others), needed))
        if len(voters) < needed:
            if voters == self.logged:
                return None
            self.logged = voters
            return seen + ': waiting for a majority (revision %s)' % revision
        key = b64(self.prefix + 'leader')
        lease = leader_lease(a.etcd, self.prefix + 'leader', revision, a.timeout)
        reply = post(a.etcd + '/v3/kv/txn', {
            'compare': [{'key': key, 'target': 'MOD', 'result': 'EQUAL', 'mod_revision': revision}] +
                       [{'key': b64(prefix + v), 'target': 'VERSION', 'result': 'GREATER', 'version': 0}
                        for v in voters],
            'success': [{'request_delete_range': {'key': key}},
                        {'request_delete_range': {'key': b64(prefix), 'range_end': prefix_end(prefix)}}],
        }, a.timeout)
        if not reply.get('succeeded'):
            self.logged = None  # log the count again on the next tick
            return seen + ': the leader key or a suspicion changed meanwhile: left it alone'
        self.forget()
        # The old leader's lease goes too. Patroni's etcd3 update_leader() only refreshes its lease
        # while it believes it holds the key: a leader cut off for less than ttl that comes back
        # with its lease alive would take the lease refresh for its key and promote itself beside
        # the new leader (seen: a second timeline 4 that could no longer follow the first). With
        # the lease revoked, the refresh fails, Patroni asks for a new lease and finds the key taken.
        revoked = ''
        if lease != '0':
            try:
                post(a.etcd + '/v3/lease/revoke', {'ID': lease}, a.timeout)
                revoked = ' and revoked its lease %s' % lease
            except (OSError, ValueError, http.client.HTTPException) as exc:
                revoked = ' (revoking its lease %s failed: %s)' % (lease, exc)
        return seen + ': deleted its leader key (revision %s)%s' % (revision, revoked)


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
    p.add_argument('--name', help="this member's Patroni name (needed with --release-after)")
    p.add_argument('--watchers', default='',
                   help='comma-separated Patroni names of every member that runs this watcher; a majority of those '
                        'other than the leader must suspect it (needed with --release-after)')
    p.add_argument('--once', action='store_true', help='one check, then exit')
    p.add_argument('--cacert', help='cluster CA certificate (TLS on)')
    p.add_argument('--cert', help='client certificate for etcd (and Patroni)')
    p.add_argument('--key', help='key of --cert')
    args = p.parse_args()
    if args.release_after > 0 and args.name not in [w.strip() for w in args.watchers.split(',')]:
        # without them no suspicion could ever count: better a service that fails to start
        p.error('--release-after needs --name, one of --watchers')
    global CONTEXT  # pylint: disable=global-statement
    if args.cacert:
        CONTEXT = ssl.create_default_context(cafile=args.cacert)
        if args.cert:
            CONTEXT.load_cert_chain(args.cert, args.key)
    release = DeadLeaderRelease(args)
    # systemd's SIGTERM: revoke a suspicion on the way out rather than leave it to its TTL
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return loop(args, release)
    finally:
        if release.lease is not None:
            release.forget()
        signal.signal(signal.SIGTERM, previous)


def loop(args, release):
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
