# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make bench-converge`: how long an idempotent re-run of site.yml takes on the lab (issue 19).

Runs `ansible-playbook site.yml` on the converged lab RUNS times per connection, the connections
taking turns in each round (so a slow minute of the machine hits both): docker exec as root
(inventories/lab) and SSH as the deploy user with become (inventories/lab-ssh), or the
inventories given with --docker-inventory / --ssh-inventory (e.g. fewer hosts). Each run must
change nothing and fail nowhere (a run that changes something is not a re-run: the bench stops).
Per run: wall time, the controller's CPU (ansible-playbook and its workers) and the machine's CPU
busy time (/proc/stat), so the hosts' share is the difference. Prints the medians and the ratio
ssh/docker; writes bench/results/<UTC stamp>-converge.json; the playbooks' output stays in
.cache/bench/<stamp>-converge/. Exit status: 0 fine, 1 a run changed or failed something, 2 the
tool failed. Each run is bounded (--timeout).
"""

import argparse
import json
import os
import re
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import BenchError, log, sh  # noqa: E402

INVENTORIES = {'docker': 'inventories/lab', 'ssh': 'inventories/lab-ssh'}
# "pg1   : ok=87   changed=0    unreachable=0    failed=0    skipped=29   rescued=0    ignored=0"
RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)', re.M)


# ----------------------------------------------------------------------------------------------
# parsing (pure; unit-tested)

def parse_recap(output):
    """{host: {ok, changed, unreachable, failed, skipped}} from the PLAY RECAP of a playbook's output."""
    hosts = {}
    for m in RECAP.finditer(output):
        hosts[m.group(1)] = dict(zip(('ok', 'changed', 'unreachable', 'failed', 'skipped'), map(int, m.groups()[1:])))
    return hosts


def recap_problems(hosts):
    """Why a run is not a clean re-run: no recap, or hosts that changed, failed or were unreachable."""
    if not hosts:
        return ['no PLAY RECAP in the output']
    return ['%s: %s' % (h, ', '.join('%s=%d' % (k, c[k]) for k in ('changed', 'failed', 'unreachable') if c[k]))
            for h, c in sorted(hosts.items()) if c['changed'] or c['failed'] or c['unreachable']]


def cpu_busy_seconds(stat_line, ticks):
    """Busy CPU seconds (all but idle and iowait) from the first line of /proc/stat."""
    fields = [int(x) for x in stat_line.split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest and guest_nice (fields 8, 9) are already counted in user and nice.
    return (sum(fields[:8]) - idle) / float(ticks)


def summarize(runs):
    """Medians per connection and the ratio ssh/docker of the wall-time medians."""
    out = {}
    for conn in sorted({r['connection'] for r in runs}):
        mine = [r for r in runs if r['connection'] == conn]
        out[conn] = {key: round(statistics.median(r[key] for r in mine), 1)
                     for key in ('seconds', 'controller_cpu_s', 'machine_cpu_s')}
        out[conn]['runs'] = len(mine)
        out[conn]['tasks_per_host'] = max(r['ok_max'] for r in mine)
    if 'ssh' in out and 'docker' in out and out['docker']['seconds']:
        out['ratio_ssh_docker'] = round(out['ssh']['seconds'] / out['docker']['seconds'], 2)
    return out


def format_table(results):
    lines = ['%-7s %4s %9s %15s %12s' % ('conn', 'runs', 'median_s', 'controller_cpu_s', 'machine_cpu_s')]
    for conn, s in sorted(results['summary'].items()):
        if isinstance(s, dict):
            figures = (conn, s['runs'], s['seconds'], s['controller_cpu_s'], s['machine_cpu_s'])
            lines.append('%-7s %4d %9.1f %15.1f %12.1f' % figures)
    if 'ratio_ssh_docker' in results['summary']:
        lines.append('ssh/docker: %.2f' % results['summary']['ratio_ssh_docker'])
    return '\n'.join(lines)


# ----------------------------------------------------------------------------------------------

def read_stat():
    with open('/proc/stat') as fh:
        return fh.readline()


def one_run(conn, index, args, out_dir):
    out = os.path.join(out_dir, '%s-%d.log' % (conn, index))
    env = dict(os.environ, LAB_NAME=args.lab_name, LAB_SUBNET=args.lab_subnet, ANSIBLE_NOCOLOR='1')
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_stat = read_stat()
    t0 = time.time()
    inventory = args.docker_inventory if conn == 'docker' else args.ssh_inventory
    res = sh(['ansible-playbook', '-i', inventory, 'site.yml'], timeout=args.timeout, check=False, out=out, env=env)
    seconds = time.time() - t0
    after_stat = read_stat()
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks = os.sysconf('SC_CLK_TCK')
    with open(out) as fh:
        hosts = parse_recap(fh.read())
    problems = recap_problems(hosts) if res.returncode == 0 else ['exit status %d' % res.returncode] + recap_problems(hosts)
    run = {
        'connection': conn, 'round': index, 'seconds': round(seconds, 1), 'rc': res.returncode,
        'controller_cpu_s': round((after_children.ru_utime - before_children.ru_utime)
                                  + (after_children.ru_stime - before_children.ru_stime), 1),
        'machine_cpu_s': round(cpu_busy_seconds(after_stat, ticks) - cpu_busy_seconds(before_stat, ticks), 1),
        'hosts': len([h for h in hosts if h != 'localhost']),
        'ok_max': max([c['ok'] for c in hosts.values()] or [0]),
        'problems': problems, 'log': os.path.relpath(out, REPO),
    }
    log('%-6s run %d: %.1f s, controller CPU %.1f s, machine CPU %.1f s%s' % (
        conn, index, run['seconds'], run['controller_cpu_s'], run['machine_cpu_s'],
        ('; ' + '; '.join(problems)) if problems else ''))
    return run


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    p.add_argument('--runs', type=int, default=3, help='re-runs per connection (default 3)')
    p.add_argument('--connections', default='docker,ssh', help='comma-separated: docker, ssh (default both)')
    p.add_argument('--lab-name', default=os.environ.get('LAB_NAME') or 'pgha-lab')
    p.add_argument('--lab-subnet', default=os.environ.get('LAB_SUBNET') or '10.253.1.0/24')
    p.add_argument('--timeout', type=int, default=900, help='seconds per run (default 900)')
    p.add_argument('--docker-inventory', default=INVENTORIES['docker'])
    p.add_argument('--ssh-inventory', default=INVENTORIES['ssh'])
    p.add_argument('--results-dir', default='bench/results')
    args = p.parse_args(argv)
    args.connections = [c.strip() for c in args.connections.split(',') if c.strip()]
    unknown = [c for c in args.connections if c not in INVENTORIES]
    if unknown or not args.connections:
        p.error('--connections takes docker and/or ssh, not %s' % (unknown or 'nothing'))
    if args.runs < 1:
        p.error('--runs must be 1 or more')
    return args


def main(argv=None):
    args = parse_args(argv)
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    out_dir = os.path.join(REPO, '.cache', 'bench', stamp + '-converge')
    os.makedirs(out_dir, exist_ok=True)
    results = {'stamp': stamp, 'lab': args.lab_name, 'runs': [], 'started': time.time(),
               'inventories': {c: args.docker_inventory if c == 'docker' else args.ssh_inventory for c in args.connections}}
    try:
        for index in range(1, args.runs + 1):
            for conn in args.connections:
                run = one_run(conn, index, args, out_dir)
                results['runs'].append(run)
                if run['problems']:
                    raise BenchError('%s run %d is not a clean re-run (%s); see %s' % (
                        conn, index, '; '.join(run['problems']), run['log']))
    except BenchError as exc:
        log('stopped: %s' % exc)
        results['error'] = str(exc)
    results['finished'] = time.time()
    results['summary'] = summarize(results['runs']) if results['runs'] else {}
    path = os.path.join(REPO, args.results_dir, stamp + '-converge.json')
    with open(path, 'w') as fh:
        json.dump(results, fh, indent=2, sort_keys=True)
    print(format_table(results))
    print('\nresults: %s' % os.path.relpath(path, REPO))
    if 'error' in results:
        return 1 if results['runs'] and results['runs'][-1]['problems'] else 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
