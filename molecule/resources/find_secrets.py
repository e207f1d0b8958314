# Reads secrets (one per line) from stdin and prints, as JSON, every world-readable file under the
# given directories and every process command line that contains one of them. Used by the
# security stage on each host; prints paths and PIDs, never the secrets.
# --cwd PATH limits the process check to processes working under PATH (on the controller: this
# checkout's processes, not those of another checkout or user on the same machine).
import json
import os
import stat
import sys

args = sys.argv[1:]
cwd_prefix = None
if args[:1] == ['--cwd']:
    cwd_prefix, args = os.path.realpath(args[1]), args[2:]
secrets = [s.encode() for s in sys.stdin.read().splitlines() if s]
found = {'files': [], 'processes': []}
for top in args:
    for root, dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or not st.st_mode & stat.S_IROTH or st.st_size > 4 << 20:
                    continue
                with open(path, 'rb') as f:
                    data = f.read()
            except OSError:
                continue
            if any(s in data for s in secrets):
                found['files'].append(path)
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        if cwd_prefix and not os.path.realpath('/proc/%s/cwd' % pid).startswith(cwd_prefix):
            continue
        with open('/proc/%s/cmdline' % pid, 'rb') as f:
            cmdline = f.read().replace(b'\0', b' ')
    except OSError:
        continue
    if any(s in cmdline for s in secrets):
        found['processes'].append('%s %s' % (pid, cmdline.split(b' ')[0].decode(errors='replace')))
print(json.dumps(found))
