# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make bench`: measured write outages of the lab cluster under faults, per timing profile.

For each trial (--trials N rounds; in each round every variant in turn, so variants alternate)
the variant (timing profile and synchronous_mode) is applied (--apply-cmd), then for each case
(crash, graceful, switchover; cut-replica: the link between the leader and a replica that
confirms commits cut both ways for --cut-hold s; freeze-short / freeze-long: the leader's
container frozen with docker pause for ttl/2 or ttl + 10 s; balancer-kill: the balancer holding
the virtual IP killed, then started again) the write probe (bench/probe.py) writes every 50 ms
through PgBouncer (port 6432, db app) at the balancers' virtual IP (keepalived; lb1 itself when
the lab has none) while the fault happens, until the old leader (or the cut replica, or the
killed balancer) is back. Per trial: longest write gap,
failed attempts, acknowledged and lost (verify) writes. Also pgbench through PgBouncer vs
directly to PostgreSQL with -C, and optionally the cold/warm site.yml converge times.

Writes bench/results/<UTC stamp>.json and .png; raw probe logs stay in .cache/bench/<stamp>/.
See bench/README.md. Exit status: 0 fine, 1 a lost acknowledged write, 2 a trial or the tool
failed. Ctrl-C leaves the lab running and restarts what the bench stopped.
"""

import argparse
import glob
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time

import requests
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import probe  # noqa: E402

CASES = ('crash', 'graceful', 'switchover', 'cut-replica', 'freeze-short', 'freeze-long', 'balancer-kill')
# Faults after which the leader must still lead (it kept its majority, or the fault was not on a
# database host at all); the others expect a new one.
NO_FAILOVER_CASES = ('cut-replica', 'freeze-short', 'balancer-kill')
# --short (the Molecule stage that keeps the bench from rotting): every code path but the long freeze.
SHORT_CASES = ('crash', 'graceful', 'switchover', 'cut-replica', 'freeze-short')
# A variant is PROFILE or PROFILE/MODE: the timing profile and Patroni's synchronous_mode
# (quorum by default), e.g. fast/quorum,fast/on.
DEFAULT_MODE = 'quorum'
DEFAULT_APPLY = ('ansible-playbook -i {inventory} site.yml -e pgha_timing_profile={profile} '
                 '-e patroni_synchronous_mode={mode}')
PLAYBOOK_SWITCHOVER = 'ansible-playbook -i {inventory} playbooks/switchover.yml -e pgha_switchover_candidate={candidate}'
REPLICA_ROLES = ('replica', 'sync_standby', 'quorum_standby')
REPLICA_STATES = ('running', 'streaming')  # Patroni 3.0.2 says running, 4.x streaming
# Lab hosts: the bench needs these ...
LAB_HOSTS = ('pg1', 'pg2', 'pg3', 'lb1')
# ... and uses these when the lab has them (a second balancer, sharing the virtual IP with lb1).
OPTIONAL_LAB_HOSTS = ('lb2',)
BALANCERS = ('lb1', 'lb2')
LAB_INTERFACE = 'eth0'  # the lab network's interface in every container (carries the virtual IP)


class BenchError(Exception):
    pass


def fill(template, **values):
    """Replace {name} for the given names only (other braces, e.g. JSON, stay as they are)."""
    return re.sub(r'\{(\w+)\}', lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0),
                  template)


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


def sh(cmd, timeout, check=True, capture=True, env=None, cwd=REPO, out=None):
    """Run a command (list) with a hard timeout."""
    try:
        if out:
            with open(out, 'a') as fh:
                res = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False,
                                     env=env, cwd=cwd)
        else:
            res = subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout, env=env, cwd=cwd,
                                 check=False)
    except subprocess.TimeoutExpired:
        raise BenchError('timed out after %ss: %s' % (timeout, ' '.join(cmd)))
    if check and res.returncode != 0:
        detail = (res.stderr or res.stdout or '').strip()[-800:] if capture and not out else 'see %s' % out
        raise BenchError('failed (rc %d): %s\n%s' % (res.returncode, ' '.join(cmd), detail))
    return res


def find_phases(node):
    """The first ``phases`` dict (pgha_switchover's result) anywhere in a JSON callback's output."""
    if isinstance(node, dict):
        if isinstance(node.get('phases'), dict) and 'stall_s' in node['phases']:
            return node['phases']
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = find_phases(item)
            if found:
                return found
    return None


def run_switchover_cmd(cmd, timeout, out):
    """Run a switchover command; an ansible-playbook one with the JSON stdout callback, so that the
    module's phase breakdown (pause, Patroni, HAProxy, resume, stall) can be read from its result.
    Returns (CompletedProcess, phases or None); stdout goes to out + '.json', stderr to out."""
    env = dict(os.environ)
    playbook = os.path.basename(cmd[0]) == 'ansible-playbook'
    if playbook:
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.posix.json'
    try:
        with open(out + '.json', 'w') as so, open(out, 'a') as se:
            res = subprocess.run(cmd, stdout=so, stderr=se, text=True, timeout=timeout, check=False, env=env,
                                 cwd=REPO)
    except subprocess.TimeoutExpired:
        raise BenchError('timed out after %ss: %s' % (timeout, ' '.join(cmd)))
    return res, (read_phases(out + '.json') if playbook else None)


def read_phases(path):
    """The phases in a JSON callback's output file, or None. The JSON document comes first; other
    callbacks (ansible.posix.timer) may print after it."""
    try:
        with open(path) as fh:
            text = fh.read()
        return find_phases(json.JSONDecoder().raw_decode(text, text.index('{'))[0])
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------------------------
# inventory variables

def load_group_vars(inventory):
    merged = {}
    for path in sorted(glob.glob(os.path.join(REPO, inventory, 'group_vars', '*.yml'))) + \
            sorted(glob.glob(os.path.join(REPO, inventory, 'group_vars', '*', '*.yml'))):
        try:
            with open(path) as fh:
                data = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            merged.update(data)
    return merged


def resolve_var(gv, name, default, inventory, host='lb1'):
    """A group_vars value; templated values are resolved by ansible (bounded)."""
    val = gv.get(name, default)
    if isinstance(val, str) and '{{' in val:
        env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_STDOUT_CALLBACK='json')
        res = sh(['ansible', '-i', inventory, host, '-m', 'ansible.builtin.debug', '-a', 'var=%s' % name],
                 timeout=120, env=env, check=False)
        try:
            val = json.loads(res.stdout)['plays'][0]['tasks'][0]['hosts'][host][name]
        except (ValueError, KeyError, IndexError):
            raise BenchError('cannot resolve %s through ansible: %s' % (name, res.stdout[-400:]))
    return val


def lab_virtual_ip(value, lb1_ip):
    """The balancers' virtual IP from the inventory's keepalived_virtual_ip, None when it has none.

    A literal address is taken as it is. A template (the lab's is "{{ ansible_default_ipv4.network
    .split('.')[:3] | join('.') }}.20", resolved by Ansible from each balancer's facts, which the
    bench does not gather) is rendered with lb1's address and its /24 network (the lab's subnet is
    a /24) as ansible_default_ipv4; if that fails, the lab's convention: host .20 of lb1's /24."""
    if not value:
        return None
    value = str(value).strip()
    if '{{' not in value:
        return value
    prefix = '.'.join(lb1_ip.split('.')[:3])
    try:
        import jinja2  # comes with ansible-core
        facts = {'address': lb1_ip, 'network': prefix + '.0', 'netmask': '255.255.255.0', 'prefix': '24'}
        out = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(value).render(
            ansible_default_ipv4=facts).strip()
        if re.match(r'^\d{1,3}(\.\d{1,3}){3}$', out):
            return out
    except Exception:  # an Ansible-only filter or variable: fall back to the convention
        pass
    return prefix + '.20'


def ipv4_addresses(ip_output):
    """The IPv4 addresses in the output of `ip -4 -o addr show` (one line per address)."""
    return re.findall(r'\binet (\d+\.\d+\.\d+\.\d+)/\d+', ip_output or '')


def keepalived_state(data, instance):
    """The state (MASTER, BACKUP, FAULT, ...) of VRRP instance `instance` in keepalived's dump
    /tmp/keepalived.data (written on SIGUSR1), None when the instance is not in it. The instance's
    block starts with " VRRP Instance = NAME" and names its state in "   State = X" (not
    "Wantstate"); a later instance or section ("------< ... >------") ends it."""
    inside = False
    for line in (data or '').splitlines():
        m = re.match(r'\s*VRRP Instance = (\S+)\s*$', line)
        if m:
            inside = m.group(1) == instance
            continue
        if line.startswith('------<'):
            inside = False
            continue
        if inside:
            m = re.match(r'\s*State = (\S+)', line)
            if m:
                return m.group(1)
    return None


# ----------------------------------------------------------------------------------------------
# the lab

class Lab:
    def __init__(self, name, inventory, rest_auth=None, resolve=True, ca_file=None):
        self.name = name
        self.inventory = inventory
        self.rest_auth = rest_auth
        # TLS on (the default): the REST API is HTTPS, verified against the cluster CA.
        self.scheme = 'https' if ca_file else 'http'
        self.verify = ca_file or True
        self.ips = {}
        if resolve:  # not before --converge has (re)created the lab
            self.refresh_ips()

    def container(self, host):
        # The lab prefixes container names (pgha-lab-pg1); Molecule's containers are the bare
        # host names, selected with --lab-name ''.
        return '%s-%s' % (self.name, host) if self.name else host

    def refresh_ips(self):
        for host in LAB_HOSTS + OPTIONAL_LAB_HOSTS:
            res = sh(['docker', 'inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}',
                      self.container(host)], timeout=20, check=False)
            ip = res.stdout.split()[0] if res.returncode == 0 and res.stdout.split() else None
            if ip:
                self.ips[host] = ip
        missing = [h for h in LAB_HOSTS if h not in self.ips]
        if missing:
            raise BenchError('lab %s: no container/address for %s (is the lab up? make lab)' % (self.name, missing))

    def balancers(self):
        """lb1, and lb2 when the lab has it."""
        return [h for h in BALANCERS if h in self.ips]

    def vip_holders(self, vip, hosts=None):
        """The balancers (of hosts, default all) whose lab interface carries vip. A balancer that
        does not answer (killed, stopped) holds nothing."""
        out = []
        for host in hosts or self.balancers():
            res = self.exec(host, ['ip', '-4', '-o', 'addr', 'show', 'dev', LAB_INTERFACE], timeout=10, check=False)
            if res.returncode == 0 and vip in ipv4_addresses(res.stdout):
                out.append(host)
        return out

    def keepalived_state(self, host, instance):
        """keepalived's state of instance on host (None when unknown): SIGUSR1 makes keepalived
        dump its state to /tmp/keepalived.data (removed first, so that an old dump is not read)."""
        script = ('rm -f /tmp/keepalived.data && systemctl kill --signal=USR1 --kill-whom=main keepalived '
                  '&& sleep 0.3 && cat /tmp/keepalived.data')
        res = self.exec(host, ['sh', '-c', script], timeout=15, check=False)
        return keepalived_state(res.stdout, instance) if res.returncode == 0 else None

    def wait_systemd(self, host, timeout):
        """Bounded: systemd in host's container has finished booting (running, or degraded: a
        unit failed, which the next waits judge). Retried while systemd is not up to answer."""
        t0 = time.time()
        state = None
        while time.time() - t0 < timeout:
            left = timeout - (time.time() - t0)
            try:
                res = self.exec(host, ['systemctl', 'is-system-running', '--wait'], timeout=max(5, min(left, 60)),
                                check=False)
                words = (res.stdout or '').split()
                state = words[-1] if words else (res.stderr or '').strip()[:100]
            except BenchError as exc:  # the exec timed out
                state = str(exc)
            if state in ('running', 'degraded'):
                return state
            time.sleep(1)
        raise BenchError('timed out after %ss waiting for systemd on %s; last answer: %s' % (timeout, host, state))

    def host_of_ip(self, ip):
        for h, a in self.ips.items():
            if a == ip:
                return h
        return None

    def cluster(self, exclude=()):
        """GET /cluster from the first database node that answers (2 s per node)."""
        last = None
        for host in ('pg1', 'pg2', 'pg3'):
            if host in exclude:
                continue
            try:
                r = requests.get('%s://%s:8008/cluster' % (self.scheme, self.ips[host]), timeout=2,
                                 verify=self.verify)
                r.raise_for_status()
                data = r.json()
                for m in data.get('members', []):
                    m['lab_host'] = self.host_of_ip(m.get('host')) or m.get('name')
                return data
            except (requests.RequestException, ValueError) as exc:
                last = exc
        raise BenchError('no Patroni REST API answers: %s' % last)

    def etcd_leader(self, port=2379):
        """The lab host whose etcd member leads the etcd cluster (None when unknown).

        A crash of that host costs an etcd election first, after which the new etcd leader renews
        every lease to its full TTL: the leader key then expires later than ttl after the crash."""
        # etcdctl inside a database container, with that host's client certificate when TLS is on
        # (etcd then refuses clients without one).
        tls = ['--cacert=/etc/pgha/tls/ca.crt', '--cert=/etc/pgha/tls/host.crt', '--key=/etc/pgha/tls/host.key'] \
            if self.scheme == 'https' else []
        ids, leader = {}, None
        for host in ('pg1', 'pg2', 'pg3'):
            if host not in self.ips:
                continue
            res = sh(['docker', 'exec', '-e', 'ETCDCTL_API=3', self.container(host), 'etcdctl',
                      '--endpoints=%s://%s:%d' % (self.scheme, self.ips[host], port), '--command-timeout=2s']
                     + tls + ['endpoint', 'status', '-w', 'json'], timeout=10, check=False)
            try:
                status = json.loads(res.stdout)[0]['Status']
            except (ValueError, KeyError, IndexError, TypeError):
                continue
            ids[str(status['header']['member_id'])] = host
            if status.get('leader'):
                leader = str(status['leader'])
        return ids.get(leader)

    def config(self):
        for host in ('pg1', 'pg2', 'pg3'):
            try:
                r = requests.get('%s://%s:8008/config' % (self.scheme, self.ips[host]), timeout=2,
                                 verify=self.verify)
                if r.ok:
                    c = r.json()
                    return {k: c.get(k) for k in ('ttl', 'loop_wait', 'retry_timeout', 'synchronous_mode',
                                                  'synchronous_mode_strict', 'failsafe_mode',
                                                  'maximum_lag_on_failover')}
            except (requests.RequestException, ValueError):
                continue
        return None

    @staticmethod
    def leaders(cl):
        return [m for m in cl.get('members', []) if m.get('role') in ('leader', 'master', 'standby_leader')
                and m.get('state') in ('running', 'streaming', None)]

    @staticmethod
    def is_streaming_replica(m):
        return m.get('role') in REPLICA_ROLES and m.get('state') in REPLICA_STATES and \
            m.get('lag') not in (None, 'unknown')

    def healthy(self, cl, members=3):
        ms = cl.get('members', [])
        return len(ms) == members and len(self.leaders(cl)) == 1 and \
            sum(1 for m in ms if self.is_streaming_replica(m)) == members - 1

    def wait(self, what, pred, timeout, interval=0.5, exclude=()):
        """Poll /cluster until pred(cluster) is truthy; return (value, cluster, seconds)."""
        t0 = time.time()
        last = None
        while time.time() - t0 < timeout:
            try:
                cl = self.cluster(exclude=exclude)
                last = cl
                v = pred(cl)
                if v:
                    return v, cl, time.time() - t0
            except BenchError as exc:
                last = str(exc)
            time.sleep(interval)
        raise BenchError('timed out after %ss waiting for %s; last cluster state: %s'
                         % (timeout, what, json.dumps(last)[:1500]))

    def wait_healthy(self, timeout):
        return self.wait('a healthy cluster (1 leader, 2 streaming replicas)', self.healthy, timeout)[1]

    def docker(self, *args, timeout=60, check=True):
        return sh(['docker'] + list(args), timeout=timeout, check=check)

    def exec(self, host, cmd, timeout=60, check=True, env=None):
        args = ['docker', 'exec']
        for k, v in (env or {}).items():
            args += ['-e', '%s=%s' % (k, v)]
        return sh(args + [self.container(host)] + cmd, timeout=timeout, check=check)


# ----------------------------------------------------------------------------------------------
# probe handling

class ProbeProc:
    def __init__(self, dsn, logfile, duration, interval=0.05, attempt_timeout=15.0, connect_mode='async'):
        self.logfile = logfile
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'probe.py'), 'run', '--dsn', dsn, '--interval', str(interval),
             '--duration', str(duration), '--log', logfile, '--attempt-timeout', str(attempt_timeout),
             '--connect-mode', connect_mode],
            stdout=open(logfile + '.out', 'w'), stderr=subprocess.STDOUT)

    def wait_acks(self, n, timeout):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if probe.count_acks(self.logfile) >= n:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        recs = probe.read_jsonl(self.logfile)
        raise BenchError('the probe could not write through PgBouncer (%d acknowledged in %ss); last record: %s'
                         % (probe.count_acks(self.logfile), timeout, json.dumps(recs[-1]) if recs else 'none'))

    def acked_after(self, t):
        """First acknowledgement time after t (None if none yet)."""
        for r in probe.read_jsonl(self.logfile):
            if r.get('ok') and r.get('t_end', 0) > t:
                return r['t_end']
        return None

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


# ----------------------------------------------------------------------------------------------
# the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.inventory = args.inventory
        self.applied_variant = None  # the variant this run applied last (none applied yet)
        gv = load_group_vars(self.inventory)
        user = resolve_var(gv, 'pgha_app_user', 'app', self.inventory)
        db = resolve_var(gv, 'pgha_app_database', 'app', self.inventory)
        pw = args.app_password or os.environ.get('PGHA_APP_PASSWORD') or \
            resolve_var(gv, 'pgha_app_password', None, self.inventory)
        if not pw:
            raise BenchError('no application password: set pgha_app_password in %s/group_vars or '
                             '--app-password / PGHA_APP_PASSWORD' % self.inventory)
        rest_user = resolve_var(gv, 'patroni_restapi_username', '', self.inventory)
        rest_pw = resolve_var(gv, 'patroni_restapi_password', '', self.inventory)
        self.app = {'user': user, 'db': db, 'password': pw}
        # The balancers' virtual IP as the inventory names it (often a template; see virtual_ip)
        # and keepalived's VRRP instance (balancer-kill reads its state).
        self.vip_setting = gv.get('keepalived_virtual_ip')
        instance = gv.get('keepalived_instance_name', 'pgha')
        self.keepalived_instance = instance if isinstance(instance, str) and '{{' not in instance else 'pgha'
        self._vip = None
        self._vip_known = False
        self.events = None  # the current trial's events file (mark)
        # libpq reads the password from the environment: it never appears in a command line (ps)
        # of the probe or pgbench, which inherit it.
        os.environ['PGPASSWORD'] = pw
        tls = str(resolve_var(gv, 'pgha_tls', True, self.inventory)).lower() not in ('false', 'no', '0')
        ca_file = None
        if tls:
            scope = resolve_var(gv, 'patroni_scope', 'pgha', self.inventory)
            ca_file = args.ca_file or os.path.expanduser('~/.pgha/pki/%s/ca.crt' % scope)
            if not os.path.isfile(ca_file):
                raise BenchError('TLS is on but the cluster CA %s is missing: run site.yml from this machine '
                                 'or pass --ca-file' % ca_file)
        self.lab = Lab(args.lab_name, self.inventory, (rest_user, rest_pw) if rest_pw else None,
                       resolve=not args.converge, ca_file=ca_file)
        self.stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
        self.workdir = os.path.join(REPO, '.cache', 'bench', self.stamp)
        os.makedirs(self.workdir, exist_ok=True)
        self.restores = []  # (description, callable): undone faults, run on any exit
        self.probe = None
        self.results = {
            'stamp': self.stamp, 'lab': args.lab_name, 'mode': 'short' if args.short else 'full',
            'profiles': args.profiles, 'cases': args.cases, 'trials_per_profile': args.trials,
            'apply_cmd': None if args.no_apply else args.apply_cmd,
            'switchover_cmd': args.switchover_cmd, 'probe_interval': args.interval,
            'workdir': os.path.relpath(self.workdir, REPO), 'trials': [], 'applies': [],
        }
        self.deadline = time.time() + args.max_time

    def virtual_ip(self):
        """The balancers' virtual IP, None when the lab has none (--vip: auto, none or an address).

        auto: keepalived_virtual_ip of the inventory (see lab_virtual_ip), provided a balancer
        holds it now; a lab whose keepalived is not deployed yet keeps the bench on lb1."""
        if not self._vip_known:
            a = self.args
            if a.vip == 'none':
                vip = None
            elif a.vip != 'auto':
                vip = a.vip
            else:
                vip = lab_virtual_ip(self.vip_setting, self.lab.ips['lb1'])
                if vip and not self.lab.vip_holders(vip):
                    log('no balancer holds the virtual IP %s of the inventory (keepalived not deployed?): '
                        'the probe writes through lb1' % vip)
                    vip = None
            self._vip, self._vip_known = vip, True
        return self._vip

    @property
    def dsn(self):
        """The probe's write DSN: PgBouncer, database app (the leader via HAProxy), at the
        balancers' virtual IP (whichever balancer holds it), or at lb1 when there is none."""
        if self.args.dsn:
            return self.args.dsn
        return "host=%s port=%d dbname=%s user=%s connect_timeout=2" % (
            self.virtual_ip() or self.lab.ips['lb1'], self.args.pgbouncer_port, self.app['db'], self.app['user'])

    def mark(self, name, phase):
        """An event in the current trial's events file (a window of the probe report)."""
        if self.events:
            probe.append_jsonl(self.events, {'t': time.time(), 'name': name, 'phase': phase})

    # -- restore --------------------------------------------------------------------------------
    def push_restore(self, desc, fn):
        self.restores.append((desc, fn))

    def run_restores(self):
        while self.restores:
            desc, fn = self.restores.pop()
            log('restoring: %s' % desc)
            try:
                fn()
            except Exception as exc:  # keep restoring the others
                log('restore failed (%s): %s' % (desc, exc))

    def pop_restore(self, desc):
        self.restores = [r for r in self.restores if r[0] != desc]

    # -- profiles -------------------------------------------------------------------------------
    def apply_profile(self, profile, idx):
        if self.args.no_apply:
            return None
        # A round with one variant applies it once: site.yml again would change nothing but cost
        # minutes per trial.
        if self.applied_variant == profile:
            log('profile %s is applied already' % profile)
            return None
        timing, mode = split_variant(profile)
        cmd = shlex.split(fill(self.args.apply_cmd, profile=timing, mode=mode, lab=self.args.lab_name,
                               inventory=self.inventory))
        out = os.path.join(self.workdir, 'apply-%s-%d.log' % (profile.replace('/', '-'), idx))
        log('applying profile %s: %s' % (profile, ' '.join(cmd)))
        t0 = time.time()
        res = sh(cmd, timeout=self.args.apply_timeout, check=False, out=out)
        took = time.time() - t0
        rec = {'profile': profile, 'round': idx, 'rc': res.returncode, 'seconds': round(took, 1),
               'log': os.path.relpath(out, REPO)}
        self.results['applies'].append(rec)
        if res.returncode != 0:
            raise BenchError('applying profile %s failed (rc %d), see %s' % (profile, res.returncode, out))
        self.applied_variant = profile
        self.lab.wait_healthy(self.args.settle_timeout)
        rec['patroni_config'] = self.lab.config()
        log('profile %s applied in %.0fs; Patroni config %s' % (profile, took, rec['patroni_config']))
        return rec

    # -- faults ---------------------------------------------------------------------------------
    def new_leader(self, old):
        return lambda cl: next((m for m in self.lab.leaders(cl) if m['name'] != old['name']), None)

    def leader_named(self, name):
        return lambda cl: next((m for m in self.lab.leaders(cl) if m['name'] == name), None)

    def rejoined(self, old):
        def pred(cl):
            m = next((m for m in cl.get('members', []) if m['name'] == old['name']), None)
            return m if m and self.lab.is_streaming_replica(m) and self.lab.healthy(cl) else None
        return pred

    def cut(self, a_host, b_host):
        """Drop every packet between two lab hosts, both ways (iptables, the host's DOCKER-USER
        chain); returns the heal function, also registered as a restore."""
        ips = (self.lab.ips[a_host], self.lab.ips[b_host])
        rules = [['-s', ips[0], '-d', ips[1]], ['-s', ips[1], '-d', ips[0]]]
        tag = ['-m', 'comment', '--comment', 'pgha-bench-%s' % self.args.lab_name, '-j', 'DROP']

        def heal():
            for r in rules:
                sh(['iptables', '-D', 'DOCKER-USER'] + r + tag, timeout=10, check=False)
        desc = 'heal the cut %s-%s' % (a_host, b_host)
        self.push_restore(desc, heal)
        for r in rules:
            sh(['iptables', '-I', 'DOCKER-USER'] + r + tag, timeout=10)
        return desc, heal

    def ttl(self):
        return int((self.lab.config() or {}).get('ttl') or 30)

    def wait_any_leader_and_writes(self, ts):
        """After a fault that may or may not move the leader (a cut link, a frozen host): whoever
        leads, and writes acknowledged again; bounded."""
        ts['recover_start'] = time.time()
        new = self.lab.wait('a leader', lambda c: next(iter(self.lab.leaders(c)), None),
                            self.args.failover_timeout)[0]
        ts['new_leader'] = time.time()
        self.wait_writes(ts)
        ts['new_leader_name'] = new['name']

    def fault(self, case, leader, cl, ts):
        """Do the fault of case on leader; fill ts with timestamps; bounded."""
        host = leader['lab_host']
        cont = self.lab.container(host)
        a = self.args
        if case == 'balancer-kill':
            self.balancer_kill(ts)
            # not a database fault: whoever leads now must be the leader from before (the trial
            # counts a change as an unexpected failover)
            ts['new_leader_name'] = self.lab.wait('a leader', lambda c: next(iter(self.lab.leaders(c)), None),
                                                  a.failover_timeout)[0]['name']
            return
        if case == 'cut-replica':
            # One link: the leader and a replica that confirms commits (the synchronous standby
            # with synchronous_mode on, a quorum member with quorum) cannot reach each other.
            other = self.candidate(self.sync_settled_cluster(), leader)
            ts['cut_member'] = other['name']
            desc, heal = self.cut(host, other['lab_host'])
            ts['fault_done'] = time.time()
            time.sleep(a.cut_hold)
            heal()
            self.pop_restore(desc)
            self.wait_any_leader_and_writes(ts)
            self.lab.wait('%s back as a streaming replica' % other['name'], self.rejoined(other), a.rejoin_timeout)
            ts['rejoined'] = time.time()
            return
        if case in ('freeze-short', 'freeze-long'):
            # docker pause: every process of the leader's host frozen (a stalled VM), for half of
            # ttl or for ttl + 10 s; its key lives out ttl, the kernel still answers TCP handshakes.
            hold = self.ttl() // 2 if case == 'freeze-short' else self.ttl() + 10
            ts['hold'] = hold
            desc = 'docker unpause %s' % cont
            self.push_restore(desc, lambda: self.lab.docker('unpause', cont, timeout=30, check=False))
            self.lab.docker('pause', cont, timeout=30)
            ts['fault_done'] = time.time()
            time.sleep(hold)
            self.lab.docker('unpause', cont, timeout=30)
            self.pop_restore(desc)
            self.wait_any_leader_and_writes(ts)
            self.lab.wait('%s back as a streaming replica or leader' % leader['name'],
                          lambda c: c if self.lab.healthy(c) else None, a.rejoin_timeout)
            ts['rejoined'] = time.time()
            return
        if case == 'crash':
            desc = 'docker start %s' % cont
            self.push_restore(desc, lambda: self.lab.docker('start', cont, timeout=60))
            self.lab.docker('kill', cont, timeout=30)
            ts['fault_done'] = time.time()
            new = self.lab.wait('a new leader', self.new_leader(leader), a.failover_timeout,
                                exclude=(host,))[0]
            ts['new_leader'] = time.time()
            self.wait_writes(ts)
            self.lab.docker('start', cont, timeout=60)
            self.pop_restore(desc)
            ts['recover_start'] = time.time()
        elif case == 'graceful':
            desc = 'systemctl start patroni on %s' % cont
            self.push_restore(desc, lambda: self.lab.exec(host, ['systemctl', 'start', 'patroni'], timeout=60))
            self.lab.exec(host, ['systemctl', 'stop', 'patroni'], timeout=a.failover_timeout)
            ts['fault_done'] = time.time()
            new = self.lab.wait('a new leader', self.new_leader(leader), a.failover_timeout)[0]
            ts['new_leader'] = time.time()
            self.wait_writes(ts)
            self.lab.exec(host, ['systemctl', 'start', 'patroni'], timeout=60)
            self.pop_restore(desc)
            ts['recover_start'] = time.time()
        elif case == 'switchover':
            if a.switchover_cmd == 'rest':
                cand = self.rest_switchover(leader)
            else:
                cand = self.candidate(self.sync_settled_cluster(), leader)
                cmd = shlex.split(fill(a.switchover_cmd, leader=leader['name'], candidate=cand['name'],
                                       leader_host=leader['lab_host'], candidate_host=cand['lab_host'],
                                       leader_ip=self.lab.ips[leader['lab_host']],
                                       candidate_ip=self.lab.ips[cand['lab_host']], lab=a.lab_name,
                                       inventory=self.inventory))
                out = os.path.join(self.workdir, 'cmd-switchover-%d.log' % int(time.time()))
                t0 = time.time()
                res, phases = run_switchover_cmd(cmd, a.failover_timeout * 3, out)
                ts['info'] = {'playbook_s': round(time.time() - t0, 3)}
                if phases:
                    ts['info']['phases'] = phases
                if res.returncode != 0:
                    raise BenchError('switchover command failed (rc %d), see %s' % (res.returncode, out))
            ts['fault_done'] = time.time()
            new = self.lab.wait('%s as leader' % cand['name'], self.leader_named(cand['name']),
                                a.failover_timeout)[0]
            ts['new_leader'] = time.time()
            self.wait_writes(ts)
            ts['recover_start'] = time.time()
        else:
            raise BenchError('unknown case %s' % case)
        ts['new_leader_name'] = new['name']
        self.lab.wait('%s back as a streaming replica' % leader['name'], self.rejoined(leader), a.rejoin_timeout)
        ts['rejoined'] = time.time()

    @staticmethod
    def wait_for(what, fn, timeout, interval=0.5):
        """Poll fn() until it returns something truthy; bounded."""
        t0 = time.time()
        last = None
        while time.time() - t0 < timeout:
            try:
                val = fn()
                if val:
                    return val
            except BenchError as exc:
                last = exc
            time.sleep(interval)
        raise BenchError('timed out after %ss waiting for %s%s'
                         % (timeout, what, '; last error: %s' % last if last else ''))

    def balancer_kill(self, ts):
        """docker kill the balancer holding the virtual IP; the other takes it over and writes resume;
        docker start the killed one, and wait until it is a keepalived BACKUP again. The address must
        stay where it is (nopreempt). Fills ts, and ts['info'] with what the trial records."""
        a = self.args
        vip = self.virtual_ip()
        if not vip:
            raise BenchError('balancer-kill needs the balancers\' virtual IP (lb2 and keepalived deployed, or --vip)')
        if len(self.lab.balancers()) < 2:
            raise BenchError('balancer-kill needs two balancers; lab %s has %s'
                             % (self.args.lab_name, self.lab.balancers()))
        inst = self.keepalived_instance

        def settled():
            # exactly one holder, every other balancer a BACKUP ready to take over
            holders = self.lab.vip_holders(vip)
            if len(holders) != 1:
                return None
            others = [b for b in self.lab.balancers() if b != holders[0]]
            return holders[0] if others and all(self.lab.keepalived_state(b, inst) == 'BACKUP' for b in others) \
                else None
        victim = self.wait_for('one balancer holding %s and the other(s) BACKUP' % vip, settled, a.settle_timeout)
        others = [b for b in self.lab.balancers() if b != victim]
        info = ts['info'] = {'killed_balancer': victim}
        cont = self.lab.container(victim)
        desc = 'docker start %s' % cont
        self.push_restore(desc, lambda: self.lab.docker('start', cont, timeout=60))
        self.lab.docker('kill', cont, timeout=30)
        ts['fault_done'] = time.time()
        # VRRP: a backup takes over after 3 missed adverts + skew (about 1 s with advert_int 0.3)
        info['vip_taken_by'] = self.wait_for('%s on %s' % (vip, ' or '.join(others)),
                                             lambda: (self.lab.vip_holders(vip, others) or [None])[0],
                                             a.failover_timeout, interval=0.2)
        ts['vip_moved'] = time.time()
        self.wait_writes(ts)
        # the restart window: container start, boot, keepalived's health check passing (FAULT ->
        # BACKUP); a returning balancer that took the address back would cut the clients again
        self.mark('balancer-restart', 'start')
        ts['recover_start'] = time.time()
        self.lab.docker('start', cont, timeout=60)
        self.pop_restore(desc)
        info['systemd_state'] = self.lab.wait_systemd(victim, a.rejoin_timeout)
        ts['restarted'] = time.time()

        def vrrp_state():  # FAULT (and None: no dump yet) until its health check passes
            st = self.lab.keepalived_state(victim, inst)
            return st if st in ('BACKUP', 'MASTER') else None
        info['keepalived_state'] = self.wait_for('keepalived on %s in BACKUP or MASTER' % victim, vrrp_state,
                                                 a.rejoin_timeout, interval=1.0)
        ts['rejoined'] = time.time()
        # a preempting balancer takes the address at its first advert as BACKUP: give it some
        time.sleep(2.0)
        holders = self.lab.vip_holders(vip)
        info['vip_holder_after'] = ','.join(holders) or None
        info['vip_moved_back'] = victim in holders
        self.mark('balancer-restart', 'end')
        if info['keepalived_state'] != 'BACKUP' or holders != [info['vip_taken_by']]:
            raise BenchError('after the restart of %s: keepalived %s, %s held by %s (expected BACKUP, %s only)'
                             % (victim, info['keepalived_state'], vip, holders or 'none', info['vip_taken_by']))

    def sync_settled_cluster(self, timeout=30):
        """The cluster once Patroni has named a synchronous standby. After a leader change that takes
        up to loop_wait, and until then synchronous_mode lets no replica take over. A cluster that
        names none within the bound (synchronous_mode off) is returned as it is."""
        def has_sync(cl):
            return any(m.get('role') in ('sync_standby', 'quorum_standby') for m in cl.get('members', []))
        try:
            return self.lab.wait('a synchronous standby', lambda cl: cl if has_sync(cl) else None, timeout)[0]
        except BenchError:
            return self.lab.cluster()

    def candidate(self, cl, leader):
        """A streaming replica; the synchronous standby first (synchronous_mode only allows it)."""
        cands = [m for m in cl['members'] if m['name'] != leader['name'] and self.lab.is_streaming_replica(m)]
        cands.sort(key=lambda m: (m.get('role') not in ('sync_standby', 'quorum_standby'), m['name']))
        if not cands:
            raise BenchError('no streaming replica to switch over to')
        return cands[0]

    def rest_switchover(self, leader):
        """POST /switchover; the sync standby may change between our read and the POST (412):
        re-read and retry, bounded."""
        url = '%s://%s:8008/switchover' % (self.lab.scheme, self.lab.ips[leader['lab_host']])
        for attempt in range(5):
            cand = self.candidate(self.sync_settled_cluster(), leader)
            body = {'leader': leader['name'], 'candidate': cand['name']}
            try:
                r = requests.post(url, json=body, auth=self.lab.rest_auth, timeout=self.args.failover_timeout,
                                  verify=self.lab.verify)
            except requests.RequestException as exc:
                raise BenchError('POST %s: %s' % (url, exc))
            if r.status_code == 200:
                return cand
            if r.status_code not in (412, 503) or attempt == 4:
                raise BenchError('POST %s %s: %s %s' % (url, body, r.status_code, r.text.strip()[:300]))
            log('switchover refused (%s %s); retrying' % (r.status_code, r.text.strip()[:120]))
            time.sleep(2)

    def wait_writes(self, ts):
        """Bounded: the probe acknowledges a write again after the fault."""
        t0 = time.time()
        while time.time() - t0 < self.args.failover_timeout:
            t = self.probe.acked_after(max(ts['fault_done'], ts.get('new_leader', 0)))
            if t:
                ts['writes_resumed'] = t
                return
            time.sleep(0.25)
        raise BenchError('writes through PgBouncer did not resume within %ss after the new leader'
                         % self.args.failover_timeout)

    # -- one trial ------------------------------------------------------------------------------
    def trial(self, case, profile, idx, patroni_config):
        a = self.args
        name = '%s-%s-%d' % (case, profile.replace('/', '-'), idx)
        logfile = os.path.join(self.workdir, name + '.log')
        events = os.path.join(self.workdir, name + '.events')
        rec = {'case': case, 'profile': profile, 'trial': idx, 'log': os.path.relpath(logfile, REPO),
               'events': os.path.relpath(events, REPO), 'patroni_config': patroni_config, 'error': None}
        ts = {}
        self.events = events
        log('--- %s: %s, profile %s, trial %d' % (name, case, profile, idx))
        try:
            cl = self.lab.wait_healthy(a.settle_timeout)
            leader = self.lab.leaders(cl)[0]
            rec['old_leader'] = leader['name']
            rec['etcd_leader'] = self.lab.etcd_leader()
            self.probe = ProbeProc(self.dsn, logfile, a.probe_max, a.interval, a.attempt_timeout,
                                   a.probe_connect_mode)
            self.probe.wait_acks(20, 60)
            time.sleep(a.pre)
            probe.append_jsonl(events, {'t': time.time(), 'name': case, 'phase': 'start', 'note': leader['name']})
            ts['fault_start'] = time.time()
            self.fault(case, leader, cl, ts)
            time.sleep(a.post)
            probe.append_jsonl(events, {'t': time.time(), 'name': case, 'phase': 'end'})
            ts['fault_end'] = time.time()
            time.sleep(0.5)
        except BenchError as exc:
            rec['error'] = str(exc)
            log('TRIAL FAILED: %s' % exc)
        finally:
            if self.probe:
                self.probe.stop()
            self.run_restores()
        rec['new_leader'] = ts.pop('new_leader_name', None)
        rec['cut_member'] = ts.pop('cut_member', None)
        rec['hold_s'] = ts.pop('hold', None)
        rec.update(ts.pop('info', {}))
        rec['failover'] = None if rec['new_leader'] is None else rec['new_leader'] != rec.get('old_leader')
        if case in NO_FAILOVER_CASES and rec['failover']:
            rec['error'] = (rec['error'] or '') + ' unexpected failover: %s -> %s' % (rec.get('old_leader'),
                                                                                      rec['new_leader'])
        rec['timestamps'] = ts
        recs = probe.read_jsonl(logfile)
        rep = probe.analyze(recs, probe.read_jsonl(events))
        win = next((w for w in rep['windows'] if w['name'] == case), None)
        src = win or rep['overall']
        for k in ('attempts', 'acknowledged', 'failed', 'in_doubt', 'longest_gap', 'gap_from', 'gap_to',
                  'gap_open', 'longest_attempt', 'errors'):
            rec[k] = src.get(k)
        rec['overall_acknowledged'] = rep['overall']['acknowledged']
        rec['overall_failed'] = rep['overall']['failed']
        restart = next((w for w in rep['windows'] if w['name'] == 'balancer-restart'), None)
        if restart:  # balancer-kill: the killed balancer's return, apart from the takeover
            rec['restart_gap'] = restart['longest_gap']
            rec['restart_failed'] = restart['failed']
        for k in ('new_leader', 'vip_moved', 'writes_resumed', 'rejoined'):
            if k in ts and 'fault_start' in ts:
                rec['%s_after_s' % k] = round(ts[k] - ts['fault_start'], 3)
        # lost acknowledged writes, read from the leader through the write path
        try:
            if recs:
                self.lab.wait_healthy(a.settle_timeout)
                present = probe.fetch_present(self.dsn, rep['run_id'], wait=30)
                lost = probe.find_lost(recs, present)
                rec['lost'] = lost['lost']
                rec['lost_ids'] = lost['lost_ids']
                rec['in_doubt_present'] = lost['in_doubt_present']
        except (BenchError, SystemExit) as exc:
            rec['lost'] = None
            rec['error'] = (rec['error'] or '') + ' verify: %s' % exc
        log('%s: gap %s s%s, failed %s, acknowledged %s, lost %s, longest attempt %s s%s' % (
            name, _r(rec['longest_gap']), ' (open)' if rec.get('gap_open') else '', rec['failed'],
            rec['acknowledged'], rec.get('lost'), _r(rec['longest_attempt']),
            '; ERROR' if rec['error'] else ''))
        self.results['trials'].append(rec)
        self.save()
        return rec

    # -- pgbench ----------------------------------------------------------------------------------
    def ensure_pgbench(self):
        script = r'''
set -e
pb=$(ls /usr/lib/postgresql/*/bin/pgbench /opt/pgha-bench/usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n1 || true)
if [ -z "$pb" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql-client >/dev/null
  pb=$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n1 || true)
  if [ -z "$pb" ]; then
    # Debian ships pgbench in the server package: unpack it aside, install no server
    major=$(ls /usr/lib/postgresql | sort -n | tail -n1)
    mkdir -p /opt/pgha-bench && cd /opt/pgha-bench
    apt-get download -qq "postgresql-$major" >/dev/null
    dpkg-deb -x postgresql-"$major"_*.deb /opt/pgha-bench
    rm -f postgresql-"$major"_*.deb
    pb=$(ls /opt/pgha-bench/usr/lib/postgresql/*/bin/pgbench | tail -n1)
  fi
fi
echo "$pb"
'''
        res = self.lab.exec('lb1', ['sh', '-c', script], timeout=300)
        return res.stdout.strip().splitlines()[-1]

    def pgbench(self):
        a = self.args
        log('pgbench: -C (new connection per transaction), %s, -T %d, -c %d'
            % (a.pgbench_mode, a.pgbench_time, a.pgbench_clients))
        pb = self.ensure_pgbench()
        cl = self.lab.wait_healthy(a.settle_timeout)
        leader_ip = self.lab.ips[self.lab.leaders(cl)[0]['lab_host']]
        env = {'PGPASSWORD': self.app['password'], 'PGCONNECT_TIMEOUT': '5'}
        common = ['-U', self.app['user']]
        direct = ['-h', leader_ip, '-p', '5432'] + common
        pooled = ['-h', self.lab.ips['lb1'], '-p', str(a.pgbench_port or a.pgbouncer_port)] + common
        self.lab.exec('lb1', [pb, '-i', '-q', '-s', '1', '-I', 'dtgvp'] + direct + [self.app['db']],
                      timeout=180, env=env)
        mode = ['-S'] if a.pgbench_mode == 'select' else ['-N']
        out = {'mode': a.pgbench_mode, 'seconds': a.pgbench_time, 'clients': a.pgbench_clients, 'pgbench': pb}
        try:
            for target, conn in (('pgbouncer', pooled), ('direct', direct)):
                res = self.lab.exec('lb1', [pb, '-n', '-C'] + mode + ['-T', str(a.pgbench_time), '-c',
                                    str(a.pgbench_clients), '-j', '2'] + conn + [self.app['db']],
                                    timeout=a.pgbench_time + 120, env=env)
                m = re.search(r'tps = ([0-9.]+)', res.stdout)
                lat = re.search(r'latency average = ([0-9.]+) ms', res.stdout)
                conn_t = re.search(r'average connection time = ([0-9.]+) ms', res.stdout)
                out[target] = {'tps': float(m.group(1)) if m else None,
                               'latency_ms': float(lat.group(1)) if lat else None,
                               'connection_ms': float(conn_t.group(1)) if conn_t else None,
                               'failed': _int(re.search(r'number of failed transactions: (\d+)', res.stdout))}
                log('pgbench %s: %s' % (target, out[target]))
        finally:
            self.lab.exec('lb1', [pb, '-i', '-I', 'd'] + direct + [self.app['db']], timeout=60, env=env, check=False)
        if out.get('pgbouncer', {}).get('tps') and out.get('direct', {}).get('tps'):
            out['ratio_pgbouncer_to_direct'] = round(out['pgbouncer']['tps'] / out['direct']['tps'], 3)
        self.results['pgbench'] = out
        self.save()

    # -- converge ---------------------------------------------------------------------------------
    def converge(self):
        a = self.args
        env = dict(os.environ, LAB_NAME=a.lab_name)
        res = {}
        out = os.path.join(self.workdir, 'converge.log')
        log('converge: destroying and recreating lab %s (cold)' % a.lab_name)
        sh(['ansible-playbook', 'lab/destroy.yml'], timeout=300, env=env, out=out)
        t0 = time.time()
        sh(['ansible-playbook', 'lab/create.yml'], timeout=600, env=env, out=out)
        res['create_seconds'] = round(time.time() - t0, 1)
        for kind in ('cold', 'warm'):
            t0 = time.time()
            sh(['ansible-playbook', '-i', self.inventory, 'site.yml'], timeout=a.apply_timeout, env=env, out=out)
            res['%s_seconds' % kind] = round(time.time() - t0, 1)
            log('converge %s: %.0f s' % (kind, res['%s_seconds' % kind]))
        self.lab.refresh_ips()
        self.results['converge'] = res
        self.save()

    # -- output -------------------------------------------------------------------------------------
    def summary(self):
        out = {}
        for case in self.args.cases:
            out[case] = {}
            for prof in self.args.profiles:
                ts = [t for t in self.results['trials'] if t['case'] == case and t['profile'] == prof]
                gaps = [t['longest_gap'] for t in ts if t['longest_gap'] is not None and not t['error']]
                out[case][prof] = {
                    'n': len(gaps), 'errors': sum(1 for t in ts if t['error']),
                    'gap_min': min(gaps) if gaps else None,
                    'gap_median': statistics.median(gaps) if gaps else None,
                    'gap_p95': _p95(gaps),
                    'gap_max': max(gaps) if gaps else None,
                    'failed_median': statistics.median([t['failed'] for t in ts]) if ts else None,
                    'failed_max': max([t['failed'] for t in ts]) if ts else None,
                    'stall_max': max([t['longest_attempt'] or 0 for t in ts]) if ts else None,
                    'lost_total': sum(t.get('lost') or 0 for t in ts),
                    'failovers': sum(1 for t in ts if t.get('failover')),
                }
                # switchover through the playbook: the module's phases and the playbook's wall time
                phase_keys = ('pause_s', 'switchover_s', 'routing_s', 'resume_s', 'stall_s')
                ph = [t['phases'] for t in ts if isinstance(t.get('phases'), dict) and not t['error']]
                pb = [t['playbook_s'] for t in ts if t.get('playbook_s') is not None and not t['error']]
                if ph or pb:
                    out[case][prof]['phases'] = dict(
                        (k, {'median': statistics.median(v), 'p95': _p95(v)})
                        for k, v in [(k, [p[k] for p in ph if isinstance(p.get(k), (int, float))])
                                     for k in phase_keys] + [('playbook_s', pb)] if v)
                # balancer-kill: the killed balancer's return (boot, keepalived BACKUP) on its own
                rg = [t['restart_gap'] for t in ts if t.get('restart_gap') is not None]
                if rg or any('vip_moved_back' in t for t in ts):
                    out[case][prof]['restart_gap_max'] = max(rg) if rg else None
                    out[case][prof]['vip_moved_back'] = sum(1 for t in ts if t.get('vip_moved_back'))
                # The faulted host also led etcd: an etcd election and a full lease renewal come first.
                co = [t['longest_gap'] for t in ts if t['longest_gap'] is not None and not t['error']
                      and t.get('etcd_leader') and t.get('etcd_leader') == t.get('old_leader')]
                if co:
                    out[case][prof]['gap_median_etcd_leader_faulted'] = statistics.median(co)
                    out[case][prof]['n_etcd_leader_faulted'] = len(co)
            # The ratio compares the first profile (the collection's default) with `reference`.
            first = self.args.profiles[0]
            ref = next((p for p in self.args.profiles if split_variant(p)[0] == 'reference'), None)
            if ref and first != ref and first in out[case]:
                d, r = out[case][first]['gap_median'], out[case][ref]['gap_median']
                out[case]['ratio_default_to_reference'] = round(d / r, 3) if d is not None and r else None
        self.results['summary'] = out
        return out

    def table(self):
        s = self.summary()
        head = '%-13s %-12s %3s %8s %8s %8s %8s %8s %8s %8s %6s %4s %4s' % (
            'case', 'profile', 'n', 'gap_min', 'gap_med', 'gap_p95', 'gap_max', 'fail_med', 'fail_max', 'stall',
            'lost', 'err', 'fo')
        lines = [head, '-' * len(head)]
        for case, profs in s.items():
            for prof, v in profs.items():
                if prof == 'ratio_default_to_reference':
                    continue
                lines.append('%-13s %-12s %3d %8s %8s %8s %8s %8s %8s %8s %6d %4d %4d' % (
                    case, prof, v['n'], _r(v['gap_min']), _r(v['gap_median']), _r(v['gap_p95']), _r(v['gap_max']),
                    _r(v['failed_median'], 1), _r(v['failed_max'], 0), _r(v['stall_max']), v['lost_total'],
                    v['errors'], v['failovers']))
                if v.get('phases'):
                    lines.append('%-13s %-12s     phases median/p95 (s): %s' % ('', '', ', '.join(
                        '%s %s/%s' % (k[:-2], _r(x['median']), _r(x['p95'])) for k, x in v['phases'].items())))
                if 'restart_gap_max' in v:
                    lines.append('%-13s %-12s     restart of the killed balancer: longest gap %s s; VIP moved back '
                                 'in %d trial(s)' % ('', '', _r(v['restart_gap_max']), v['vip_moved_back']))
                if v.get('n_etcd_leader_faulted'):
                    lines.append('%-11s %-10s %3d of them with the etcd leader on the faulted host: median gap %s' % (
                        '', '', v['n_etcd_leader_faulted'], _r(v['gap_median_etcd_leader_faulted'])))
            if profs.get('ratio_default_to_reference') is not None:
                lines.append('%-11s %-10s ratio default / reference (median gap): %.2f' % (
                    case, '', profs['ratio_default_to_reference']))
        lines.append('gap: longest time between two acknowledged writes through PgBouncer (s); fail: failed '
                     'attempts per trial; stall: longest single attempt (s); lost: acknowledged writes missing; '
                     'fo: trials in which another member took over; balancer-kill: gap over kill and restart')
        pb = self.results.get('pgbench')
        if pb and pb.get('pgbouncer') and pb.get('direct'):
            lines.append('pgbench -C %s: pgbouncer %s tps, direct %s tps, ratio %s' % (
                pb['mode'], pb['pgbouncer']['tps'], pb['direct']['tps'], pb.get('ratio_pgbouncer_to_direct')))
        cv = self.results.get('converge')
        if cv:
            lines.append('site.yml converge: cold %(cold_seconds)s s, warm %(warm_seconds)s s '
                         '(lab create %(create_seconds)s s)' % cv)
        return '\n'.join(lines)

    def save(self):
        path = os.path.join(REPO, self.args.results_dir, self.stamp + '.json')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + '.tmp', 'w') as fh:
            json.dump(self.results, fh, indent=2, sort_keys=True)
        os.replace(path + '.tmp', path)
        return path

    def plot(self):
        import plot
        lanes = []
        for t in self.results['trials']:
            if os.path.exists(os.path.join(REPO, t['log'])):
                lanes.append({'label': '%s/%s#%d' % (t['case'], t['profile'], t['trial']),
                              'log': os.path.join(REPO, t['log']), 'events': os.path.join(REPO, t['events']),
                              'fault': t['case']})
        if not lanes:
            return None
        out = os.path.join(REPO, self.args.results_dir, self.stamp + '.png')
        plot.plot_timeline(lanes, out, title='pgha.cluster bench %s (lab %s): writes through PgBouncer every %gs'
                           % (self.stamp, self.args.lab_name, self.args.interval),
                           window=(-self.args.pre - 3, self.args.plot_window))
        return out

    # -- main ---------------------------------------------------------------------------------------
    def run(self):
        a = self.args
        self.results['started'] = time.time()
        if a.converge:
            self.converge()
        self.lab.wait_healthy(a.settle_timeout)
        self.results['patroni_config_before'] = self.lab.config()
        self.results['vip'] = self.virtual_ip()
        self.results['probe_dsn'] = probe.mask_dsn(self.dsn)
        self.results['probe_connect_mode'] = a.probe_connect_mode
        log('the probe writes through %s (%s connect)' % (self.results['probe_dsn'], a.probe_connect_mode))
        if a.cases_default and not self.results['vip'] and 'balancer-kill' in a.cases:
            log('no virtual IP in this lab: balancer-kill left out of the default cases')
            a.cases = [c for c in a.cases if c != 'balancer-kill']
            self.results['cases'] = a.cases
        for idx in range(1, a.trials + 1):
            for prof in a.profiles:
                if time.time() > self.deadline:
                    log('--max-time reached: no further trials')
                    break
                try:
                    rec = self.apply_profile(prof, idx)
                except BenchError as exc:
                    log('PROFILE %s NOT APPLIED: %s' % (prof, exc))
                    self.results['trials'].append({'case': None, 'profile': prof, 'trial': idx, 'error': str(exc),
                                                   'longest_gap': None, 'failed': 0, 'longest_attempt': None})
                    continue
                cfg = (rec or {}).get('patroni_config') or self.lab.config()
                for case in a.cases:
                    self.trial(case, prof, idx, cfg)
        if not a.no_pgbench:
            try:
                self.pgbench()
            except BenchError as exc:
                log('PGBENCH FAILED: %s' % exc)
                self.results['pgbench'] = {'error': str(exc)}
        self.results['finished'] = time.time()
        table = self.table()
        path = self.save()
        png = None
        try:
            png = self.plot()
        except Exception as exc:  # the numbers are saved; a broken plot is still a failure
            log('PLOT FAILED: %s' % exc)
            self.results['plot_error'] = str(exc)
        self.results['png'] = os.path.relpath(png, REPO) if png else None
        self.save()
        print()
        print(table)
        print('\nresults: %s\ntimeline: %s\nprobe logs: %s' % (os.path.relpath(path, REPO), self.results['png'],
                                                               self.results['workdir']))
        lost = sum(t.get('lost') or 0 for t in self.results['trials'])
        errors = [t for t in self.results['trials'] if t.get('error')]
        unverified = [t for t in self.results['trials'] if t.get('case') and t.get('lost') is None]
        if lost:
            print('FAIL: %d acknowledged writes lost' % lost, file=sys.stderr)
            return 1
        if errors or unverified or self.results.get('plot_error') or 'error' in (self.results.get('pgbench') or {}):
            print('FAIL: %d trial(s) failed, %d not verified%s' % (
                len(errors), len(unverified), '; pgbench failed' if 'error' in (self.results.get('pgbench') or {})
                else ''), file=sys.stderr)
            for t in errors:
                print('  %s/%s#%s: %s' % (t['case'], t['profile'], t['trial'], t['error'][:500]), file=sys.stderr)
            return 2
        return 0


def split_variant(variant):
    """'fast/on' -> ('fast', 'on'); 'fast' -> ('fast', DEFAULT_MODE)."""
    timing, dummy, mode = variant.partition('/')
    return timing, mode or DEFAULT_MODE


def _r(v, nd=2):
    return '-' if v is None else ('%.*f' % (nd, v))


def _int(m):
    return int(m.group(1)) if m else None


def _p95(xs):
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * 0.95
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--lab-name', default=os.environ.get('LAB_NAME') or 'pgha-lab')
    p.add_argument('--inventory', default='inventories/lab')
    p.add_argument('--trials', type=int, default=5, help='rounds; each round runs every profile')
    p.add_argument('--profiles', default='fast/quorum,fast/on,reference',
                   help='comma separated variants PROFILE[/MODE] (timing profile, synchronous_mode: quorum by '
                        'default), alternated per round; e.g. fast/quorum,fast/on')
    p.add_argument('--cases', default=None, help='comma separated, of %s (default: all; with --short: %s)'
                   % (','.join(CASES), ','.join(SHORT_CASES)))
    p.add_argument('--short', action='store_true',
                   help='one trial per case, first profile only, no profile apply unless --apply, short pgbench')
    p.add_argument('--apply', action='store_true', help='with --short: apply the profile anyway')
    p.add_argument('--no-apply', action='store_true', help='do not apply profiles (measure the cluster as it is)')
    p.add_argument('--apply-cmd', default=DEFAULT_APPLY, help='placeholders {profile} {mode} {lab} {inventory}')
    p.add_argument('--cut-hold', type=float, default=20.0, help='seconds a cut-replica link stays cut')
    p.add_argument('--apply-timeout', type=int, default=900)
    p.add_argument('--switchover-cmd', default='auto',
                   help="'auto' (the collection's playbooks/switchover.yml when it exists, else 'rest'), "
                        "'rest' (POST /switchover to the leader's Patroni REST API) or a command with "
                        "placeholders {leader} {candidate} (Patroni member names), {leader_host} "
                        "{candidate_host} (inventory hosts), {leader_ip} {candidate_ip}, {lab}, {inventory}")
    p.add_argument('--dsn', help='write DSN of the probe (default: PgBouncer at the virtual IP, or lb1 without '
                                 'one; db/user/password from the inventory)')
    p.add_argument('--vip', default='auto',
                   help="the balancers' virtual IP: 'auto' (keepalived_virtual_ip of the inventory, if a balancer "
                        "holds it), 'none' (lb1 only; no balancer-kill) or an address")
    p.add_argument('--probe-connect-mode', choices=probe.CONNECT_MODES, default='async',
                   help="the probe's --connect-mode; 'blocking' with a multi-host --dsn (libpq's failover between "
                        "the balancers instead of the virtual IP)")
    p.add_argument('--ca-file', help='cluster CA certificate (default: ~/.pgha/pki/<patroni_scope>/ca.crt)')
    p.add_argument('--app-password', help='default: pgha_app_password from the inventory (or $PGHA_APP_PASSWORD)')
    p.add_argument('--pgbouncer-port', type=int, default=6432)
    p.add_argument('--interval', type=float, default=0.05)
    p.add_argument('--attempt-timeout', type=float, default=60.0,
                   help='client-side bound of one write attempt (above the expected stalls, so that a stall is measured, not cut)')
    p.add_argument('--pre', type=float, default=3.0, help='seconds of steady writes before the fault')
    p.add_argument('--post', type=float, default=2.0, help='seconds after the old leader is back')
    p.add_argument('--failover-timeout', type=int, default=120, help='bound: new leader / writes resume')
    p.add_argument('--rejoin-timeout', type=int, default=240, help='bound: old leader streams again')
    p.add_argument('--settle-timeout', type=int, default=180, help='bound: healthy cluster before a trial')
    p.add_argument('--probe-max', type=int, default=900, help='hard --duration of each probe run')
    p.add_argument('--max-time', type=int, default=4 * 3600, help='no new trial after this many seconds')
    p.add_argument('--no-pgbench', action='store_true')
    p.add_argument('--pgbench-mode', choices=['select', 'update'], default='select')
    p.add_argument('--pgbench-time', type=int, default=20)
    p.add_argument('--pgbench-clients', type=int, default=8)
    p.add_argument('--pgbench-port', type=int, default=None, help='PgBouncer port for pgbench (default 6432)')
    p.add_argument('--converge', action='store_true',
                   help='first destroy and recreate the lab, time a cold and a warm site.yml (needs the '
                        'LAB_* variables the lab was created with)')
    p.add_argument('--results-dir', default='bench/results')
    p.add_argument('--plot-window', type=float, default=75.0, help='seconds after the fault in the PNG')
    a = p.parse_args(argv)
    a.profiles = [x for x in a.profiles.split(',') if x]
    a.cases_default = a.cases is None
    a.cases = [x for x in (a.cases or ','.join(SHORT_CASES if a.short else CASES)).split(',') if x]
    bad = [c for c in a.cases if c not in CASES]
    if bad:
        p.error('unknown case(s) %s' % bad)
    if a.switchover_cmd == 'auto':
        a.switchover_cmd = PLAYBOOK_SWITCHOVER if os.path.exists(os.path.join(REPO, 'playbooks', 'switchover.yml')) \
            else 'rest'
    if a.short:
        a.trials = 1
        a.profiles = a.profiles[:1]
        a.no_apply = a.no_apply or not a.apply
        a.pgbench_time = min(a.pgbench_time, 3)
        a.pgbench_clients = min(a.pgbench_clients, 2)
        a.pre = min(a.pre, 2.0)
        a.post = min(a.post, 1.0)
        a.max_time = min(a.max_time, 600)
        a.cut_hold = min(a.cut_hold, 5.0)
    return a


def main(argv=None):
    args = parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    bench = None
    try:
        bench = Bench(args)
        return bench.run()
    except BenchError as exc:
        print('bench: %s' % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('bench: interrupted; the lab keeps running', file=sys.stderr)
        return 130
    finally:
        if bench is not None:
            if bench.probe:
                bench.probe.stop()
            bench.run_restores()
            try:
                bench.save()
            except Exception:
                pass


if __name__ == '__main__':
    sys.exit(main())
