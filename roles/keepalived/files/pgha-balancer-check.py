# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""keepalived's health check of a balancer: may this host hold the client address?

Exit 0 (healthy) or 1 (keepalived puts the VRRP instance in FAULT and the address moves to a
healthy peer). One line on stdout says why; run it by hand to see what keepalived sees.

A balancer is unhealthy when
  - its PgBouncer does not answer a protocol greeting (an SSLRequest) within the timeout, or
  - its HAProxy does not answer on the runtime API socket, or
  - its HAProxy has no write server UP while a peer's HAProxy has one (the peer would route
    writes, this host would not: one cut link between this balancer and the leader).
A balancer whose HAProxy sees no write server is still healthy when no peer sees one either (the
cluster has no leader for the moment, a failover is under way): moving the address would only cut
the clients' connections a second time and gain nothing. A peer that does not answer counts as
seeing none, so a balancer never gives the address away on the word of a peer it cannot reach.

Configuration (JSON, --config; written by the keepalived role, 0640, it holds the stats password):
  {"pgbouncer": {"host": "127.0.0.1", "port": 6432},
   "haproxy_socket": "/run/haproxy/admin.sock", "write_backend": "postgres_write",
   "peers": [{"name": "lb2", "url": "http://10.0.0.22:7000/;csv"}],
   "stats_user": "admin", "stats_password": "...", "timeout": 0.5}
Pure Python 3 standard library: it runs on the balancer, not through Ansible.
"""

import argparse
import base64
import csv
import io
import json
import socket
import struct
import sys
import urllib.request

SSL_REQUEST = struct.pack('!ii', 8, 80877103)

# The peers are on the balancers' own subnet: never reached through a proxy named by the
# environment (http_proxy, all_proxy: keepalived's or a shell's), which would get the stats password
# and answer for the peer.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pgbouncer_answers(host, port, timeout):
    """None when PgBouncer answers an SSLRequest with 'S' or 'N', else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(SSL_REQUEST)
            reply = sock.recv(1)
    except OSError as exc:
        return 'PgBouncer %s:%s: %s' % (host, port, exc)
    if reply not in (b'S', b'N'):
        return 'PgBouncer %s:%s answered %r to an SSLRequest' % (host, port, reply)
    return None


def up_servers(stat_csv, backend):
    """Names of the servers of `backend` whose status is UP (also 'UP 1/2', going down) in
    HAProxy's `show stat` CSV."""
    text = stat_csv.lstrip('# ')
    servers = []
    for row in csv.DictReader(io.StringIO(text)):
        if row.get('pxname') != backend or row.get('svname') in ('FRONTEND', 'BACKEND', None):
            continue
        if (row.get('status') or '').startswith('UP'):
            servers.append(row['svname'])
    return servers


def has_backend(stat_csv, backend):
    text = stat_csv.lstrip('# ')
    return any(row.get('pxname') == backend for row in csv.DictReader(io.StringIO(text)))


def local_stat(socket_path, timeout):
    """HAProxy's `show stat` over its runtime API socket (one command, the server closes)."""
    chunks = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(b'show stat\n')
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b''.join(chunks).decode('utf-8', 'replace')


def peer_stat(url, user, password, timeout):
    """A peer's stats page as CSV, or None when it does not answer."""
    request = urllib.request.Request(url)
    if user:
        token = base64.b64encode(('%s:%s' % (user, password or '')).encode()).decode()
        request.add_header('Authorization', 'Basic ' + token)
    try:
        with DIRECT.open(request, timeout=timeout) as response:
            return response.read().decode('utf-8', 'replace')
    except Exception:  # any failure means: this peer cannot vouch for a write server
        return None


def check(config):
    """(healthy, reason)."""
    timeout = float(config.get('timeout', 0.5))
    pgb = config.get('pgbouncer') or {}
    problem = pgbouncer_answers(pgb.get('host', '127.0.0.1'), int(pgb.get('port', 6432)), timeout)
    if problem:
        return False, problem
    backend = config.get('write_backend', 'postgres_write')
    try:
        stat = local_stat(config['haproxy_socket'], timeout)
    except OSError as exc:
        return False, 'HAProxy runtime API %s: %s' % (config['haproxy_socket'], exc)
    if not has_backend(stat, backend):
        return False, 'HAProxy has no backend %s' % backend
    mine = up_servers(stat, backend)
    if mine:
        return True, 'PgBouncer answers; HAProxy writes to %s' % ', '.join(mine)
    for peer in config.get('peers') or []:
        peer_csv = peer_stat(peer['url'], config.get('stats_user'), config.get('stats_password'), timeout)
        theirs = up_servers(peer_csv, backend) if peer_csv else []
        if theirs:
            return False, 'HAProxy has no write server UP; peer %s writes to %s' % (
                peer.get('name', peer['url']), ', '.join(theirs))
    return True, 'PgBouncer answers; no write server UP here nor on any peer (no leader for now)'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--config', required=True)
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding='utf-8') as fh:
            config = json.load(fh)
    except (OSError, ValueError) as exc:
        print('cannot read %s: %s' % (args.config, exc))
        return 1
    healthy, reason = check(config)
    print(('healthy: ' if healthy else 'unhealthy: ') + reason)
    return 0 if healthy else 1


if __name__ == '__main__':
    sys.exit(main())
