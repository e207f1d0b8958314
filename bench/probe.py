# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write probe: what a client writing through the pooler sees during a fault.

Subcommands
  run     write one row per interval through DSN; log every attempt as a JSON line
  mark    append a timestamped event (fault start/end) to an events file
  report  attempts / acknowledged / failed / longest write gap / longest stall, per event window
  verify  every acknowledged id present in the database (exit 1 on any lost acknowledged write)
  pitr    after a point-in-time restore to TARGET: acknowledged before it present, begun after it absent
  stop    end a detached probe (SIGTERM, then SIGKILL after a bound) by its pid file
  wait    wait (bounded) until a detached probe has ended, or until its log shows N acknowledgements
          (--acks N: N in all; --more N: N more than when the wait began)

An id counts as acknowledged only when COMMIT returned "COMMIT". Every network wait is bounded:
by default (--connect-mode async) the probe uses psycopg2's asynchronous connections and select()
with deadlines, plus TCP keepalives and tcp_user_timeout, so a paused PgBouncer or a dead host gives
a recorded stall or failure, never a hang. Pure Python + psycopg2.

--connect-mode blocking is for libpq's multi-host DSNs ("host=a,b ... target_session_attrs=read-write
connect_timeout=2"): libpq walks the host list, and applies connect_timeout per host, only in its
blocking connect (PQconnectdb); with asynchronous connections it never leaves a host that silently
drops packets. In this mode every libpq call (connect, statement) runs in a worker thread while
the main thread keeps the deadlines and handles signals:
  - a connect still running at the attempt's deadline (or the run's end) is abandoned: the
    attempt is logged at once; libpq itself ends the abandoned connect within connect_timeout
    per host address (plus name resolution, which libpq does not bound), and a connection that
    comes too late is closed;
  - a statement still running at the deadline gets a cancel request (sent from a forked child
    process: psycopg2 holds the GIL during libpq's PQcancel, which has no timeout) and, if the
    call is still blocked CANCEL_GRACE later, the socket is shut down under libpq so that its
    blocking recv returns. The attempt is a Timeout as in async mode; the connection is dropped.

Log format (JSON lines):
  {"type": "start", "run_id", "t", "dsn" (password masked), "interval", "duration", "pid",
   "connect_mode", ...}
  {"type": "attempt", "id", "t_start", "t_end", "ok", "phase", "error_class", "error", "node"}
  (blocking mode adds "via": host:port of the DSN entry libpq connected to)
  {"type": "end", "t", "attempts", "acknowledged", "failed", "reason"}
phase: where the attempt ended: connect | insert | commit | done. A failure in phase "commit" is
in doubt (the row may or may not be committed); `verify` reports those separately.
Events file (JSON lines): {"t", "name", "phase": start|end|point, "note"}.
"""

import argparse
import datetime
import errno
import json
import math
import os
import re
import select
import signal
import socket
import statistics
import sys
import threading
import time
import uuid

try:  # the analysis functions (report, plot, tests) do not need psycopg2
    import psycopg2
    import psycopg2.extensions
except ImportError:  # pragma: no cover
    psycopg2 = None

TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS probe_writes ("
    " run_id text NOT NULL,"
    " id bigint NOT NULL,"
    " written_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " client_ts double precision,"
    " PRIMARY KEY (run_id, id))"
)
INSERT_SQL = (
    "INSERT INTO probe_writes (run_id, id, written_at, client_ts) "
    "VALUES (%s, %s, clock_timestamp(), %s) RETURNING coalesce(host(inet_server_addr()), 'local')"
)


CONNECT_MODES = ('async', 'blocking')
# Blocking mode: how long a statement may take to give up after its cancel request before the
# socket is shut down under it, and how often the main thread looks at deadlines and signals.
CANCEL_GRACE = 0.3
WATCH_STEP = 0.05


class AttemptTimeout(Exception):
    """The client-side deadline of one attempt passed (a stall)."""


class Stopped(Exception):
    """The probe was told to stop (SIGTERM/SIGINT or the hard --duration) during an attempt."""


# --------------------------------------------------------------------------------------------
# helpers

def mask_dsn(dsn):
    """The DSN with any password replaced by ***."""
    dsn = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)


def now():
    return time.time()


def read_jsonl(path):
    """Records of a JSON-lines file; a torn last line (probe killed mid-write) is skipped."""
    out = []
    if not path or path == '-' or not os.path.exists(path):
        return out
    with open(path, encoding='utf-8') as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def append_jsonl(path, record):
    with open(path, 'a', encoding='utf-8') as fh:
        fh.write(json.dumps(record, sort_keys=True) + '\n')
        fh.flush()


def libpq_connect_timeout(dsn, connect_timeout):
    """The connect_timeout blocking mode passes to libpq: None when the DSN sets its own, else
    --connect-timeout rounded up to whole seconds, at least 2 (libpq reads 1 as 2)."""
    if psycopg2 is not None:
        try:
            if 'connect_timeout' in psycopg2.extensions.parse_dsn(dsn):
                return None
        except psycopg2.Error:  # a bad DSN fails at connect, with libpq's message
            pass
    return max(2, int(math.ceil(connect_timeout)))


def _fork_cancel(conn):
    """conn.cancel() in a forked child; its pid, or None when fork failed. See Probe._interrupt."""
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # the child: only the cancel, then _exit (no cleanup of the parent's objects)
        code = 1
        try:
            conn.cancel()
            code = 0
        except BaseException:
            pass
        os._exit(code)
    return pid


def _reap(pid):
    """End (SIGKILL) and reap a cancel child that is still waiting for its server."""
    if not pid:
        return
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except OSError:
        pass


def _shutdown_fd(fd):
    """shutdown(SHUT_RDWR) of the socket fd without closing fd (libpq still owns it)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))  # family and type read from the fd
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()  # closes the dup only


# --------------------------------------------------------------------------------------------
# run

class Probe:
    def __init__(self, dsn, interval, duration, log, connect_timeout=2.0, statement_timeout=0,
                 attempt_timeout=30.0, run_id=None, grace=2.0, connect_mode='async'):
        if connect_mode not in CONNECT_MODES:
            raise ValueError('connect_mode must be one of %s' % (CONNECT_MODES,))
        self.dsn = dsn
        self.connect_mode = connect_mode
        self.interval = interval
        self.duration = duration
        self.log_path = log
        self.connect_timeout = connect_timeout
        self.statement_timeout = int(statement_timeout or 0)
        self.attempt_timeout = attempt_timeout
        self.run_id = run_id or '%s-%s' % (time.strftime('%Y%m%dT%H%M%S', time.gmtime()), uuid.uuid4().hex[:8])
        self.grace = min(grace, attempt_timeout)
        self.conn = None
        self.table_ready = False
        self.stop_reason = None
        self.hard_end = None
        self.counts = {'attempts': 0, 'acknowledged': 0, 'failed': 0}
        self.log = None
        self.via = None  # blocking mode: host:port of the DSN entry libpq connected to
        # Blocking mode: libpq's own connect_timeout (whole seconds; libpq treats 1 as 2), the
        # bound of each host (address) of the list. A DSN's own connect_timeout wins.
        self.libpq_connect_timeout = libpq_connect_timeout(dsn, connect_timeout)

    # -- signals ----------------------------------------------------------------------------
    def install_signals(self):
        def handler(signum, frame):
            self.stop_reason = 'signal %d' % signum
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- low level, bounded -----------------------------------------------------------------
    def _wait(self, conn, deadline, stop_at):
        """Drive an async connection until POLL_OK; bounded by deadline and stop_at."""
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            t = now()
            if self.stop_reason or t >= stop_at:
                raise Stopped(self.stop_reason or 'duration reached')
            if t >= deadline:
                raise AttemptTimeout('no answer within %.1fs' % (deadline - self._attempt_t0))
            step = min(0.05, deadline - t, max(stop_at - t, 0.001))
            try:
                if state == psycopg2.extensions.POLL_READ:
                    select.select([conn.fileno()], [], [], step)
                elif state == psycopg2.extensions.POLL_WRITE:
                    select.select([], [conn.fileno()], [], step)
                else:  # pragma: no cover
                    raise psycopg2.OperationalError('bad poll state %r' % state)
            except InterruptedError:
                pass
            except (OSError, ValueError) as exc:  # fd closed under us
                if getattr(exc, 'errno', None) == errno.EINTR:
                    continue
                raise psycopg2.OperationalError('socket error: %s' % exc)

    def _conn_kwargs(self):
        """libpq settings of both modes: dead peers are noticed by TCP, not only by our deadlines."""
        kwargs = dict(keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=3,
                      application_name='pgha-probe')
        if psycopg2.__libpq_version__ >= 120000:
            kwargs['tcp_user_timeout'] = int(max(self.connect_timeout, 1) * 1000 * 2)
        return kwargs

    def _connect(self, deadline, stop_at):
        if self.connect_mode == 'blocking':
            return self._connect_blocking(deadline, stop_at)
        kwargs = dict(self._conn_kwargs(), async_=1, connect_timeout=max(1, int(round(self.connect_timeout))))
        conn = psycopg2.connect(self.dsn, **kwargs)
        try:
            self._wait(conn, min(deadline, now() + self.connect_timeout), stop_at)
        except Exception:
            self._close(conn)
            raise
        return conn

    def _execute(self, sql, params, deadline, stop_at):
        cur = self.conn.cursor()
        if self.connect_mode == 'blocking':
            self._in_thread(lambda: cur.execute(sql, params), deadline, stop_at, conn=self.conn)
            return cur
        cur.execute(sql, params)
        self._wait(self.conn, deadline, stop_at)
        return cur

    # -- blocking mode (libpq multi-host) ------------------------------------------------------
    def _connect_blocking(self, deadline, stop_at):
        """libpq's blocking connect, which walks a multi-host DSN with connect_timeout per host."""
        kwargs = self._conn_kwargs()
        if self.libpq_connect_timeout is not None:
            kwargs['connect_timeout'] = self.libpq_connect_timeout

        def connect():
            conn = psycopg2.connect(self.dsn, **kwargs)
            try:
                # as in async mode (whose connections are always in autocommit): the probe sends
                # its own BEGIN and COMMIT; psycopg2 must not open a transaction first
                conn.autocommit = True
            except Exception:
                self._close(conn)
                raise
            return conn
        conn = self._in_thread(connect, deadline, stop_at)
        try:
            self.via = '%s:%s' % (conn.info.host, conn.info.port)
        except Exception:  # pragma: no cover - informational only
            self.via = None
        return conn

    def _in_thread(self, fn, deadline, stop_at, conn=None):
        """fn() (one blocking libpq call) in a worker thread, bounded by the attempt's deadline,
        the run's hard end and signals; returns fn's result or raises its exception.

        Python runs signal handlers in the main thread only, between bytecodes: a main thread
        blocked inside libpq would not see SIGTERM until libpq returns. So the main thread
        watches, the worker blocks. At the limit: a statement (conn given) is interrupted
        (_interrupt); a connect is abandoned (libpq's connect_timeout per host ends it; a
        connection that comes after all is closed by the worker). Then AttemptTimeout or
        Stopped; an outcome that arrived before we looked counts, as in async mode."""
        t = now()
        if self.stop_reason or t >= stop_at:  # nothing started yet: nothing to interrupt
            raise Stopped(self.stop_reason or 'duration reached')
        if t >= deadline:
            raise AttemptTimeout('no answer within %.1fs' % (deadline - self._attempt_t0))
        fd = conn.fileno() if conn is not None else None  # taken now: the fd of a busy connection
        box = {}
        lock = threading.Lock()

        def work():
            try:
                result, error = fn(), None
            except BaseException as exc:  # handed to the main thread
                result, error = None, exc
            with lock:
                box.update(done=True, result=result, error=error)
                late = box.get('abandoned')
            if late and conn is None and result is not None:
                self._close(result)  # a connect that succeeded after the attempt gave up

        worker = threading.Thread(target=work, name='probe-libpq', daemon=True)
        worker.start()
        while True:
            worker.join(WATCH_STEP)
            t = now()
            if not worker.is_alive():
                break
            if self.stop_reason or t >= stop_at:
                exc = Stopped(self.stop_reason or 'duration reached')
            elif t >= deadline:
                exc = AttemptTimeout('no answer within %.1fs' % (deadline - self._attempt_t0))
            else:
                continue
            with lock:
                if box.get('done'):  # it returned just now: take its outcome
                    break
                box['abandoned'] = True
            if conn is None:
                how = 'connect abandoned (libpq ends it within connect_timeout per host)'
            else:
                how = self._interrupt(conn, fd, worker)
            raise type(exc)('%s; %s' % (exc, how))
        if box['error'] is not None:
            raise box['error']
        return box['result']

    def _interrupt(self, conn, fd, worker):
        """Make the libpq call blocked on conn (in worker) return; give the connection up.

        First a cancel request, from a forked child: psycopg2's conn.cancel() holds the GIL
        while libpq's PQcancel connects to the server and waits for it to close the cancel
        connection, with no timeout (a host that drops packets froze a test process for 134 s);
        a child can be killed, and PQcancel is async-signal-safe, fit for a child forked from a
        threaded process. If the call is still blocked CANCEL_GRACE later (a dead or frozen
        peer ignores cancels), the socket is shut down under libpq: its recv returns at once.
        The connection is closed only after the worker has returned: psycopg2 holds the
        connection's lock during a blocking execute, so an earlier close() would block us."""
        self.conn = None
        child = _fork_cancel(conn)
        worker.join(CANCEL_GRACE)
        how = 'cancel requested' if child else 'no cancel (fork failed)'
        if worker.is_alive():
            how += ', still blocked %.1fs later: socket shut down' % CANCEL_GRACE
            _shutdown_fd(fd)
            worker.join(1.0)
        else:
            how += ', the call returned'
        _reap(child)
        if worker.is_alive():  # not seen in practice: leave the close to a thread of its own
            threading.Thread(target=lambda: (worker.join(), self._close(conn)), daemon=True).start()
            how += '; libpq still blocked, connection left to a closer thread'
        else:
            self._close(conn)
        return how

    @staticmethod
    def _close(conn):
        if conn is None:
            return
        try:
            conn.close()
        except Exception:
            pass

    def _drop(self):
        self._close(self.conn)
        self.conn = None

    # -- one attempt ------------------------------------------------------------------------
    def ensure_table(self, deadline, stop_at):
        try:
            self._execute(TABLE_DDL, None, deadline, stop_at)
        except psycopg2.errors.UniqueViolation:  # concurrent CREATE TABLE IF NOT EXISTS
            pass
        self.table_ready = True

    def attempt(self, ident):
        t_start = now()
        self._attempt_t0 = t_start
        deadline = t_start + self.attempt_timeout
        # an attempt in flight at the end of --duration may finish within the grace period (so
        # that the end of a run does not manufacture in-doubt commits); a signal stops at once
        stop_at = self.hard_end + self.grace
        rec = {'type': 'attempt', 'id': ident, 't_start': t_start, 'ok': False, 'phase': 'connect',
               'error_class': None, 'error': None, 'node': None}
        if self.connect_mode == 'blocking':
            rec['via'] = None
        try:
            if self.conn is None or self.conn.closed:
                self.conn = self._connect(deadline, stop_at)
            if self.connect_mode == 'blocking':
                rec['via'] = self.via  # which entry of a multi-host DSN this connection reached
            if not self.table_ready:
                rec['phase'] = 'ddl'
                self.ensure_table(deadline, stop_at)
            rec['phase'] = 'insert'
            sql = 'BEGIN; '
            if self.statement_timeout:
                sql += 'SET LOCAL statement_timeout = %d; ' % self.statement_timeout
            cur = self._execute(sql + INSERT_SQL, (self.run_id, ident, t_start), deadline, stop_at)
            row = cur.fetchone()
            rec['node'] = row[0] if row else None
            rec['phase'] = 'commit'
            del self.conn.notices[:]
            cur = self._execute('COMMIT', None, deadline, stop_at)
            if cur.statusmessage != 'COMMIT':
                raise psycopg2.OperationalError('COMMIT answered %r' % cur.statusmessage)
            rec['ok'] = True
            rec['phase'] = 'done'
            warnings = [n.strip() for n in self.conn.notices if 'WARNING' in n]
            if warnings:  # e.g. "canceling wait for synchronous replication": local commit only
                rec['warning'] = '; '.join(warnings)[:300]
        except Stopped as exc:
            rec['error_class'] = 'Stopped'
            rec['error'] = str(exc)
            rec['cut'] = True  # cut by the end of the run, not a failure of the cluster
            self._drop()
        except AttemptTimeout as exc:
            rec['error_class'] = 'Timeout'
            rec['error'] = str(exc)
            self._drop()
        except psycopg2.Error as exc:
            rec['error_class'] = type(exc).__name__
            rec['error'] = (str(exc).strip() or repr(exc)).splitlines()[0][:300]
            if rec['phase'] == 'ddl' or 'probe_writes' in (rec['error'] or ''):
                self.table_ready = False
            # After any error the session state is unknown (aborted transaction, pooled server
            # connection gone): start over on a fresh connection, like a careful application.
            self._drop()
        except (OSError, socket.error) as exc:
            rec['error_class'] = type(exc).__name__
            rec['error'] = str(exc)[:300]
            self._drop()
        rec['t_end'] = now()
        return rec

    # -- loop --------------------------------------------------------------------------------
    def run(self):
        if psycopg2 is None:
            raise SystemExit('psycopg2 is required for run')
        t0 = now()
        self.hard_end = t0 + self.duration
        self.log = open(self.log_path, 'w', encoding='utf-8')
        self._write({'type': 'start', 'run_id': self.run_id, 't': t0, 'dsn': mask_dsn(self.dsn),
                     'interval': self.interval, 'duration': self.duration, 'pid': os.getpid(),
                     'attempt_timeout': self.attempt_timeout,
                     'connect_timeout': self.connect_timeout,
                     'connect_mode': self.connect_mode,
                     'libpq_connect_timeout': self.libpq_connect_timeout
                     if self.connect_mode == 'blocking' else None,
                     'statement_timeout_ms': self.statement_timeout})
        ident = 0
        next_at = t0
        try:
            while not self.stop_reason:
                t = now()
                if t >= self.hard_end:
                    self.stop_reason = 'duration reached'
                    break
                if next_at > t:
                    time.sleep(min(next_at - t, self.hard_end - t))
                    continue
                ident += 1
                rec = self.attempt(ident)
                if rec.get('cut'):
                    self.stop_reason = self.stop_reason or 'duration reached'
                    self._write(rec)
                    break
                self.counts['attempts'] += 1
                if rec['ok']:
                    self.counts['acknowledged'] += 1
                else:
                    self.counts['failed'] += 1
                self._write(rec)
                # fixed rate; late attempts start at once but never burst to catch up; after a
                # failure wait one interval (no tight reconnect loop)
                next_at = max(next_at + self.interval, rec['t_end'])
                if not rec['ok']:
                    next_at = max(next_at, rec['t_end'] + self.interval)
        finally:
            self._drop()
            end = dict(self.counts, type='end', t=now(), reason=self.stop_reason or 'error')
            self._write(end)
            self.log.close()
        return self.counts

    def _write(self, rec):
        self.log.write(json.dumps(rec, sort_keys=True) + '\n')
        self.log.flush()


# --------------------------------------------------------------------------------------------
# analysis (pure functions; unit-tested)

def split_log(records):
    """(start record or {}, attempts sorted by id/t_start, end record or None)."""
    start, end, attempts = {}, None, []
    for r in records:
        typ = r.get('type', 'attempt')
        if typ == 'start':
            start = r
        elif typ == 'end':
            end = r
        elif typ == 'attempt':
            attempts.append(r)
    attempts.sort(key=lambda r: (r.get('t_start', 0), r.get('id', 0)))
    return start, attempts, end


def event_windows(events, log_end=None):
    """Pair start/end events of the same name into windows, in time order.

    A start without end runs to the next start of any event (or log_end); a point event is a
    window of its own until the next event. Returns [{'name', 'start', 'end', 'closed'}]."""
    events = sorted(events, key=lambda e: e['t'])
    windows = []
    open_by_name = {}
    for ev in events:
        phase = ev.get('phase', 'point')
        name = ev.get('name', '?')
        if phase == 'end':
            w = open_by_name.pop(name, None)
            if w is not None:
                w['end'] = ev['t']
                w['closed'] = True
            continue
        if phase == 'start' and name in open_by_name:  # restarted without an end: close it
            open_by_name.pop(name)
        w = {'name': name, 'start': ev['t'], 'end': None, 'closed': False}
        if ev.get('note'):
            w['note'] = ev['note']
        windows.append(w)
        if phase == 'start':
            open_by_name[name] = w
    starts = [w['start'] for w in windows]
    for i, w in enumerate(windows):
        if w['end'] is None:
            later = [s for s in starts[i + 1:] if s > w['start']]
            w['end'] = later[0] if later else log_end
    return windows


def longest_gap(ack_times, lo=None, hi=None):
    """Longest interval between consecutive acknowledgements, as seen from a window [lo, hi].

    ack_times: sorted acknowledgement (t_end) times of the whole log. The gap that contains the
    window's start counts from the last acknowledgement before lo (or from lo when there is none);
    the gap that contains hi counts until the first acknowledgement after hi (the outage the
    client saw, even if it outlasted the window); when no acknowledgement follows at all, until
    hi, and the gap is 'open' (writes had not resumed). Without bounds: plain consecutive acks.
    Returns {'gap', 'from', 'to', 'open'} (gap None when there are fewer than two points)."""
    points = []
    if lo is not None:
        before = [t for t in ack_times if t < lo]
        points.append((before[-1] if before else lo, False))
    points += [(t, False) for t in ack_times if (lo is None or t >= lo) and (hi is None or t <= hi)]
    if hi is not None:
        after = [t for t in ack_times if t > hi]
        points.append((after[0], False) if after else (hi, True))
    best = {'gap': None, 'from': None, 'to': None, 'open': False}
    for (a, _unused), (b, is_open) in zip(points, points[1:]):
        if best['gap'] is None or b - a > best['gap']:
            best = {'gap': b - a, 'from': a, 'to': b, 'open': is_open}
    return best


def summarize(attempts, lo=None, hi=None, ack_times=None, open_end=None):
    """Counts and gap/stall figures of the attempts whose t_start is in [lo, hi]."""
    sel = [a for a in attempts
           if (lo is None or a['t_start'] >= lo) and (hi is None or a['t_start'] <= hi)]
    real = [a for a in sel if not a.get('cut')]
    acked = [a for a in real if a.get('ok')]
    failed = [a for a in real if not a.get('ok')]
    if ack_times is None:
        ack_times = sorted(a['t_end'] for a in attempts if a.get('ok') and not a.get('cut'))
    gap = longest_gap(ack_times, lo, hi if hi is not None else open_end)
    stall = None
    for a in real:
        d = a['t_end'] - a['t_start']
        if stall is None or d > stall['latency']:
            stall = {'latency': d, 'id': a.get('id'), 't_start': a['t_start'], 'ok': bool(a.get('ok')),
                     'error_class': a.get('error_class')}
    errors = {}
    for a in failed:
        key = '%s/%s' % (a.get('error_class'), a.get('phase'))
        errors[key] = errors.get(key, 0) + 1
    fail_times = [a['t_start'] for a in failed]
    lat = sorted(a['t_end'] - a['t_start'] for a in acked)
    return {
        'attempts': len(real),
        'acknowledged': len(acked),
        'failed': len(failed),
        'in_doubt': sum(1 for a in failed if a.get('phase') == 'commit'),
        'errors': errors,
        'longest_gap': gap['gap'],
        'gap_from': gap['from'],
        'gap_to': gap['to'],
        'gap_open': gap['open'],
        'longest_attempt': stall['latency'] if stall else None,
        'longest_attempt_id': stall['id'] if stall else None,
        'longest_attempt_ok': stall['ok'] if stall else None,
        'longest_attempt_at': stall['t_start'] if stall else None,
        'first_failure': min(fail_times) if fail_times else None,
        'last_failure': max(fail_times) if fail_times else None,
        'latency_median': statistics.median(lat) if lat else None,
        'nodes': sorted({a['node'] for a in acked if a.get('node')}),
        'from': lo if lo is not None else (sel[0]['t_start'] if sel else None),
        'to': hi if hi is not None else (sel[-1]['t_end'] if sel else None),
    }


def analyze(records, events=()):
    """The report structure for one log (records) and its events."""
    start, attempts, end = split_log(records)
    ack_times = sorted(a['t_end'] for a in attempts if a.get('ok') and not a.get('cut'))
    log_end = (end or {}).get('t') or (attempts[-1]['t_end'] if attempts else None)
    overall = summarize(attempts, ack_times=ack_times)
    if attempts:
        # overall longest gap also counts from the first attempt (a probe that never got an
        # ack at the start) -- but not the tail after the last ack when the run ended normally
        first = attempts[0]['t_start']
        if ack_times and ack_times[0] - first > (overall['longest_gap'] or 0):
            overall.update(longest_gap=ack_times[0] - first, gap_from=first, gap_to=ack_times[0], gap_open=False)
    windows = []
    for w in event_windows(list(events), log_end):
        s = summarize(attempts, w['start'], w['end'], ack_times=ack_times)
        s.update(name=w['name'], start=w['start'], end=w['end'], closed=w['closed'])
        if w.get('note'):
            s['note'] = w['note']
        windows.append(s)
    return {'run_id': start.get('run_id'), 'started': start.get('t'), 'ended': log_end,
            'end_reason': (end or {}).get('reason'), 'complete': end is not None,
            'overall': overall, 'windows': windows}


def acked_ids(records):
    attempts = split_log(records)[1]
    return {a['id'] for a in attempts if a.get('ok') and not a.get('cut')}


def parse_target(text):
    """Epoch seconds of a restore target: epoch seconds, or an ISO 8601 time with a UTC offset
    (PostgreSQL's own '2026-12-01 10:15:00.123+00' included). ValueError otherwise."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    # PostgreSQL prints an offset of whole hours as '+00'; older fromisoformat wants '+00:00'
    t = datetime.datetime.fromisoformat(re.sub(r'([+-]\d\d)$', r'\1:00', text))
    if t.tzinfo is None:  # a local time would depend on where the check runs
        raise ValueError('%r has no UTC offset' % text)
    return t.timestamp()


def pitr_check(records, present_ids, target):
    """The probe's rows after a point-in-time restore to target (epoch seconds), as Jepsen counts.

    Acknowledged attempts that ended before the target must be present; attempts that began after
    it must be absent, acknowledged or not (their COMMIT came after the target); attempts that
    straddle it may be either and are only counted. Failed attempts that ended before the target
    are not judged (in doubt or never written). The log's times are the client's clock, the
    target the server's: both must be the same clock (one machine, or synchronised)."""
    attempts = split_log(records)[1]
    present = set(present_ids)
    before = sorted(a['id'] for a in attempts if a.get('ok') and not a.get('cut') and a['t_end'] < target)
    after = sorted(a['id'] for a in attempts if a['t_start'] > target)
    straddling = [a for a in attempts if a['t_start'] <= target <= a['t_end']]
    missing = [i for i in before if i not in present]
    after_present = [i for i in after if i in present]
    return {
        'before_acked': len(before),
        'before_missing': len(missing),
        'before_missing_ids': missing[:20],
        'after_begun': len(after),
        'after_present': len(after_present),
        'after_present_ids': after_present[:20],
        'straddling': len(straddling),
        'ok': not missing and not after_present,
    }


def find_lost(records, present_ids):
    """Compare the log against the ids present in the database."""
    attempts = split_log(records)[1]
    present = set(present_ids)
    acked = {a['id'] for a in attempts if a.get('ok') and not a.get('cut')}
    in_doubt = {a['id'] for a in attempts if not a.get('ok') and a.get('phase') == 'commit'}
    failed = {a['id'] for a in attempts if not a.get('ok')}
    lost = sorted(acked - present)
    return {
        'acknowledged': len(acked),
        'present_acknowledged': len(acked & present),
        'lost': len(lost),
        'lost_ids': lost[:50],
        'in_doubt': len(in_doubt),
        'in_doubt_present': len(in_doubt & present),
        'failed_but_present': len((failed - in_doubt) & present),
        'unknown_present': len(present - acked - failed),
    }


# --------------------------------------------------------------------------------------------
# output

def _f(v, fmt='%.3f'):
    return '-' if v is None else fmt % v


def _ts(t):
    if t is None:
        return '-'
    return time.strftime('%H:%M:%S', time.gmtime(t)) + ('%.3f' % (t % 1))[1:]


def format_report(rep):
    head = '%-22s %8s %6s %6s %9s %10s %10s  %-12s %-12s' % (
        'window', 'attempts', 'acked', 'failed', 'in_doubt', 'gap_s', 'stall_s', 'from', 'to')
    lines = ['run %s (%s)' % (rep.get('run_id'), rep.get('end_reason')), head, '-' * len(head)]
    rows = [dict(rep['overall'], name='overall')] + rep['windows']
    for r in rows:
        gap = _f(r['longest_gap']) + ('+' if r.get('gap_open') else '')
        lines.append('%-22s %8d %6d %6d %9d %10s %10s  %-12s %-12s' % (
            r['name'][:22], r['attempts'], r['acknowledged'], r['failed'], r['in_doubt'], gap,
            _f(r['longest_attempt']), _ts(r['from']), _ts(r['to'])))
        if r.get('gap_from') is not None and r['name'] != 'overall':
            lines.append('%-22s   longest gap %s -> %s; errors %s' % (
                '', _ts(r['gap_from']), _ts(r['gap_to']), r['errors'] or '{}'))
    lines.append('gap_s: longest time between consecutive acknowledged writes (+ = writes had not '
                 'resumed at the window end); stall_s: longest single attempt')
    return '\n'.join(lines)


# --------------------------------------------------------------------------------------------
# detached runs

def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as ended
        with open('/proc/%d/stat' % pid) as fh:
            if fh.read().split(')')[-1].split()[0] == 'Z':
                return False
    except OSError:
        pass
    return True


def _is_probe(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as fh:
            return b'probe' in fh.read()
    except OSError:
        return True  # no /proc: trust the pid file


def _read_pid(pid_file):
    try:
        with open(pid_file) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def daemonize(pid_file, stderr_path):
    """Double fork; the grandchild writes pid_file and continues. The caller returns at once."""
    pid = os.fork()
    if pid > 0:
        # wait for the intermediate child so that no zombie is left, then for the pid file
        os.waitpid(pid, 0)
        for _attempt in range(100):
            if _read_pid(pid_file):
                break
            time.sleep(0.02)
        os._exit(0)
    os.setsid()
    pid = os.fork()
    if pid > 0:
        os._exit(0)
    with open(pid_file + '.tmp', 'w') as fh:
        fh.write('%d\n' % os.getpid())
    os.replace(pid_file + '.tmp', pid_file)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(err, 1)
    os.dup2(err, 2)


def stop_pid(pid_file, timeout=10.0):
    pid = _read_pid(pid_file)
    if pid is None:
        return 'no pid file'
    if not _pid_alive(pid) or not _is_probe(pid):
        return 'not running'
    os.kill(pid, signal.SIGTERM)
    end = now() + timeout
    while now() < end:
        if not _pid_alive(pid):
            return 'stopped'
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return 'killed'


def count_acks(log):
    n = 0
    try:
        with open(log, encoding='utf-8') as fh:
            for line in fh:
                if '"ok": true' in line:
                    n += 1
    except OSError:
        pass
    return n


# --------------------------------------------------------------------------------------------
# CLI

def cmd_run(args):
    if args.daemon:
        if not args.pid_file:
            raise SystemExit('--daemon needs --pid-file')
        daemonize(args.pid_file, args.log + '.stderr')
    probe = Probe(args.dsn, args.interval, args.duration, args.log, args.connect_timeout,
                  args.statement_timeout, args.attempt_timeout, args.run_id, connect_mode=args.connect_mode)
    probe.install_signals()
    if args.pid_file and not args.daemon:
        with open(args.pid_file, 'w') as fh:
            fh.write('%d\n' % os.getpid())
    counts = probe.run()
    if not args.daemon:
        print(json.dumps(dict(counts, run_id=probe.run_id, reason=probe.stop_reason)))
    return 0


def cmd_mark(args):
    rec = {'t': args.time if args.time is not None else now(), 'name': args.name, 'phase': args.phase}
    if args.note:
        rec['note'] = args.note
    append_jsonl(args.events, rec)
    print(json.dumps(rec))
    return 0


def cmd_report(args):
    rep = analyze(read_jsonl(args.log), read_jsonl(args.events) if args.events else ())
    if not rep['overall']['attempts'] and not rep['run_id']:
        print('no probe records in %s' % args.log, file=sys.stderr)
        return 2
    print(format_report(rep))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as fh:
            json.dump(rep, fh, indent=2, sort_keys=True)
    return 0


def fetch_present(dsn, run_id, wait=30.0, connect_timeout=3, what='verify'):
    """Ids of run_id present in probe_writes, read through dsn; retried until `wait` passes.
    what: the subcommand, named in the errors."""
    if psycopg2 is None:
        raise SystemExit('psycopg2 is required for %s' % what)
    deadline = now() + wait
    last = None
    while True:
        try:
            conn = psycopg2.connect(dsn, connect_timeout=connect_timeout, application_name='pgha-probe-verify',
                                    keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=3)
            try:
                # one transaction; SET LOCAL, so that nothing leaks into a pooled server session
                with conn.cursor() as cur:
                    cur.execute('SET LOCAL statement_timeout = 20000')
                    cur.execute('SELECT pg_is_in_recovery()')
                    if cur.fetchone()[0]:
                        raise psycopg2.OperationalError('%s DSN reached a replica, not the leader' % what)
                    cur.execute('SELECT id FROM probe_writes WHERE run_id = %s', (run_id,))
                    ids = {r[0] for r in cur.fetchall()}
                conn.rollback()
                return ids
            finally:
                conn.close()
        except psycopg2.errors.UndefinedTable:
            return set()
        except psycopg2.Error as exc:
            last = exc
            if now() >= deadline:
                raise SystemExit('%s: cannot read probe_writes through %s: %s' % (what, mask_dsn(dsn), str(last).strip()))
            time.sleep(1)


def cmd_verify(args):
    records = read_jsonl(args.log)
    start = split_log(records)[0]
    if not start.get('run_id'):
        print('verify: %s has no start record' % args.log, file=sys.stderr)
        return 2
    present = fetch_present(args.dsn, start['run_id'], wait=args.wait)
    res = find_lost(records, present)
    res['run_id'] = start['run_id']
    print('run %(run_id)s: acknowledged %(acknowledged)d, present %(present_acknowledged)d, '
          'LOST %(lost)d; in doubt (commit unanswered) %(in_doubt)d, of which present '
          '%(in_doubt_present)d' % res)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as fh:
            json.dump(res, fh, indent=2, sort_keys=True)
    if res['lost']:
        print('LOST ACKNOWLEDGED WRITES: ids %s%s' % (res['lost_ids'], ' ...' if res['lost'] > 50 else ''),
              file=sys.stderr)
        return 1
    if not res['acknowledged'] and not args.allow_empty:
        print('verify: no acknowledged write in the log', file=sys.stderr)
        return 3
    return 0


def cmd_pitr(args):
    try:
        target = parse_target(args.target)
    except ValueError as exc:
        print('pitr: bad --target: %s' % exc, file=sys.stderr)
        return 2
    records = read_jsonl(args.log)
    run_id = args.run_id or split_log(records)[0].get('run_id')
    if not run_id:
        print('pitr: %s has no start record (give --run-id)' % args.log, file=sys.stderr)
        return 2
    present = fetch_present(args.dsn, run_id, wait=args.wait, what='pitr')
    res = dict(pitr_check(records, present, target), target=args.target, target_epoch=target, run_id=run_id)
    print(json.dumps(res, sort_keys=True))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as fh:
            json.dump(res, fh, indent=2, sort_keys=True)
    return 0 if res['ok'] else 1


def cmd_stop(args):
    print(stop_pid(args.pid_file, args.timeout))
    return 0


def cmd_wait(args):
    end = now() + args.timeout
    acks = args.acks
    if args.more is not None:
        acks = count_acks(args.log) + args.more
    if acks is not None:
        while now() < end:
            if count_acks(args.log) >= acks:
                print('acknowledged >= %d' % acks)
                return 0
            if args.pid_file:
                pid = _read_pid(args.pid_file)
                if pid and not _pid_alive(pid):
                    print('probe ended before %d acknowledgements' % acks, file=sys.stderr)
                    return 1
            time.sleep(0.1)
        last = read_jsonl(args.log)[-1:] if args.log else []
        print('timeout: fewer than %d acknowledgements in %s; last record: %s'
              % (acks, args.log, json.dumps(last[0]) if last else 'none'), file=sys.stderr)
        return 1
    pid = _read_pid(args.pid_file)
    if pid is None:
        print('no pid file', file=sys.stderr)
        return 1
    while now() < end:
        if not _pid_alive(pid):
            print('ended')
            return 0
        time.sleep(0.1)
    print('timeout: probe %d still running' % pid, file=sys.stderr)
    return 1


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = p.add_subparsers(dest='cmd', required=True)

    r = sub.add_parser('run', help='write one row per interval through DSN')
    r.add_argument('--dsn', required=True)
    r.add_argument('--interval', type=float, default=0.05)
    r.add_argument('--duration', type=float, required=True, help='hard stop after this many seconds')
    r.add_argument('--log', required=True)
    r.add_argument('--connect-timeout', type=float, default=2.0,
                   help='async: bound of a connect; blocking: libpq connect_timeout per host (rounded up, '
                        'at least 2; a connect_timeout in the DSN wins)')
    r.add_argument('--connect-mode', choices=CONNECT_MODES, default='async',
                   help="async: psycopg2 asynchronous connections (one host); blocking: libpq's blocking "
                        "connect, which walks a multi-host DSN with connect_timeout per host; statements "
                        "then run in a worker thread, cancelled and cut at --attempt-timeout")
    r.add_argument('--statement-timeout', type=int, default=0,
                   help='server-side statement_timeout in ms (SET LOCAL per transaction; 0 = off)')
    r.add_argument('--attempt-timeout', type=float, default=30.0,
                   help='client-side bound of one attempt in seconds (a longer stall is a Timeout)')
    r.add_argument('--run-id')
    r.add_argument('--daemon', action='store_true', help='detach; needs --pid-file')
    r.add_argument('--pid-file')
    r.set_defaults(func=cmd_run)

    m = sub.add_parser('mark', help='append a timestamped event')
    m.add_argument('--events', required=True)
    m.add_argument('--name', required=True)
    m.add_argument('--phase', choices=['start', 'end', 'point'], default='point')
    m.add_argument('--note')
    m.add_argument('--time', type=float, help='epoch seconds (default: now)')
    m.set_defaults(func=cmd_mark)

    rp = sub.add_parser('report', help='summarize a probe log per event window')
    rp.add_argument('--log', required=True)
    rp.add_argument('--events')
    rp.add_argument('--json')
    rp.set_defaults(func=cmd_report)

    v = sub.add_parser('verify', help='every acknowledged id present in the database')
    v.add_argument('--log', required=True)
    v.add_argument('--dsn', required=True)
    v.add_argument('--wait', type=float, default=30.0, help='retry connecting for this long')
    v.add_argument('--json')
    v.add_argument('--allow-empty', action='store_true')
    v.set_defaults(func=cmd_verify)

    pt = sub.add_parser('pitr', help='after a point-in-time restore: the probe\'s rows against the target')
    pt.add_argument('--log', required=True)
    pt.add_argument('--dsn', required=True)
    pt.add_argument('--target', required=True,
                    help="the restore's target time: ISO 8601 with a UTC offset ('2026-12-01 10:15:00.123+00') "
                         "or epoch seconds")
    pt.add_argument('--run-id', help="default: the log's start record")
    pt.add_argument('--wait', type=float, default=30.0, help='retry connecting for this long')
    pt.add_argument('--json')
    pt.set_defaults(func=cmd_pitr)

    s = sub.add_parser('stop', help='stop a detached probe')
    s.add_argument('--pid-file', required=True)
    s.add_argument('--timeout', type=float, default=10.0)
    s.set_defaults(func=cmd_stop)

    w = sub.add_parser('wait', help='wait until a detached probe ended, or until --acks N / --more N')
    w.add_argument('--pid-file')
    w.add_argument('--log')
    n = w.add_mutually_exclusive_group()
    n.add_argument('--acks', type=int, help='until the log holds N acknowledgements')
    n.add_argument('--more', type=int, help='until the log holds N more acknowledgements than when the wait began')
    w.add_argument('--timeout', type=float, default=60.0)
    w.set_defaults(func=cmd_wait)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.cmd == 'wait' and (args.acks is not None or args.more is not None) and not args.log:
        raise SystemExit('wait --acks/--more needs --log')
    if args.cmd == 'wait' and args.acks is None and args.more is None and not args.pid_file:
        raise SystemExit('wait needs --pid-file (or --log with --acks or --more)')
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
