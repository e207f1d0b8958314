# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared Patroni REST API client and cluster-state helpers for pgha.cluster.

Every Patroni module of the collection talks to Patroni through :class:`PatroniClient`.

Naming generations
------------------
Patroni 3.0.x (Debian 12) says ``master`` in ``GET /patroni`` and reports replicas as
``running``; Patroni 4.x (Debian 13) says ``primary`` and reports streaming replicas as
``streaming``.  :func:`normalize_role` and :func:`normalize_member` hide these differences:
every leader flavour (``leader``, ``master``, ``primary``) becomes ``leader`` (a standby
cluster's leader stays ``standby_leader``), ``sync_standby``/``quorum_standby``/``replica``
are kept and flagged as replicas, and a replica state of ``running`` or ``streaming`` is
considered "up".  The raw values are always returned too (``role_raw``, ``state``).
"""

import base64
import json
import os
import socket
import ssl
import time

from urllib.error import HTTPError

from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.urls import open_url

# Seconds between two polls of the cluster state in the wait loops.  Kept as a module
# constant so that unit tests can shorten it.
POLL_INTERVAL = 1.0

LEADER_ROLES = ('leader', 'master', 'primary', 'standby_leader')
REPLICA_ROLES = ('replica', 'sync_standby', 'quorum_standby')
# Members taking part in synchronous replication: one named standby (synchronous_mode on) or the
# members of the quorum (synchronous_mode quorum, Patroni >= 4.0).
SYNC_ROLES = ('sync_standby', 'quorum_standby')
UP_STATES = ('running', 'streaming')


def patroni_argument_spec():
    """Return the connection options shared by every Patroni module."""
    return dict(
        api_url=dict(type='list', elements='str', default=['http://127.0.0.1:8008']),
        api_username=dict(type='str'),
        api_password=dict(type='str', no_log=True),
        ca_path=dict(type='path'),
        client_cert=dict(type='path'),
        client_key=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        timeout=dict(type='float', default=10.0),
    )


PATRONI_REQUIRED_TOGETHER = [('api_username', 'api_password'), ]


class PatroniError(Exception):
    """An error talking to Patroni; ``str()`` is a message meant for the user."""

    def __init__(self, msg, status=None, url=None, body=None, kind='error'):
        super(PatroniError, self).__init__(msg)
        self.msg = msg
        self.status = status
        self.url = url
        self.body = body
        self.kind = kind

    def __str__(self):
        return self.msg


def base_url(url):
    """Turn ``http://h:8008/patroni`` or ``http://h:8008/`` into ``http://h:8008``."""
    url = (url or '').strip().rstrip('/')
    if url.endswith('/patroni'):
        url = url[:-len('/patroni')]
    return url.rstrip('/')


def _is_timeout(exc):
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return True
    reason = getattr(exc, 'reason', None)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return True
    return 'timed out' in to_native(exc)


class PatroniClient(object):
    """Small Patroni REST API client built on ``ansible.module_utils.urls.open_url``.

    ``api_urls`` is a list of member base URLs.  Read-only requests (``GET``) are tried on the
    next member when one is unreachable, times out, answers 5xx or returns malformed JSON.
    Unsafe requests are only retried on the next member when the connection could not be
    established at all (so the request certainly was not delivered).
    """

    def __init__(self, api_urls, username=None, password=None, ca_path=None, client_cert=None,
                 client_key=None, validate_certs=True, timeout=10.0):
        if isinstance(api_urls, str):
            api_urls = [api_urls]
        self.api_urls = [base_url(u) for u in (api_urls or []) if u and u.strip()]
        if not self.api_urls:
            raise PatroniError('api_url must contain at least one Patroni REST API URL, e.g. http://10.0.0.1:8008')
        self.username = username
        self.password = password
        self.ca_path = ca_path
        self.client_cert = client_cert
        self.client_key = client_key
        self.validate_certs = validate_certs
        for option, path in (('ca_path', ca_path), ('client_cert', client_cert), ('client_key', client_key)):
            if path and not os.path.isfile(path):
                raise PatroniError('%s %s does not exist or is not a file: give the PEM file on the host that runs '
                                   'the module (for ca_path, the cluster CA certificate; the pki role keeps it '
                                   'in its pki_controller_dir on the controller and in /etc/pgha/tls/ca.crt on '
                                   'every host)' % (option, path), kind='tls')
        self.timeout = float(timeout)
        # URL of the member that answered last, useful in results and error messages
        self.last_url = None

    @classmethod
    def from_module(cls, module):
        p = module.params
        return cls(p['api_url'], username=p['api_username'], password=p['api_password'],
                   ca_path=p['ca_path'], client_cert=p['client_cert'], client_key=p['client_key'],
                   validate_certs=p['validate_certs'], timeout=p['timeout'])

    # -- low level -----------------------------------------------------------------------
    def _headers(self, method, has_body):
        headers = {'Accept': 'application/json'}
        if has_body:
            headers['Content-Type'] = 'application/json'
        if method != 'GET' and self.username is not None and self.password is not None:
            token = base64.b64encode(('%s:%s' % (self.username, self.password)).encode('utf-8'))
            headers['Authorization'] = 'Basic %s' % to_native(token)
        return headers

    def _once(self, method, url, data, expect_json, timeout=None):
        timeout = self.timeout if timeout is None else float(timeout)
        body = None
        if data is not None:
            body = json.dumps(data).encode('utf-8')
        try:
            resp = open_url(url, data=body, method=method, headers=self._headers(method, body is not None),
                            timeout=timeout, validate_certs=self.validate_certs,
                            ca_path=self.ca_path, client_cert=self.client_cert, client_key=self.client_key,
                            use_proxy=False, follow_redirects='none', use_netrc=False)
            status = resp.getcode()
            raw = resp.read()
        except HTTPError as e:
            try:
                raw = e.read()
            except Exception:
                raw = b''
            raise self._http_error(method, url, e.code, to_text(raw, errors='surrogate_or_replace').strip())
        except Exception as e:
            if _is_timeout(e):
                raise PatroniError('timeout after %ss waiting for %s %s' % (timeout, method, url),
                                   url=url, kind='timeout')
            reason = getattr(e, 'reason', e)
            if isinstance(reason, ssl.SSLCertVerificationError) or 'CERTIFICATE_VERIFY_FAILED' in to_native(reason):
                # Not retried on another member: they share the CA, the same error would follow.
                raise PatroniError('the TLS certificate of %s cannot be verified (%s): set ca_path to the CA '
                                   'that signed it (the cluster CA, ca.crt of the pki role)'
                                   % (url, to_native(getattr(reason, 'verify_message', None) or reason)),
                                   url=url, kind='tls')
            if isinstance(reason, ssl.SSLError):
                raise PatroniError('TLS handshake with %s failed: %s (a REST API that requires client '
                                   'certificates needs client_cert and client_key)' % (url, to_native(reason)),
                                   url=url, kind='tls')
            hint = ''
            if url.startswith('http://') and (isinstance(reason, (ConnectionResetError, ConnectionAbortedError))
                                              or type(reason).__name__ == 'RemoteDisconnected'):
                hint = ' (if the REST API is served over TLS, use https:// URLs and ca_path)'
            raise PatroniError('cannot reach %s: %s%s' % (url, to_native(reason), hint), url=url, kind='unreachable')
        text = to_text(raw, errors='surrogate_or_replace')
        if not expect_json:
            return status, text.strip()
        try:
            return status, json.loads(text)
        except ValueError as e:
            raise PatroniError('malformed JSON from %s %s (HTTP %s): %s; body starts with %r'
                               % (method, url, status, to_native(e), text[:80]),
                               status=status, url=url, body=text, kind='malformed')

    @staticmethod
    def _http_error(method, url, status, body):
        if status == 401:
            msg = ('authentication failed: set api_username/api_password (Patroni answered 401 to %s %s: %s)'
                   % (method, url, body or 'unauthorized'))
            kind = 'auth'
        elif status == 403:
            msg = ('access denied (403) by Patroni for %s %s: %s; check restapi.allowlist and client certificates'
                   % (method, url, body))
            kind = 'auth'
        elif status == 412:
            msg = 'Patroni refused %s %s (412 precondition failed): %s' % (method, url, body)
            kind = 'precondition'
        elif status == 503:
            msg = 'Patroni unavailable (503) for %s %s: %s' % (method, url, body or 'service unavailable')
            kind = 'unavailable'
        else:
            msg = 'Patroni answered HTTP %s to %s %s: %s' % (status, method, url, body)
            kind = 'http'
        return PatroniError(msg, status=status, url=url, body=body, kind=kind)

    def request(self, method, path, data=None, member_url=None, expect_json=True, timeout=None, prefer_url=None):
        """Send one request and return ``(status, decoded_body)``.

        ``timeout`` (seconds) overrides the client's general timeout for this request.

        With ``member_url`` only that member is asked (used for member specific actions such as
        ``POST /restart``); otherwise the members of ``api_url`` are tried in order, after
        ``prefer_url`` when given (the member that has to act on the request) and reachable.
        """
        method = method.upper()
        if member_url:
            urls = [base_url(member_url)]
        elif prefer_url and self._may_prefer(base_url(prefer_url)):
            urls = [base_url(prefer_url)] + [u for u in self.api_urls if u != base_url(prefer_url)]
        else:
            urls = self.api_urls
        errors = []
        for url in urls:
            full = url + path
            try:
                result = self._once(method, full, data, expect_json, timeout)
                self.last_url = url
                return result
            except PatroniError as e:
                errors.append(e)
                retry = e.kind == 'unreachable' or (
                    method == 'GET' and (e.kind in ('timeout', 'malformed') or (e.status or 0) >= 500))
                if not retry:
                    raise
        if len(errors) == 1:
            raise errors[0]
        last = errors[-1]
        raise PatroniError('no Patroni member answered %s %s; tried %d URL(s): %s'
                           % (method, path, len(errors), '; '.join(str(e) for e in errors)),
                           status=last.status, url=last.url, kind=last.kind)

    def _may_prefer(self, url):
        """Whether a request may go to ``url`` first: yes when ``api_url`` lists it, else only when
        it answers GET /liveness within the general timeout. A member's advertised api_url may be
        an address this controller cannot reach (another network, NAT), and a POST sent there
        would hang for its long timeout and is not retried elsewhere (it may have been processed)."""
        if url in self.api_urls:
            return True
        try:
            self._once('GET', url + '/liveness', None, False)
        except PatroniError as e:
            return e.status is not None  # any HTTP answer: the member is reachable
        return True

    def get(self, path, member_url=None):
        return self.request('GET', path, member_url=member_url)[1]

    # -- endpoints -------------------------------------------------------------------------
    def cluster(self):
        data = self.get('/cluster')
        if not isinstance(data, dict) or not isinstance(data.get('members', []), list):
            raise PatroniError('unexpected reply to GET /cluster from %s: %r' % (self.last_url, data), kind='malformed')
        return data

    def config(self):
        data = self.get('/config')
        if not isinstance(data, dict):
            raise PatroniError('unexpected reply to GET /config from %s: %r' % (self.last_url, data), kind='malformed')
        return data

    def patch_config(self, changes):
        return self.request('PATCH', '/config', data=changes)[1]

    def history(self):
        return self.get('/history')

    def member_status(self, member_api_url):
        return self.get('/patroni', member_url=member_api_url)

    def switchover(self, leader, candidate=None, scheduled_at=None, timeout=None, leader_url=None):
        """POST /switchover. Patroni answers an immediate switchover only after the leader has
        demoted (and the candidate was promoted), so callers pass a ``timeout`` that allows for it.

        Sent to ``leader_url`` first (the leader's api_url from GET /cluster): another member only
        writes the request to the DCS and wakes its own HA loop, and the leader, which does not
        watch the DCS, acts on it at its next cycle, up to loop_wait seconds later."""
        body = {'leader': leader}
        if candidate:
            body['candidate'] = candidate
        if scheduled_at:
            body['scheduled_at'] = scheduled_at
        return self.request('POST', '/switchover', data=body, expect_json=False, timeout=timeout, prefer_url=leader_url)

    def failover(self, candidate, timeout=None, acting_url=None):
        """POST /failover, first to ``acting_url``: the member whose HA loop carries it out (the
        running leader, else the candidate), for the reason given in switchover()."""
        return self.request('POST', '/failover', data={'candidate': candidate}, expect_json=False, timeout=timeout,
                            prefer_url=acting_url)

    def restart(self, member_api_url, restart_pending=False, timeout=None):
        """POST /restart on one member; Patroni answers once PostgreSQL is up again, so callers pass
        a ``timeout`` that allows for the restart."""
        body = {}
        if restart_pending:
            body['restart_pending'] = True
        return self.request('POST', '/restart', data=body, member_url=member_api_url, expect_json=False,
                            timeout=timeout)


# -- normalisation -----------------------------------------------------------------------------
def normalize_role(role):
    """Map every Patroni generation's role names to one vocabulary.

    ``leader``/``master``/``primary`` -> ``leader``; ``standby_leader``, ``sync_standby``,
    ``quorum_standby`` and ``replica`` are kept; anything else is returned lower-cased.
    """
    role = (role or '').strip().lower()
    if role in ('leader', 'master', 'primary'):
        return 'leader'
    return role or 'unknown'


def is_leader_role(role):
    return (role or '').lower() in LEADER_ROLES


def is_up_state(state):
    return (state or '').lower() in UP_STATES


def _lag_bytes(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def normalize_member(raw):
    """Return a normalised copy of one ``/cluster`` member entry."""
    role_raw = raw.get('role')
    role = normalize_role(role_raw)
    leader = is_leader_role(role_raw)
    state = raw.get('state')
    tags = raw.get('tags') or {}
    lag = None if leader else _lag_bytes(raw.get('lag'))
    member = dict(
        name=raw.get('name'),
        role=role,
        role_raw=role_raw,
        is_leader=leader,
        is_replica=(not leader and role in REPLICA_ROLES),
        state=state,
        up=is_up_state(state),
        timeline=raw.get('timeline'),
        host=raw.get('host'),
        port=raw.get('port'),
        api_url=raw.get('api_url'),
        lag=0 if leader else lag,
        lag_raw=raw.get('lag'),
        tags=tags,
        nofailover=bool(tags.get('nofailover', False)),
        pending_restart=bool(raw.get('pending_restart', False)),
    )
    for key in ('receive_lag', 'replay_lag', 'lsn', 'receive_lsn', 'replay_lsn', 'scheduled_restart'):
        if key in raw:
            member[key] = raw[key]
    return member


class ClusterState(object):
    """Normalised view of a ``GET /cluster`` reply."""

    def __init__(self, raw, source_url=None):
        self.raw = raw
        self.source_url = source_url
        self.members = [normalize_member(m) for m in raw.get('members') or []]
        self.paused = bool(raw.get('pause', False))
        self.scheduled_switchover = raw.get('scheduled_switchover')

    @property
    def leaders(self):
        return [m for m in self.members if m['is_leader']]

    @property
    def leader(self):
        leaders = self.leaders
        return leaders[0] if len(leaders) == 1 else None

    @property
    def leader_name(self):
        leader = self.leader
        return leader['name'] if leader else None

    @property
    def timeline(self):
        leader = self.leader
        return leader.get('timeline') if leader else None

    @property
    def replicas(self):
        return [m for m in self.members if not m['is_leader']]

    @property
    def names(self):
        return sorted(m['name'] for m in self.members)

    def member(self, name):
        for m in self.members:
            if m['name'] == name:
                return m
        return None

    @property
    def synchronous(self):
        return any(m['role'] in SYNC_ROLES for m in self.members)

    def health(self, max_lag_bytes):
        return compute_health(self, max_lag_bytes)

    def replication(self):
        """Short per-replica replication summary."""
        return [dict(name=m['name'], state=m['state'], lag=m['lag'], timeline=m['timeline'],
                     sync=(m['role'] in SYNC_ROLES))
                for m in self.replicas]


def fetch_cluster(client):
    raw = client.cluster()
    return ClusterState(raw, client.last_url)


def compute_health(state, max_lag_bytes):
    """Apply the explicit health rules; return ``(healthy, reasons)``.

    Rules:
      1. exactly one member holds the leader role;
      2. the leader is running;
      3. every other member is a replica whose state is ``running`` (Patroni 3.0) or
         ``streaming`` (Patroni >= 3.0.4 / 4.x);
      4. every replica reports a known lag in bytes;
      5. every replica lag is at most ``max_lag_bytes``;
      6. every replica that reports a timeline is on the leader's timeline.
    """
    reasons = []
    leaders = state.leaders
    if not leaders:
        reasons.append('no leader: no member holds the leader lock')
    elif len(leaders) > 1:
        reasons.append('more than one leader: %s' % ', '.join(sorted(m['name'] for m in leaders)))
    leader = state.leader
    if leader and leader['state'] != 'running':
        reasons.append('leader %s is %s, not running' % (leader['name'], leader['state']))
    if not state.members:
        reasons.append('cluster has no members')
    for m in state.replicas:
        if not m['up']:
            reasons.append('replica %s is %s, not running/streaming' % (m['name'], m['state']))
            continue
        if m['lag'] is None:
            reasons.append('replica %s has unknown lag (%r)' % (m['name'], m['lag_raw']))
            continue
        if max_lag_bytes is not None and m['lag'] > max_lag_bytes:
            reasons.append('replica %s lags %d bytes (more than max_lag_bytes=%d)' % (m['name'], m['lag'], max_lag_bytes))
        if leader and isinstance(m['timeline'], int) and isinstance(leader['timeline'], int) \
                and m['timeline'] != leader['timeline']:
            reasons.append('replica %s is on timeline %s, leader %s is on timeline %s'
                           % (m['name'], m['timeline'], leader['name'], leader['timeline']))
    return (not reasons), reasons


def candidate_problems(state, name, max_lag_bytes, synchronous=None, exclude=None):
    """Return a list of reasons why ``name`` cannot take over; empty when it can.

    ``exclude`` lists members that must not take over (the member a maintenance or a rolling
    restart takes out): this is the one candidate rule of the collection, the modules and the
    operations role's flows all ask it.
    """
    m = state.member(name)
    if m is None:
        return ['candidate %s is not a member of the cluster; valid members: %s' % (name, ', '.join(state.names))]
    problems = []
    if m['is_leader']:
        problems.append('%s is already the leader' % name)
        return problems
    if synchronous is None:
        synchronous = state.synchronous
    if name in (exclude or ()):
        problems.append('candidate %s is excluded' % name)
    if m['nofailover']:
        problems.append('candidate %s has the nofailover tag' % name)
    if not m['up']:
        problems.append('candidate %s is %s, not running/streaming' % (name, m['state']))
    if m['lag'] is None:
        problems.append('candidate %s has unknown lag (%r)' % (name, m['lag_raw']))
    elif max_lag_bytes is not None and m['lag'] > max_lag_bytes:
        problems.append('candidate %s lags %d bytes, more than max_lag_bytes=%d' % (name, m['lag'], max_lag_bytes))
    if synchronous and m['role'] not in SYNC_ROLES:
        problems.append('synchronous mode is on and candidate %s is neither a sync_standby nor a quorum_standby'
                        % name)
    return problems


def choose_candidate(state, max_lag_bytes, synchronous=None, exclude=None):
    """Pick the best replica: healthy, no nofailover tag, not in ``exclude``, least lag (sync standbys
    only in sync mode); ties go to the first name in sort order, so the choice is repeatable.

    Returns ``(name or None, {member: [reasons it was rejected]})``.
    """
    rejected = {}
    eligible = []
    for m in state.replicas:
        problems = candidate_problems(state, m['name'], max_lag_bytes, synchronous, exclude)
        if problems:
            rejected[m['name']] = problems
        else:
            eligible.append(m)
    if not eligible:
        return None, rejected
    eligible.sort(key=lambda m: (m['lag'], m['name']))
    return eligible[0]['name'], rejected


def is_synchronous_mode(client, state):
    """True when Patroni's dynamic configuration enables synchronous mode (or a sync standby exists)."""
    if state.synchronous:
        return True
    try:
        cfg = client.config()
    except PatroniError:
        return False
    value = cfg.get('synchronous_mode')
    return value is True or (isinstance(value, str) and value.lower() in ('on', 'true', 'quorum'))


# -- waiting ---------------------------------------------------------------------------------
def wait_for(client, check, timeout, interval=None):
    """Poll ``GET /cluster`` until ``check(state)`` returns ``(True, detail)`` or ``timeout`` expires.

    Returns ``(done, state, detail, elapsed)``; transient errors while polling are kept in detail.
    """
    start = time.monotonic()
    state = None
    detail = 'no cluster state received yet'
    while True:
        try:
            state = fetch_cluster(client)
            done, detail = check(state)
            if done:
                return True, state, detail, time.monotonic() - start
        except PatroniError as e:
            detail = 'last error: %s' % e
        elapsed = time.monotonic() - start
        if elapsed >= timeout:
            return False, state, detail, elapsed
        time.sleep(min(interval or POLL_INTERVAL, max(0.0, timeout - elapsed)) or 0.01)


def takeover_check(old_leader, new_leader=None, timeline_before=None, require_old_leader=True):
    """Build a check for :func:`wait_for` verifying a switchover/failover outcome.

    Done when the leader is ``new_leader`` (or any member other than ``old_leader``), running,
    on a timeline after ``timeline_before``, and - with ``require_old_leader`` - the old leader
    is back as a running/streaming replica on the new timeline.
    """
    def check(state):
        leader = state.leader
        if leader is None:
            return False, 'no single leader yet (leaders: %s)' % ', '.join(m['name'] for m in state.leaders)
        if leader['name'] == old_leader or (new_leader and leader['name'] != new_leader):
            return False, 'leader is still %s' % leader['name']
        if leader['state'] != 'running':
            return False, 'new leader %s is %s' % (leader['name'], leader['state'])
        tl = leader.get('timeline')
        if timeline_before is not None and isinstance(tl, int) and tl <= timeline_before:
            return False, 'new leader %s still on timeline %s' % (leader['name'], tl)
        if require_old_leader and old_leader:
            old = state.member(old_leader)
            if old is None:
                return False, 'old leader %s is not (yet) a member' % old_leader
            if old['is_leader'] or not old['up']:
                return False, 'old leader %s is %s (%s)' % (old_leader, old['state'], old['role'])
            if isinstance(tl, int) and isinstance(old.get('timeline'), int) and old['timeline'] != tl:
                return False, 'old leader %s is on timeline %s, new timeline is %s' % (old_leader, old['timeline'], tl)
        return True, 'leader %s running on timeline %s' % (leader['name'], tl)
    return check


def promoted_check(candidate, timeline_before=None):
    """Build a check of a candidate's own GET /patroni answer: done once its PostgreSQL is out of
    recovery (Patroni's REST reads pg_is_in_recovery(), so this is the database itself, not the
    member key the candidate writes to the DCS at its next HA cycle, up to a second later) and
    running on a timeline after ``timeline_before``. Patroni promotes only after taking the
    leader lock, so a primary candidate is the leader."""
    def check(status):
        role, state = normalize_role(status.get('role')), (status.get('state') or '').lower()
        tl = status.get('timeline')
        if role != 'leader' or state != 'running':
            return False, 'candidate %s is %s (%s)' % (candidate, state or 'unknown', role)
        if timeline_before is not None and isinstance(tl, int) and tl <= timeline_before:
            return False, 'candidate %s still on timeline %s' % (candidate, tl)
        return True, 'candidate %s running as primary on timeline %s' % (candidate, tl)
    return check


def member_summary(state):
    return dict((m['name'], '%s/%s' % (m['role'], m['state'])) for m in state.members) if state else {}


def read_cluster_or_fail(module, result):
    """Connect and read GET /cluster for a module; fail the module with ``result`` when impossible."""
    try:
        client = PatroniClient.from_module(module)
        return client, fetch_cluster(client)
    except PatroniError as e:
        module.fail_json(msg='cannot read the Patroni cluster state: %s' % e, **result)


def verify_takeover_and_exit(module, client, result, action, old_leader, candidate, timeline_before,
                             require_old_leader, start, status, reply):
    """Verify a switchover/failover from the cluster's state (never from the HTTP status alone),
    then exit the module with ``result`` or fail it saying what was seen."""
    check = takeover_check(old_leader, candidate, timeline_before, require_old_leader=require_old_leader)
    done, new_state, detail, dummy = wait_for(client, check, module.params['wait_timeout'])
    result['elapsed'] = round(time.monotonic() - start, 3)
    if new_state is not None:
        result.update(members=new_state.members, timeline_after=new_state.timeline, new_leader=new_state.leader_name)
    if not done:
        module.fail_json(msg='%s to %s not verified within %ss: %s (Patroni answered %s: %s; members: %s)'
                             % (action, candidate, module.params['wait_timeout'], detail, status, reply,
                                member_summary(new_state)), **result)
    result['msg'] = reply
    module.exit_json(**result)
