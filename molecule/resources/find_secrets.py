# Reads secrets (one per line) from stdin and prints, as JSON, every world-readable file under the
# given directories and every process command line that contains one of them. Used by the
# security stage on each host; prints paths and PIDs, never the secrets.
import json
import os
import stat
import sys

secrets = [s.encode() for s in sys.stdin.read().splitlines() if s]
found = {'files': [], 'processes': []}
for top in sys.argv[1:]:
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
        with open('/proc/%s/cmdline' % pid, 'rb') as f:
            cmdline = f.read().replace(b'\0', b' ')
    except OSError:
        continue
    if any(s in cmdline for s in secrets):
        found['processes'].append('%s %s' % (pid, cmdline.split(b' ')[0].decode(errors='replace')))
print(json.dumps(found))
