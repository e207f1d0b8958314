# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/run.py: the pure helpers of the balancer-kill case and the virtual IP (keepalived's state
dump, `ip addr` output, the inventory's keepalived_virtual_ip), the case list of the command line
and the table with a balancer-kill trial. Nothing here needs Docker or the lab."""

import os
import subprocess
import sys

import yaml

from ansible_collections.pgha.cluster.tests.unit.utils import REPO, load_script

run = load_script('bench/run.py', 'pgha_bench_run')

# `ip -4 -o addr show dev eth0` on the balancer holding the address: keepalived adds it as a
# second address of the interface's subnet.
IP_HOLDER = (
    '2: eth0    inet 10.253.1.21/24 brd 10.253.1.255 scope global eth0\\       valid_lft forever preferred_lft forever\n'
    '2: eth0    inet 10.253.1.20/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever\n')
IP_OTHER = '3: eth0    inet 10.253.1.22/24 brd 10.253.1.255 scope global eth0\\       valid_lft forever preferred_lft forever\n'

# The parts of keepalived's /tmp/keepalived.data (SIGUSR1) the bench reads, as keepalived 2.2 writes them.
KEEPALIVED_DATA = '''------< Global definitions >------
 Network namespace = (default)
 Router ID = lb2
------< VRRP Topology >------
 VRRP Instance = other
   VRRP Version = 3
   State = MASTER
 VRRP Instance = pgha
   VRRP Version = 3
   State = BACKUP
   Master router = 10.253.1.21
   Master priority = 200
   Wantstate = BACKUP
   Last transition = 1796081799.419849 (Mon Nov 30 23:36:39.419849 2026)
------< Interfaces >------
 Name = eth0
   State = UP, RUNNING
'''


def test_ipv4_addresses():
    assert run.ipv4_addresses(IP_HOLDER) == ['10.253.1.21', '10.253.1.20']
    assert '10.253.1.20' not in run.ipv4_addresses(IP_OTHER)
    assert run.ipv4_addresses('') == [] and run.ipv4_addresses(None) == []
    # a longer address that starts like the VIP is not the VIP
    assert '10.253.1.20' not in run.ipv4_addresses('2: eth0    inet 10.253.1.201/24 scope global eth0\n')


def test_keepalived_state():
    assert run.keepalived_state(KEEPALIVED_DATA, 'pgha') == 'BACKUP'
    assert run.keepalived_state(KEEPALIVED_DATA, 'other') == 'MASTER'
    assert run.keepalived_state(KEEPALIVED_DATA, 'missing') is None
    assert run.keepalived_state('', 'pgha') is None and run.keepalived_state(None, 'pgha') is None
    # Wantstate is not the state; an instance without a State line does not borrow a later section's
    assert run.keepalived_state(' VRRP Instance = pgha\n   Wantstate = MASTER\n------< Interfaces >------\n'
                                '   State = UP, RUNNING\n', 'pgha') is None
    fault = KEEPALIVED_DATA.replace('   State = BACKUP', '   State = FAULT')
    assert run.keepalived_state(fault, 'pgha') == 'FAULT'


def test_lab_virtual_ip_from_the_lab_inventory():
    """The lab's own keepalived_virtual_ip (a template on Ansible facts) resolves to host .20 of
    lb1's subnet, for `make lab` and for Molecule's network."""
    with open(os.path.join(REPO, 'inventories', 'lab', 'group_vars', 'balancer.yml')) as fh:
        template = yaml.safe_load(fh)['keepalived_virtual_ip']
    assert '{{' in template
    assert run.lab_virtual_ip(template, '10.253.1.21') == '10.253.1.20'
    assert run.lab_virtual_ip(template, '10.253.2.21') == '10.253.2.20'
    # rendered, not guessed: another host number comes out as written
    assert run.lab_virtual_ip(template.replace('.20', '.30'), '10.253.1.21') == '10.253.1.30'


def test_lab_virtual_ip_literal_missing_and_unrenderable():
    assert run.lab_virtual_ip('192.0.2.20', '10.253.1.21') == '192.0.2.20'
    assert run.lab_virtual_ip('', '10.253.1.21') is None
    assert run.lab_virtual_ip(None, '10.253.1.21') is None
    # an Ansible-only filter cannot be rendered here: the lab's convention, .20 of lb1's /24
    assert run.lab_virtual_ip("{{ lab_subnet | ansible.utils.nthhost(20) }}", '10.253.7.21') == '10.253.7.20'
    assert run.lab_virtual_ip("{{ some_undefined_var }}", '10.253.7.21') == '10.253.7.20'


def test_cases_on_the_command_line():
    a = run.parse_args([])
    assert 'balancer-kill' in a.cases and a.cases_default and a.vip == 'auto'
    assert a.probe_connect_mode == 'async'
    a = run.parse_args(['--short'])
    assert 'balancer-kill' not in a.cases
    a = run.parse_args(['--cases', 'balancer-kill', '--vip', '10.253.1.20', '--probe-connect-mode', 'blocking'])
    assert a.cases == ['balancer-kill'] and not a.cases_default
    assert (a.vip, a.probe_connect_mode) == ('10.253.1.20', 'blocking')
    assert 'balancer-kill' in run.NO_FAILOVER_CASES


def test_help_names_the_case():
    res = subprocess.run([sys.executable, os.path.join(REPO, 'bench', 'run.py'), '--help'], capture_output=True,
                         text=True, timeout=20, check=False)
    assert res.returncode == 0, res.stderr
    assert 'balancer-kill' in res.stdout and '--vip' in res.stdout


def _trial(case, gap, **extra):
    rec = {'case': case, 'profile': 'fast', 'trial': 1, 'error': None, 'longest_gap': gap, 'failed': 3,
           'longest_attempt': 0.4, 'lost': 0, 'failover': False}
    rec.update(extra)
    return rec


def test_summary_and_table_with_a_balancer_kill_trial():
    bench = run.Bench.__new__(run.Bench)  # the output half only: no lab behind it
    bench.args = run.parse_args(['--cases', 'crash,balancer-kill', '--profiles', 'fast'])
    bench.results = {'trials': [
        _trial('crash', 6.5, failover=True),
        _trial('balancer-kill', 1.8, restart_gap=0.12, vip_moved_back=False, killed_balancer='lb1'),
        _trial('balancer-kill', 2.1, restart_gap=0.3, vip_moved_back=True, killed_balancer='lb2'),
    ]}
    summary = bench.summary()
    bk = summary['balancer-kill']['fast']
    assert bk['n'] == 2 and bk['gap_max'] == 2.1 and bk['failovers'] == 0
    assert bk['restart_gap_max'] == 0.3 and bk['vip_moved_back'] == 1
    assert 'restart_gap_max' not in summary['crash']['fast']
    text = bench.table()
    row = next(line for line in text.splitlines() if line.startswith('balancer-kill '))
    head = text.splitlines()[0]
    assert row.index('fast') == head.index('profile')  # the 13-character case name fits its column
    assert 'restart of the killed balancer: longest gap 0.30 s; VIP moved back in 1 trial(s)' in text


def test_find_phases_in_the_json_callbacks_output():
    output = {'plays': [{'tasks': [
        {'task': {'name': 'Gather facts'}, 'hosts': {'localhost': {'changed': False}}},
        {'task': {'name': 'Switch over'}, 'hosts': {'localhost': {
            'changed': True, 'phases': {'pause_s': 0.01, 'switchover_s': 1.9, 'routing_s': 0.2,
                                        'resume_s': 0.002, 'stall_s': 2.1}}}},
    ]}]}
    assert run.find_phases(output)['stall_s'] == 2.1
    assert run.find_phases({'plays': []}) is None
    assert run.find_phases({'phases': {'pause_s': 1}}) is None   # not the module's result


def test_summary_and_table_with_switchover_phases():
    bench = run.Bench.__new__(run.Bench)
    bench.args = run.parse_args(['--cases', 'switchover', '--profiles', 'fast'])
    phases = [{'pause_s': 0.01, 'switchover_s': s, 'routing_s': 0.2, 'resume_s': 0.002, 'stall_s': s + 0.3}
              for s in (1.5, 1.7, 2.5)]
    bench.results = {'trials': [_trial('switchover', 2.0, phases=p, playbook_s=12.0 + i, failover=True)
                                for i, p in enumerate(phases)]}
    ph = bench.summary()['switchover']['fast']['phases']
    assert ph['switchover_s']['median'] == 1.7 and ph['stall_s']['median'] == 2.0
    assert ph['playbook_s']['median'] == 13.0
    assert 'phases median/p95 (s): pause 0.01/' in bench.table()


def test_read_phases_with_a_callback_printing_after_the_json(tmp_path):
    out = tmp_path / 'cmd.json'
    out.write_text('{"plays": [{"tasks": [{"hosts": {"localhost": {"phases": {"stall_s": 2.2}}}}]}]}\n\n'
                   'PLAYBOOK RECAP ****\nPlaybook run took 0 days, 0 hours, 0 minutes, 23 seconds\n')
    assert run.read_phases(str(out)) == {'stall_s': 2.2}
    (tmp_path / 'broken.json').write_text('ERROR! no JSON here')
    assert run.read_phases(str(tmp_path / 'broken.json')) is None
    assert run.read_phases(str(tmp_path / 'missing.json')) is None
