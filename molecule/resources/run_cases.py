# Runs commands, at most --jobs at a time, each with its own time limit, and prints their results
# as JSON in the order given: [{"rc": ..., "stdout": ..., "stderr": ...}, ...]. Reads the commands
# from stdin as JSON: [{"argv": [...], "env": {...}, "timeout": seconds}, ...] ("env" is added to
# this process's environment). A command that runs over its limit is killed with its process
# group and reported with rc 124 (as timeout(1) does) and the output it had written.
# Used by the bad-input stage: each bad input is still its own ansible-playbook run, read-only
# until its refusal, so several can run at once.
import concurrent.futures
import json
import os
import signal
import subprocess
import sys


def run(case):
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in case.get('env', {}).items()})
    proc = subprocess.Popen(case['argv'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=float(case.get('timeout', 180)))
        return {'rc': proc.returncode, 'stdout': out, 'stderr': err}
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return {'rc': 124, 'stdout': out, 'stderr': err + '\n(killed after %s s)' % case.get('timeout', 180)}


def main():
    args = sys.argv[1:]
    jobs = int(args[args.index('--jobs') + 1]) if '--jobs' in args else 4
    cases = json.load(sys.stdin)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(run, cases))
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main()
