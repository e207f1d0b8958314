#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: pgha_switchover
short_description: Planned switchover behind paused PgBouncers, from PAUSE to RESUME in one process
version_added: 0.2.0
description:
  - Runs the critical path of a planned switchover of the whole stack in one process, so that clients writing
    through PgBouncer stall only for as long as Patroni needs, plus a few round trips - PAUSE every PgBouncer, ask
    Patroni for the switchover, poll the cluster at sub-second intervals until the candidate leads, route every
    HAProxy's writes to it, RECONNECT and RESUME every PgBouncer.
  - "Before anything changes: reads C(GET /cluster) (a single running leader, equal to O(leader) when given; the
    cluster not paused; O(candidate) a healthy replica within O(max_lag_bytes), a sync or quorum standby in
    synchronous mode), connects to every PgBouncer admin console, and reads every HAProxy's O(write_backend), which
    must hold the candidate's server. Any problem fails the module with nothing changed. The longer checks (long
    transactions, waiting for a synchronous standby) belong before this module (the C(switchover) playbook's
    preflight)."
  - "1. PAUSE - C(PAUSE) is sent to every PgBouncer at once (each on its own connection, kept open until RESUME);
    when one fails or does not complete within O(pause_timeout), every PgBouncer is resumed and the module fails
    without having asked Patroni anything."
  - "2. switchover - C(POST /switchover) goes to the leader's own REST API (see M(pgha.cluster.patroni_switchover));
    while Patroni works, the candidate's own C(GET /patroni) (and C(GET /cluster)) is polled every O(poll_interval)
    seconds until the candidate runs as primary on a new timeline, bounded by O(switchover_timeout)."
  - "3. routing - on every HAProxy, at once, the candidate's server is forced UP and the other servers DOWN in
    O(write_backend); then the module waits, bounded by O(routing_timeout), until O(write_backend)'s UP servers are
    exactly the candidate's. The regular health checks keep running and would correct a wrong state.
    O(force_routing=false) only waits for the checks. After RESUME (outside the clients' stall) the candidate's
    server is forced DOWN in O(read_backend), so that read pools that reconnect land on replicas."
  - "4. RECONNECT and RESUME - every PgBouncer closes its server connections (they reconnect through HAProxy to the
    new leader) and resumes. This runs in a C(finally) block - after a failure, a timeout, an exception, C(SIGINT),
    C(SIGTERM) or C(SIGHUP) too (RECONNECT is skipped when Patroni was never asked)."
  - "A PAUSE never outlives its controller - before the PAUSE a watchdog process is started (forked, in a session of
    its own, so a Ctrl-C of ansible-playbook does not reach it). It sends RESUME to every PgBouncer as soon as the
    module process dies (the pipe between them closes without the module's all-clear, for example after a
    C(SIGKILL)), or after O(pause_timeout) + O(switchover_timeout) + O(routing_timeout) + 10 seconds when the module
    hangs; it exits without doing anything when the module reports that every PgBouncer was resumed."
options:
  leader:
    description:
      - The leader the preflight saw. When given, the module fails (nothing changed) if another member leads now.
    type: str
  candidate:
    description: Member to promote.
    type: str
    required: true
  max_lag_bytes:
    description: Refuse a candidate lagging more than this many bytes behind the leader.
    type: int
    default: 1048576
  pgbouncers:
    description:
      - The PgBouncer admin consoles to pause, usually one per balancer. Empty - no pause (only the switchover and
        the routing).
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description: Address of PgBouncer.
        type: str
        required: true
      port:
        description: Port of PgBouncer.
        type: int
        default: 6432
      user:
        description: Admin user (C(admin_users) of C(pgbouncer.ini)).
        type: str
        default: pgbouncer
      password:
        description: Password of O(pgbouncers[].user).
        type: str
      sslmode:
        description: libpq C(sslmode); V(verify-ca) or V(verify-full) with O(pgbouncers[].sslrootcert) verify PgBouncer.
        type: str
        default: prefer
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      sslrootcert:
        description: PEM file of the CA of PgBouncer's certificate.
        type: path
      sslcert:
        description: Client certificate, when PgBouncer asks for one.
        type: path
      sslkey:
        description: Private key of O(pgbouncers[].sslcert).
        type: path
      connect_timeout:
        description: Connection timeout, seconds.
        type: int
        default: 5
  databases:
    description: PgBouncer databases to pause, reconnect and resume. All when omitted.
    type: list
    elements: str
  haproxies:
    description:
      - The HAProxies to route, usually one per balancer, each through its stats page (O(haproxies[].stats_url), the
        page needs C(stats admin), see the C(pgha.cluster.haproxy) role's C(haproxy_stats_admin)) or its runtime API
        socket (O(haproxies[].socket), when the module runs on that balancer). Empty - no routing step.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of this HAProxy in results and messages (default - its URL or socket).
        type: str
      stats_url:
        description: URL of the stats page, for example V(https://10.0.0.21:7000/).
        type: str
      socket:
        description: Path of the runtime API socket.
        type: path
      user:
        description: Stats page user.
        type: str
      password:
        description: Stats page password.
        type: str
      ca_path:
        description: PEM file of the CA of the stats page's certificate.
        type: path
      validate_certs:
        description: Whether to validate the stats page's certificate.
        type: bool
        default: true
      timeout:
        description: Timeout of every single request, seconds.
        type: float
        default: 3
  write_backend:
    description: HAProxy listener that sends writes to the leader.
    type: str
    default: postgres_write
  read_backend:
    description: HAProxy listener that sends reads to replicas; the new leader's server is forced DOWN there.
    type: str
    default: postgres_read
  server_names:
    description:
      - Patroni member name -> HAProxy server name, where they differ (the C(pgha.cluster.haproxy) role names servers
        after inventory hosts, Patroni members are named C(patroni_name)). Members not listed keep their name.
    type: dict
    default: {}
  force_routing:
    description:
      - Force the servers' health through HAProxy (see the description), instead of only waiting for its checks.
    type: bool
    default: true
  pause_timeout:
    description: Seconds for every PgBouncer to complete C(PAUSE) (active transactions to end).
    type: float
    default: 20
  switchover_timeout:
    description: Seconds from C(POST /switchover) until the candidate must lead.
    type: float
    default: 30
  routing_timeout:
    description: Seconds for every HAProxy to send writes to the new leader only.
    type: float
    default: 10
  poll_interval:
    description: Seconds between two reads of Patroni's cluster state and of HAProxy's server states.
    type: float
    default: 0.2
  watchdog:
    description: Start the watchdog process that resumes the PgBouncers when the module dies or hangs (see above).
    type: bool
    default: true
  streaming_from_candidate:
    description:
      - Members that must stream from the candidate (cascading replication, for example through Patroni's
        C(replicatefrom) tag) before the PAUSE. After the preflight the module polls the candidate's C(GET /patroni)
        (its walsenders) every O(poll_interval) seconds until all of them stream, bounded by O(streaming_timeout),
        then pauses at once. After the timeout it warns and switches over anyway (only the stall after the
        promotion depends on them).
      - Why at once - in synchronous or quorum mode the leader drops a replica that streams from elsewhere from its
        synchronous set at its next HA cycle, and a candidate promoted after that does not count the replica
        either, so its first commits wait for another standby.
    type: list
    elements: str
    default: []
  streaming_timeout:
    description: Seconds to wait for O(streaming_from_candidate).
    type: float
    default: 30
extends_documentation_fragment:
  - pgha.cluster.patroni
notes:
  - O(timeout) bounds every single Patroni request, so a poll can overrun O(switchover_timeout) by up to that much;
    give a few seconds (the C(switchover) playbook gives 2).
  - "The watchdog's limits - it runs on the host of the module (the controller with C(delegate_to: localhost)): when
    that whole machine crashes or loses its network, nothing resumes the PgBouncers (run C(RESUME) on their admin
    consoles by hand). It also cannot help when the PgBouncers cannot be reached from that host."
  - Timings - the result's RV(phases) tells where the stall went; C(stall_s) is the time clients waited.
requirements:
  - psycopg2
attributes:
  check_mode:
    support: full
    description: Runs the preflight only (reads Patroni, connects to the PgBouncers, reads the HAProxies); sends nothing.
  diff_mode:
    support: none
    description: No diff is produced.
author:
  - pgha.cluster maintainers (@pgha-cluster)
'''

EXAMPLES = r'''
- name: Switch over to pg2 behind the paused PgBouncers of both balancers
  pgha.cluster.pgha_switchover:
    api_url: [https://10.0.0.11:8008, https://10.0.0.12:8008, https://10.0.0.13:8008]
    api_username: patroni
    api_password: "{{ patroni_restapi_password }}"
    ca_path: ~/.pgha/pki/pgha/ca.crt
    timeout: 2
    leader: pg1
    candidate: pg2
    pgbouncers:
      - {host: 10.0.0.21, password: "{{ pgbouncer_admin_password }}", sslmode: verify-ca,
         sslrootcert: ~/.pgha/pki/pgha/ca.crt}
      - {host: 10.0.0.22, password: "{{ pgbouncer_admin_password }}", sslmode: verify-ca,
         sslrootcert: ~/.pgha/pki/pgha/ca.crt}
    haproxies:
      - {stats_url: "https://10.0.0.21:7000/", user: admin, password: "{{ haproxy_stats_password }}",
         ca_path: ~/.pgha/pki/pgha/ca.crt}
      - {stats_url: "https://10.0.0.22:7000/", user: admin, password: "{{ haproxy_stats_password }}",
         ca_path: ~/.pgha/pki/pgha/ca.crt}
  delegate_to: localhost
  register: sw

- name: Show where the stall went
  ansible.builtin.debug:
    var: sw.phases
'''

RETURN = r'''
old_leader:
  description: Leader before the switchover.
  returned: always
  type: str
  sample: pg1
new_leader:
  description: Leader at the end (the candidate after a switchover; in check mode the candidate).
  returned: always
  type: str
  sample: pg2
timeline_before:
  description: Timeline before the switchover.
  returned: always
  type: int
  sample: 4
timeline_after:
  description: Timeline of the new leader (V(null) when it did not change).
  returned: always
  type: int
  sample: 5
streaming_wait_s:
  description: Seconds waited for O(streaming_from_candidate) before the PAUSE (not part of the clients' stall).
  returned: when O(streaming_from_candidate) was given and checked
  type: float
  sample: 1.8
phases:
  description:
    - Seconds spent in each phase (V(null) for a phase that did not run).
    - C(pause_s) PAUSE sent until every PgBouncer paused; C(switchover_s) C(POST /switchover) sent until the candidate
      leads; C(routing_s) until every HAProxy routes writes to it; C(resume_s) RECONNECT and RESUME; C(stall_s) the
      first PAUSE sent until the last RESUME done (what clients waited).
  returned: always
  type: dict
  sample: {"pause_s": 0.02, "switchover_s": 1.61, "routing_s": 0.08, "resume_s": 0.01, "stall_s": 1.74}
events:
  description: What happened when, in seconds after the module started.
  returned: always
  type: list
  elements: dict
  sample: [{"t": 0.05, "event": "PAUSE sent to 2 PgBouncer(s)"}, {"t": 0.07, "event": "all paused"}]
pgbouncers:
  description: Per PgBouncer - C(name), C(paused), C(reconnected), C(resumed), C(error).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "10.0.0.21:6432", "paused": true, "reconnected": true, "resumed": true, "error": null}]
haproxies:
  description: Per HAProxy - C(name), C(actions) sent, C(up) (UP servers of the write backend at the end), C(error).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "https://10.0.0.21:7000/", "actions": ["postgres_write/pg2 up"], "up": ["pg2"], "error": null}]
patroni_reply:
  description: Patroni's answer to C(POST /switchover), when it came within the module's run.
  returned: when Patroni was asked
  type: str
  sample: Successfully switched over to "pg2"
watchdog:
  description: What the watchdog did - V(disabled), V(released) (the module resumed everything), V(resumed) (it sent RESUME itself).
  returned: always
  type: str
msg:
  description: What was done, or what went wrong and what to do.
  returned: always
  type: str
'''

import os
import select
import signal
import socket
import syslog
import threading
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.pgha.cluster.plugins.module_utils.haproxy import HAProxyClient, HAProxyError
from ansible_collections.pgha.cluster.plugins.module_utils.patroni import (
    PATRONI_REQUIRED_TOGETHER,
    PatroniClient,
    PatroniError,
    candidate_problems,
    fetch_cluster,
    is_synchronous_mode,
    patroni_argument_spec,
    promoted_check,
    takeover_check,
)
from ansible_collections.pgha.cluster.plugins.module_utils.pgbouncer import (
    HAS_PSYCOPG2,
    PSYCOPG2_IMPORT_ERROR,
    connect_kwargs,
    connect_raw,
    quote_ident,
    run,
)

# Slack of the watchdog beyond the module's own bounds, seconds.
WATCHDOG_SLACK = 10.0
NOT_PAUSED = ('not paused', 'pooler is not paused/suspended')
ALREADY_PAUSED = ('already paused', 'already suspended/paused')


class Interrupted(BaseException):
    """SIGTERM or SIGHUP (SIGINT raises KeyboardInterrupt)."""


def _interrupted(signum, frame):
    raise Interrupted('signal %d' % signum)


class Pooler(object):
    """One PgBouncer admin console; its connection stays open from the preflight until RESUME."""

    def __init__(self, spec, databases):
        self.name = '%s:%s' % (spec['host'], spec['port'])
        self.kwargs = connect_kwargs(spec['host'], spec['port'], spec['user'], spec.get('password'), 'pgbouncer',
                                     spec['connect_timeout'], spec.get('sslmode'), spec.get('sslrootcert'),
                                     spec.get('sslcert'), spec.get('sslkey'))
        self.user = spec['user']
        self.connect_timeout = spec['connect_timeout']
        self.databases = databases or []
        self.conn = None
        self.stale = []
        self.busy = False
        self.report = dict(name=self.name, paused=False, reconnected=False, resumed=False, error=None)

    def queries(self, command):
        if not self.databases:
            return [command]
        return ['%s %s' % (command, quote_ident(db)) for db in self.databases]

    def connect(self):
        self.conn = connect_raw(self.kwargs)

    def close(self):
        if self.conn is not None and not self.busy:
            try:
                self.conn.close()
            except Exception:  # pylint: disable=broad-except
                pass
            self.conn = None

    def pause(self):
        self.busy = True
        conn = self.conn
        try:
            for q in self.queries('PAUSE'):
                try:
                    run(conn, q)
                except Exception as e:  # pylint: disable=broad-except
                    if not any(s in to_native(e) for s in ALREADY_PAUSED):
                        raise
            self.report['paused'] = True
        finally:
            self.busy = False

    def finish(self, reconnect):
        """RECONNECT (optional) and RESUME, on the open connection, else on a new one. A connection still
        busy with a PAUSE that did not complete is left alone (closing it could block), never reused."""
        errors = []
        for attempt in range(2):
            if attempt or self.conn is None or self.busy or self.conn.closed:
                if self.busy:
                    self.stale.append(self.conn)
                    self.conn = None
                    self.busy = False
                self.close()
                try:
                    self.connect()
                except Exception as e:  # pylint: disable=broad-except
                    errors.append('cannot connect: %s' % to_native(e).strip())
                    continue
            try:
                if reconnect and not self.report['reconnected']:
                    try:
                        for q in self.queries('RECONNECT'):
                            run(self.conn, q)
                        self.report['reconnected'] = True
                    except Exception as e:  # pylint: disable=broad-except
                        errors.append('RECONNECT: %s' % to_native(e).strip())
                for q in self.queries('RESUME'):
                    try:
                        run(self.conn, q)
                    except Exception as e:  # pylint: disable=broad-except
                        if not any(s in to_native(e) for s in NOT_PAUSED):
                            raise
                self.report['resumed'] = True
                return None
            except Exception as e:  # pylint: disable=broad-except
                errors.append('RESUME: %s' % to_native(e).strip())
        return '; '.join(errors)

    def abort(self):
        """Cut the connection of a PAUSE that does not complete (shutdown of its socket: the blocked call
        returns, PgBouncer drops the request; closing it from here could block). RESUME follows on a new
        connection. conn.cancel() is not used: libpq's cancel holds the GIL while it waits."""
        conn = self.conn
        if conn is None:
            return
        try:
            sock = socket.socket(fileno=os.dup(conn.fileno()))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()
        except (OSError, ValueError):
            pass

    def fds(self):
        """File descriptors of this pooler's connections (closed in the watchdog)."""
        out = []
        for conn in [self.conn] + self.stale:
            try:
                if conn is not None and not conn.closed:
                    out.append(conn.fileno())
            except Exception:  # pylint: disable=broad-except
                pass
        return out

    def resume_hint(self):
        return ('psql "host=%s port=%s user=%s dbname=pgbouncer" -c RESUME'
                % (self.kwargs['host'], self.kwargs['port'], self.user))


def run_threads(items, func, timeout):
    """Run ``func(item)`` for every item at once; wait at most ``timeout`` s. Returns {index: error or None}
    (``'timeout'`` for a call still running)."""
    outcome = {}

    def worker(i, item):
        try:
            func(item)
            outcome[i] = None
        except Exception as e:  # pylint: disable=broad-except
            outcome[i] = to_native(e).strip() or type(e).__name__

    threads = []
    for i, item in enumerate(items):
        t = threading.Thread(target=worker, args=(i, item))
        t.daemon = True
        t.start()
        threads.append(t)
    end = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return dict((i, outcome.get(i, 'timeout')) for i in range(len(items)))


def start_watchdog(poolers, delay):
    """Fork a process in a session of its own that RESUMEs every PgBouncer when the pipe it reads closes
    without b'done' (the module died) or after ``delay`` seconds. Returns (pid, write end of the pipe)."""
    kwargs = [(p.kwargs, p.queries('RESUME'), p.name) for p in poolers]
    inherited = [fd for p in poolers for fd in p.fds()]
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(rfd)
        return pid, wfd
    # -- the watchdog (never returns) --
    try:
        os.close(wfd)
        # The module's own admin console connections are not the watchdog's to keep open.
        for fd in inherited:
            try:
                os.close(fd)
            except OSError:
                pass
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for sig in (signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        got = b''
        end = time.monotonic() + delay
        why = 'the module did not finish within %.0f s' % delay
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            if not select.select([rfd], [], [], remaining)[0]:
                continue
            data = os.read(rfd, 16)
            if not data:
                why = 'the module process ended without resuming every PgBouncer'
                break
            got += data
        if got.startswith(b'done'):
            os._exit(0)
        for kw, queries, name in kwargs:
            outcome = 'RESUME sent'
            try:
                conn = connect_raw(kw)
                try:
                    for q in queries:
                        try:
                            run(conn, q)
                        except Exception as e:  # pylint: disable=broad-except
                            if not any(s in to_native(e) for s in NOT_PAUSED):
                                raise
                finally:
                    conn.close()
            except Exception as e:  # pylint: disable=broad-except
                outcome = 'RESUME FAILED (%s): run RESUME there by hand' % to_native(e).strip()
            try:
                syslog.syslog(syslog.LOG_WARNING, 'pgha_switchover watchdog: %s; PgBouncer %s: %s' % (why, name, outcome))
            except Exception:  # pylint: disable=broad-except
                pass
    finally:
        os._exit(0)


def stop_watchdog(pid, wfd, released, wait=5.0):
    """Tell the watchdog to exit (released) or to RESUME now (not released); reap it, bounded."""
    try:
        if released:
            os.write(wfd, b'done')
    except OSError:
        pass
    try:
        os.close(wfd)
    except OSError:
        pass
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            done, dummy = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        time.sleep(0.01)
    return False


class Switchover(object):
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.t0 = time.monotonic()
        self.events = []
        self.phases = dict(pause_s=None, switchover_s=None, routing_s=None, resume_s=None, stall_s=None)
        self.result = dict(changed=False, old_leader=None, new_leader=None, timeline_before=None, timeline_after=None,
                           phases=self.phases, events=self.events, pgbouncers=[], haproxies=[], watchdog='disabled')
        self.poolers = [Pooler(spec, self.p['databases']) for spec in self.p['pgbouncers']]
        self.result['pgbouncers'] = [pl.report for pl in self.poolers]
        self.haproxies = []
        for spec in self.p['haproxies']:
            client = HAProxyClient(socket_path=spec.get('socket'), stats_url=spec.get('stats_url'), user=spec.get('user'),
                                   password=spec.get('password'), ca_path=spec.get('ca_path'),
                                   validate_certs=spec['validate_certs'], timeout=spec['timeout'])
            report = dict(name=spec.get('name') or client.name, actions=[], up=None, error=None)
            self.haproxies.append((client, report))
        self.result['haproxies'] = [r for c, r in self.haproxies]

    def event(self, text):
        self.events.append(dict(t=round(time.monotonic() - self.t0, 3), event=text))

    def fail(self, msg):
        self.result['msg'] = msg
        self.module.fail_json(**self.result)

    def server(self, member):
        return (self.p['server_names'] or {}).get(member, member)

    # -- preflight (nothing changes) --------------------------------------------------------
    def preflight(self):
        p = self.p
        try:
            self.client = PatroniClient.from_module(self.module)
            state = fetch_cluster(self.client)
        except PatroniError as e:
            self.fail('cannot read the Patroni cluster state: %s; nothing was changed' % e)
        self.state = state
        leader = state.leader_name
        self.result.update(old_leader=leader, new_leader=leader, timeline_before=state.timeline)
        if p['candidate'] == leader and leader is not None:
            self.result['msg'] = '%s already is the leader; nothing to do' % leader
            self.module.exit_json(**self.result)
        problems = []
        if state.paused:
            problems.append('the cluster is paused (maintenance mode): resume it first (patronictl resume)')
        if leader is None:
            problems.append('there is no single leader (%s)' % (', '.join(m['name'] for m in state.leaders) or 'none'))
        elif state.leader['state'] != 'running':
            problems.append('leader %s is %s, not running' % (leader, state.leader['state']))
        if p['leader'] and leader is not None and p['leader'] != leader:
            problems.append('the leader is %s, not %s as given: the cluster changed since the preflight, run it again'
                            % (leader, p['leader']))
        if not problems:
            problems.extend(candidate_problems(state, p['candidate'], p['max_lag_bytes'],
                                               is_synchronous_mode(self.client, state)))
        if problems:
            self.fail('refusing the switchover to %s, nothing was changed: %s' % (p['candidate'], '; '.join(problems)))
        self.event('cluster read: leader %s, timeline %s' % (leader, state.timeline))

        failed = []
        for pl in self.poolers:
            try:
                pl.connect()
            except Exception as e:  # pylint: disable=broad-except
                pl.report['error'] = 'cannot connect: %s' % to_native(e).strip()
                failed.append('%s (%s)' % (pl.name, pl.report['error']))
        if failed:
            self.close_poolers()
            self.fail('cannot reach the PgBouncer admin console of %s; nothing was changed. Check the pgbouncers '
                      'options (host, port, user, password, sslmode/sslrootcert) and admin_users in pgbouncer.ini'
                      % '; '.join(failed))
        self.event('connected to %d PgBouncer(s)' % len(self.poolers))

        server = self.server(p['candidate'])
        failed = []
        for client, report in self.haproxies:
            try:
                rows = client.servers(p['write_backend'])
                names = [r['server'] for r in rows]
                if server not in names:
                    raise HAProxyError('backend %s has no server %s (servers: %s); set server_names when HAProxy names '
                                       'servers differently from Patroni members'
                                       % (p['write_backend'], server, ', '.join(names) or 'none'))
                report['up'] = client.up_servers(p['write_backend'], rows)
                report['servers'] = names
            except HAProxyError as e:
                report['error'] = str(e)
                failed.append('%s: %s' % (report['name'], e))
        if failed:
            self.close_poolers()
            self.fail('cannot use HAProxy %s; nothing was changed' % '; '.join(failed))
        self.event('read %d HAProxy(s)' % len(self.haproxies))

    def wait_streaming(self):
        """Until every member of streaming_from_candidate streams from the candidate (its walsenders in its
        own GET /patroni), at most streaming_timeout; nothing is paused yet. A timeout only warns."""
        p = self.p
        wanted = sorted(set(p['streaming_from_candidate']))
        url = (self.state.member(p['candidate']) or {}).get('api_url')
        t = time.monotonic()
        end = t + p['streaming_timeout']
        detail = 'no answer yet'
        missing = wanted
        while True:
            try:
                status = self.client.member_status(url)
                streaming = sorted(r.get('application_name') or '' for r in status.get('replication') or []
                                   if r.get('state') == 'streaming')
                missing = [m for m in wanted if m not in streaming]
                if not missing:
                    self.result['streaming_wait_s'] = round(time.monotonic() - t, 3)
                    self.event('%s stream(s) from %s' % (', '.join(wanted), p['candidate']))
                    return
                detail = 'streaming from it: %s' % (', '.join(streaming) or 'none')
            except PatroniError as e:
                detail = 'cannot read %s: %s' % (p['candidate'], e)
            if time.monotonic() >= end:
                # Only the stall after the promotion depends on it, not the switchover: go on.
                self.result['streaming_wait_s'] = round(time.monotonic() - t, 3)
                msg = ('%s did not stream from %s within streaming_timeout=%ss (%s); switching over without them: the '
                       'first commits may wait for a standby'
                       % (', '.join(missing), p['candidate'], p['streaming_timeout'], detail))
                self.module.warn(msg)
                self.event(msg)
                return
            time.sleep(min(p['poll_interval'], max(0.01, end - time.monotonic())))

    def close_poolers(self):
        for pl in self.poolers:
            pl.close()

    # -- the critical path ----------------------------------------------------------------------
    def pause(self):
        t = time.monotonic()
        self.stall_start = t
        self.event('PAUSE sent to %d PgBouncer(s)' % len(self.poolers))
        outcome = run_threads(self.poolers, Pooler.pause, self.p['pause_timeout'])
        self.phases['pause_s'] = round(time.monotonic() - t, 3)
        failed = []
        for i, error in outcome.items():
            if error:
                pl = self.poolers[i]
                if error == 'timeout':
                    error = ('PAUSE did not complete within pause_timeout=%ss (transactions still running: check SHOW '
                             'SERVERS and long transactions, or raise pause_timeout)' % self.p['pause_timeout'])
                    pl.abort()
                pl.report['error'] = error
                failed.append('%s: %s' % (pl.name, error))
        if failed:
            self.event('PAUSE failed')
            raise StepFailed('PAUSE failed on %s' % '; '.join(failed), 'pause')
        self.event('all paused')

    def switchover(self):
        p = self.p
        state = self.state
        leader = state.leader_name
        outcome = {}

        def post():
            try:
                outcome['reply'] = self.client.switchover(leader, p['candidate'], timeout=p['switchover_timeout'],
                                                          leader_url=state.leader.get('api_url'))
            except PatroniError as e:
                outcome['error'] = e
            except Exception as e:  # pylint: disable=broad-except
                outcome['error'] = PatroniError(to_native(e))
            outcome['t'] = time.monotonic()

        t = time.monotonic()
        self.asked_patroni = True
        thread = threading.Thread(target=post)
        thread.daemon = True
        thread.start()
        self.post_thread, self.post_outcome = thread, outcome
        self.event('POST /switchover %s -> %s sent' % (leader, p['candidate']))
        check = takeover_check(leader, p['candidate'], state.timeline, require_old_leader=False)
        candidate_url = (state.member(p['candidate']) or {}).get('api_url')
        promoted = promoted_check(p['candidate'], state.timeline)
        detail = 'no cluster state yet'
        end = t + p['switchover_timeout']
        while True:
            error = outcome.get('error')
            # The candidate's own answer first: it says "primary" about a second before the
            # cluster view (the DCS member key) does, and that second is client stall.
            if candidate_url:
                try:
                    status = self.client.member_status(candidate_url)
                    done, detail = promoted(status)
                    if done:
                        self.phases['switchover_s'] = round(time.monotonic() - t, 3)
                        self.result.update(new_leader=p['candidate'], timeline_after=status.get('timeline'),
                                           changed=True)
                        self.event('%s is primary (timeline %s)' % (p['candidate'], status.get('timeline')))
                        return
                except PatroniError as e:
                    detail = 'candidate: %s' % e
            try:
                new = fetch_cluster(self.client)
                done, detail = check(new)
                if done:
                    self.phases['switchover_s'] = round(time.monotonic() - t, 3)
                    self.result.update(new_leader=new.leader_name, timeline_after=new.timeline, changed=True)
                    self.event('%s leads (timeline %s)' % (new.leader_name, new.timeline))
                    return
                if new.leader_name and new.leader_name != leader:
                    self.result['changed'] = True
            except PatroniError as e:
                detail = 'last error: %s' % e
            if error is not None:
                self.event('Patroni answered: %s' % error)
                raise StepFailed('Patroni did not switch over: %s (cluster: %s)' % (error, detail), 'switchover')
            if time.monotonic() >= end:
                raise StepFailed('%s did not lead within switchover_timeout=%ss: %s%s'
                                 % (p['candidate'], p['switchover_timeout'], detail,
                                    '; Patroni answered %s' % (outcome['reply'],) if 'reply' in outcome else ''),
                                 'switchover')
            time.sleep(min(p['poll_interval'], max(0.01, end - time.monotonic())))

    def route(self):
        p = self.p
        t = time.monotonic()
        server = self.server(p['candidate'])
        deadline = t + p['routing_timeout']

        def one(item):
            client, report = item
            if p['force_routing']:
                client.set_server(p['write_backend'], server, 'up')
                report['actions'].append('%s/%s up' % (p['write_backend'], server))
                others = [o for o in report.get('servers') or [] if o != server]
                client.set_server(p['write_backend'], others, 'down')
                report['actions'].extend('%s/%s down' % (p['write_backend'], o) for o in others)
            done, up, elapsed, error = client.wait_up(p['write_backend'], [server], max(0.0, deadline - time.monotonic()),
                                                      p['poll_interval'])
            report['up'] = up
            if not done:
                raise HAProxyError('the UP servers of %s are %s, expected [%s]%s'
                                   % (p['write_backend'], up, server, ' (last error: %s)' % error if error else ''))

        outcome = run_threads(self.haproxies, one, p['routing_timeout'] + 2 * max(
            [c.timeout for c, r in self.haproxies] or [0]))
        self.phases['routing_s'] = round(time.monotonic() - t, 3)
        failed = []
        for i, error in outcome.items():
            if error:
                report = self.haproxies[i][1]
                report['error'] = error
                failed.append('%s: %s' % (report['name'], error))
        if failed:
            self.event('routing failed')
            raise StepFailed('HAProxy does not route writes to %s within routing_timeout=%ss: %s'
                             % (server, p['routing_timeout'], '; '.join(failed)), 'routing')
        self.event('every HAProxy routes writes to %s' % server)

    def route_reads(self):
        """After RESUME (writes do not wait for it): the new leader leaves the read backend now rather
        than at its next failed check, so read pools that reconnect land on replicas. Best effort:
        the read checks do the same a moment later."""
        p = self.p
        if not (p['force_routing'] and getattr(self, 'routed', False)):
            return
        server = self.server(p['candidate'])

        def one(item):
            client, report = item
            try:
                client.set_server(p['read_backend'], server, 'down')
                report['actions'].append('%s/%s down' % (p['read_backend'], server))
            except HAProxyError as e:
                report['read_backend_error'] = str(e)

        run_threads(self.haproxies, one, 2 * max([c.timeout for c, r in self.haproxies] or [0]) + 1)

    def resume(self):
        t = time.monotonic()
        reconnect = getattr(self, 'asked_patroni', False)
        bound = max([pl.connect_timeout for pl in self.poolers] or [0]) * 2 + 5
        outcome = run_threads(self.poolers, lambda pl: self._finish(pl, reconnect), bound)
        self.phases['resume_s'] = round(time.monotonic() - t, 3)
        self.phases['stall_s'] = round(time.monotonic() - self.stall_start, 3)
        failed = []
        for i, error in outcome.items():
            pl = self.poolers[i]
            if error or not pl.report['resumed']:
                pl.report['error'] = '; '.join(x for x in (pl.report['error'], error) if x) or 'RESUME failed'
                failed.append(pl)
        self.event('RESUME done' if not failed else 'RESUME failed on %s' % ', '.join(pl.name for pl in failed))
        return failed

    @staticmethod
    def _finish(pl, reconnect):
        error = pl.finish(reconnect)
        if error:
            raise RuntimeError(error)

    # -- all of it ---------------------------------------------------------------------------------
    def execute(self):
        p = self.p
        self.preflight()
        if self.module.check_mode:
            self.close_poolers()
            self.result.update(changed=True, new_leader=p['candidate'],
                               msg='would switch over from %s to %s behind %d paused PgBouncer(s), routing %d HAProxy(s)'
                                   % (self.result['old_leader'], p['candidate'], len(self.poolers), len(self.haproxies)))
            self.module.exit_json(**self.result)

        if p['streaming_from_candidate']:
            self.wait_streaming()
        watchdog = None
        if p['watchdog'] and self.poolers:
            watchdog = start_watchdog(self.poolers, p['pause_timeout'] + p['switchover_timeout'] + p['routing_timeout']
                                      + WATCHDOG_SLACK)
            self.result['watchdog'] = 'armed'
        handled = (signal.SIGTERM, signal.SIGHUP)
        old_handlers = dict((s, signal.signal(s, _interrupted)) for s in handled)
        self.stall_start = time.monotonic()
        error, step, interrupted = None, None, None
        failed = []
        try:
            try:
                self.pause()
                self.switchover()
                self.route()
                self.routed = True
            except StepFailed as e:
                error, step = e.msg, e.step
            except (KeyboardInterrupt, Interrupted) as e:
                interrupted = 'interrupted (%s)' % (to_native(e) or 'SIGINT')
                self.event(interrupted)
            except Exception as e:  # pylint: disable=broad-except
                error, step = 'unexpected error: %s: %s' % (type(e).__name__, to_native(e)), 'unexpected'
                self.event(error)
        finally:
            # RESUME may not be interrupted: a second Ctrl-C only gets noted.
            notes = []
            for s in (signal.SIGINT,) + handled:
                signal.signal(s, lambda signum, frame: notes.append(signum))
            try:
                failed = self.resume()
            finally:
                if watchdog is not None:
                    stop_watchdog(watchdog[0], watchdog[1], released=not failed)
                    self.result['watchdog'] = 'released' if not failed else 'resumed'
                self.close_poolers()
                signal.signal(signal.SIGINT, signal.default_int_handler)
                for s, h in old_handlers.items():
                    signal.signal(s, h)
            if notes and not interrupted:
                interrupted = 'interrupted (signal %s)' % notes[0]
        if not failed and not interrupted:
            self.route_reads()
        self.report(error, step, interrupted, failed)

    def report(self, error, step, interrupted, failed):
        p = self.p
        ph = self.phases
        if failed:
            still = []
            for pl in failed:
                still.append('PgBouncer on %s may still be paused (%s): run %s now'
                             % (pl.name, pl.report['error'], pl.resume_hint()))
            watchdog = (' The watchdog retried RESUME there.' if self.result['watchdog'] == 'resumed' else '')
            self.fail('RESUME FAILED. %s.%s %s' % ('; '.join(still), watchdog,
                                                   ('Before that: %s.' % (interrupted or error)) if (interrupted or error)
                                                   else 'The switchover itself completed.'))
        stall = 'clients stalled %ss' % ph['stall_s']
        if interrupted:
            self.fail('%s during the switchover to %s; every PgBouncer was resumed (%s). Leader now: check with '
                      'pgha.cluster.status.' % (interrupted, p['candidate'], stall))
        if error:
            if step == 'pause':
                self.fail('%s; every PgBouncer was resumed and nothing else was changed (Patroni was not asked; %s).'
                          % (error, stall))
            if step == 'routing':
                self.fail('The switchover to %s happened, but %s. Every PgBouncer was resumed (%s); writes reach the '
                          'new leader once HAProxy\'s own checks see it. Check HAProxy (pgha.cluster.status).'
                          % (p['candidate'], error, stall))
            self.fail('%s. Every PgBouncer was resumed (%s). Check the cluster with pgha.cluster.status before '
                      'retrying.' % (error, stall))
        reply = self.post_outcome.get('reply')
        if reply:
            self.result['patroni_reply'] = reply[1] if isinstance(reply, tuple) else reply
        self.result['msg'] = ('%s -> %s, timeline %s -> %s; %s (pause %ss, switchover %ss, routing %ss, resume %ss)'
                              % (self.result['old_leader'], self.result['new_leader'], self.result['timeline_before'],
                                 self.result['timeline_after'], stall, ph['pause_s'], ph['switchover_s'],
                                 ph['routing_s'], ph['resume_s']))
        self.module.exit_json(**self.result)


class StepFailed(Exception):
    def __init__(self, msg, step):
        super(StepFailed, self).__init__(msg)
        self.msg = msg
        self.step = step


def main():
    argument_spec = patroni_argument_spec()
    argument_spec.update(
        leader=dict(type='str'),
        candidate=dict(type='str', required=True),
        max_lag_bytes=dict(type='int', default=1048576),
        pgbouncers=dict(type='list', elements='dict', required=True, options=dict(
            host=dict(type='str', required=True),
            port=dict(type='int', default=6432),
            user=dict(type='str', default='pgbouncer'),
            password=dict(type='str', no_log=True),
            sslmode=dict(type='str', default='prefer',
                         choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
            sslrootcert=dict(type='path'),
            sslcert=dict(type='path'),
            sslkey=dict(type='path', no_log=False),
            connect_timeout=dict(type='int', default=5),
        )),
        databases=dict(type='list', elements='str'),
        haproxies=dict(type='list', elements='dict', required=True, options=dict(
            name=dict(type='str'),
            stats_url=dict(type='str'),
            socket=dict(type='path'),
            user=dict(type='str'),
            password=dict(type='str', no_log=True),
            ca_path=dict(type='path'),
            validate_certs=dict(type='bool', default=True),
            timeout=dict(type='float', default=3),
        ), mutually_exclusive=[('stats_url', 'socket')], required_one_of=[('stats_url', 'socket')]),
        write_backend=dict(type='str', default='postgres_write'),
        read_backend=dict(type='str', default='postgres_read'),
        server_names=dict(type='dict', default={}),
        force_routing=dict(type='bool', default=True),
        pause_timeout=dict(type='float', default=20),
        switchover_timeout=dict(type='float', default=30),
        routing_timeout=dict(type='float', default=10),
        poll_interval=dict(type='float', default=0.2),
        watchdog=dict(type='bool', default=True),
        streaming_from_candidate=dict(type='list', elements='str', default=[]),
        streaming_timeout=dict(type='float', default=30),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_together=PATRONI_REQUIRED_TOGETHER,
                           supports_check_mode=True)
    p = module.params
    bad = [k for k in ('pause_timeout', 'switchover_timeout', 'routing_timeout', 'poll_interval', 'timeout',
                       'streaming_timeout') if p[k] <= 0]
    if bad:
        module.fail_json(msg='%s must be positive numbers of seconds; nothing was sent' % ', '.join(bad))
    if p['max_lag_bytes'] < 0:
        module.fail_json(msg='max_lag_bytes must be 0 or more, got %s; nothing was sent' % p['max_lag_bytes'])
    if p['pgbouncers'] and not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=PSYCOPG2_IMPORT_ERROR)
    sw = Switchover(module)
    sw.post_outcome = {}
    sw.execute()


if __name__ == '__main__':
    main()
