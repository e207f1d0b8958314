# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/converge.py: the recap parsing, what makes a run not a re-run, the CPU arithmetic, the
medians and the command line. Nothing here needs Docker or the lab."""

import pytest

from ansible_collections.pgha.cluster.tests.unit.utils import load_script

converge = load_script('bench/converge.py', 'pgha_bench_converge')

RECAP = """
PLAY RECAP *********************************************************************
bk1                        : ok=41   changed=0    unreachable=0    failed=0    skipped=12   rescued=0    ignored=0
lb1                        : ok=59   changed=0    unreachable=0    failed=0    skipped=8    rescued=0    ignored=0
localhost                  : ok=7    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
pg1                        : ok=104  changed=2    unreachable=0    failed=1    skipped=27   rescued=0    ignored=0
pg2                        : ok=87   changed=0    unreachable=1    failed=0    skipped=29   rescued=0    ignored=0


PLAYBOOK RECAP *****************************************************************
Playbook run took 0 days, 0 hours, 1 minutes, 34 seconds
"""


def test_parse_recap_reads_every_host():
    hosts = converge.parse_recap(RECAP)
    assert sorted(hosts) == ['bk1', 'lb1', 'localhost', 'pg1', 'pg2']
    assert hosts['pg1'] == {'ok': 104, 'changed': 2, 'unreachable': 0, 'failed': 1, 'skipped': 27}


def test_recap_problems_names_hosts_that_changed_failed_or_were_unreachable():
    assert converge.recap_problems(converge.parse_recap(RECAP)) == ['pg1: changed=2, failed=1', 'pg2: unreachable=1']


def test_recap_problems_clean_and_missing():
    clean = RECAP.replace('changed=2', 'changed=0').replace('failed=1', 'failed=0').replace('unreachable=1', 'unreachable=0')
    assert converge.recap_problems(converge.parse_recap(clean)) == []
    assert converge.recap_problems(converge.parse_recap('ERROR! the playbook could not be found')) == [
        'no PLAY RECAP in the output']


def test_cpu_busy_seconds_leaves_out_idle_and_iowait():
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    line = 'cpu  1000 200 300 5000 400 10 20 30 50 0\n'
    assert converge.cpu_busy_seconds(line, 100) == pytest.approx((1000 + 200 + 300 + 10 + 20 + 30) / 100.0)


def _run(conn, seconds, ok=90):
    return {'connection': conn, 'seconds': seconds, 'controller_cpu_s': seconds / 2, 'machine_cpu_s': seconds * 1.8,
            'ok_max': ok}


def test_summarize_medians_and_ratio():
    runs = [_run('docker', 120), _run('ssh', 90), _run('docker', 110), _run('ssh', 100), _run('docker', 130),
            _run('ssh', 95, ok=91)]
    summary = converge.summarize(runs)
    assert summary['docker']['seconds'] == 120 and summary['ssh']['seconds'] == 95
    assert summary['ssh']['runs'] == 3 and summary['ssh']['tasks_per_host'] == 91
    assert summary['ratio_ssh_docker'] == round(95 / 120.0, 2)
    assert 'ratio_ssh_docker' not in converge.summarize([_run('ssh', 90)])
    table = converge.format_table({'summary': summary})
    assert 'ssh/docker: 0.79' in table and table.splitlines()[0].startswith('conn')


@pytest.mark.parametrize('argv, message', [
    (['--connections', 'winrm'], 'docker and/or ssh'),
    (['--connections', ','], 'docker and/or ssh'),
    (['--runs', '0'], '--runs must be 1 or more'),
])
def test_parse_args_refuses_bad_input(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        converge.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_parse_args_defaults():
    args = converge.parse_args([])
    assert args.connections == ['docker', 'ssh'] and args.runs == 3 and args.timeout == 900
