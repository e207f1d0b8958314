# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep the etcd leader off the host of the Patroni leader (installed by the patroni role).

Where etcd runs on the database hosts, a crash of the host that leads both Patroni and etcd
costs an etcd election first, and the new etcd leader renews every lease to its full TTL: the
Patroni leader key then expires well after ttl. Every --interval seconds this asks the local
Patroni whether it leads (GET /primary) and the local etcd member whether it leads etcd; when
both do, it hands the etcd leadership to another started member (etcd's MoveLeader). Only the
standard library; every request is bounded by --timeout. With TLS (--cacert) every request
verifies the server against the cluster CA and presents --cert/--key (etcd wants a client
certificate).
"""

CONTEXT = None  # ssl.SSLContext with TLS on

import argparse
import json
import ssl
import sys
import time
import urllib.error
import urllib.request


def post(url, body, timeout):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=timeout, context=CONTEXT) as resp:
        return json.loads(resp.read().decode() or '{}')


def leads_patroni(url, timeout):
    try:
        with urllib.request.urlopen(url + '/primary', timeout=timeout, context=CONTEXT) as resp:
            return resp.status == 200
    except urllib.error.HTTPError:
        return False


def step(args):
    """One check; returns a message when it moved the etcd leadership."""
    if not leads_patroni(args.patroni, args.timeout):
        return None
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


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    p.add_argument('--etcd', default='http://127.0.0.1:2379', help='local etcd client URL')
    p.add_argument('--patroni', required=True, help='local Patroni REST API URL')
    p.add_argument('--interval', type=float, default=5.0)
    p.add_argument('--timeout', type=float, default=2.0)
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
    last_error = None
    while True:
        try:
            msg = step(args)
            if msg:
                print(msg, flush=True)
            last_error = None
        except (OSError, ValueError, KeyError) as exc:
            if str(exc) != last_error:  # log a failure once, not every interval
                print('check failed: %s' % exc, file=sys.stderr, flush=True)
                last_error = str(exc)
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == '__main__':
    sys.exit(main())
