# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Galaxy artifact: what `ansible-galaxy collection build` ships, and that it works installed.

Builds the tarball from this checkout into a temporary directory, checks its file list (no
checkout-only paths; COPYING, meta/runtime.yml and the changelog present), galaxy.yml's URLs and
dependencies (every collection the shipped YAML and Python calls is declared, every declared one is
called), installs it offline with `ansible-galaxy collection install --offline --no-deps` and, from
a directory outside the checkout with only that install and the venv's bundled collections on the
collections path, syntax-checks every playbook by its FQCN (pgha.cluster.<name>) and reads the
modules' and roles' documentation with ansible-doc. No Docker, no network; about 15 s.

Run: make artifact (or python -m pytest -q -s tests/artifact).
"""

import collections
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)
TIMEOUT = 180

# Paths only a checkout uses (issue 19): none of them may be in the tarball.
CHECKOUT_ONLY = (
    'molecule/', '.config/', 'bench/', 'lab/', 'inventories/lab/', 'inventories/lab-ssh/', 'tests/', '.ci/',
    '.ansible-lint', '.yamllint', '.gitignore', 'Makefile', 'requirements.in', 'requirements.txt',
    'ansible.cfg', 'pytest.ini', 'site.yml', '.venv/', '.collections/', '.lab/', '.cache/',
    'changelogs/.plugin-cache.yaml', 'changelogs/fragments/',
)
# Everything the tarball carries lives under one of these (a new top-level entry must be added
# here or to galaxy.yml's build_ignore, on purpose).
SHIPPED_TOP = (
    'MANIFEST.json', 'FILES.json', 'README.md', 'COPYING', 'CHANGELOG.rst', 'changelogs/',
    'meta/', 'playbooks/', 'plugins/', 'roles/', 'inventories/example/',
)
REQUIRED = (
    'COPYING', 'meta/runtime.yml', 'README.md', 'CHANGELOG.rst', 'changelogs/changelog.yaml',
    'changelogs/config.yaml', 'playbooks/site.yml', 'inventories/example/ansible.cfg',
)
CORE = {'ansible.builtin', 'ansible.legacy'}
SELF = 'pgha.cluster'
URL_KEYS = ('repository', 'documentation', 'homepage', 'issues')
PLACEHOLDER = re.compile(r'example\.(invalid|com|org|net)|localhost|todo|changeme|placeholder|your[-_]?org', re.I)
# Comments that name files a user of the collection does not have.
OUTSIDE = re.compile(r'/work/|\.\./shared|reference[- ]system', re.I)

FQCN = re.compile(r'(?<![\w.])([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z_][a-z0-9_]*')
PY_IMPORT = re.compile(r'ansible_collections\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)')
TASK_KEY = re.compile(r'^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z_][a-z0-9_]*$')


def run(args, cwd, env=None):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, '%s failed (rc=%s)\nstdout:\n%s\nstderr:\n%s' % (
        ' '.join(args), proc.returncode, proc.stdout[-6000:], proc.stderr[-6000:])
    return proc


def clean_env(**extra):
    """The environment of a user: no ansible setting of this checkout (the Makefile exports some)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    env['PATH'] = BIN + os.pathsep + env.get('PATH', '')
    env['ANSIBLE_NOCOLOR'] = '1'
    env.update(extra)
    return env


def bundled_collections():
    """namespace.name of every collection the venv's `ansible` package brings."""
    found = set()
    for manifest in glob.glob(os.path.join(sysconfig.get_paths()['purelib'], 'ansible_collections', '*', '*', 'MANIFEST.json')):
        parts = manifest.split(os.sep)
        found.add('%s.%s' % (parts[-3], parts[-2]))
    return found


def walk_keys(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from walk_keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_keys(item)


@pytest.fixture(scope='module')
def artifact():
    tmp = tempfile.mkdtemp(prefix='pgha-artifact.')
    try:
        env = clean_env()
        build = os.path.join(tmp, 'build')
        run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', build, REPO], cwd=tmp, env=env)
        tarballs = glob.glob(os.path.join(build, 'pgha-cluster-*.tar.gz'))
        assert len(tarballs) == 1, tarballs
        tarball = tarballs[0]
        with tarfile.open(tarball) as tar:
            members = tar.getmembers()
            manifest = json.load(tar.extractfile('MANIFEST.json'))
        files = sorted(m.name for m in members if m.isfile())
        extracted = os.path.join(tmp, 'extracted')
        with tarfile.open(tarball) as tar:
            tar.extractall(extracted, filter='data')

        # The summary that the report asks for: size and file counts by top directory.
        counts = collections.Counter()
        sizes = collections.Counter()
        for m in members:
            if m.isfile():
                top = m.name.split('/', 1)[0] if '/' in m.name else '(top level)'
                counts[top] += 1
                sizes[top] += m.size
        print('\n%s: %d bytes compressed, %d files, %d bytes uncompressed'
              % (os.path.basename(tarball), os.path.getsize(tarball), len(files), sum(sizes.values())))
        for top in sorted(counts):
            print('  %-14s %4d files %8d bytes' % (top, counts[top], sizes[top]))

        yield {'tmp': tmp, 'tarball': tarball, 'files': files, 'manifest': manifest, 'extracted': extracted}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope='module')
def installed(artifact):
    """The tarball installed offline into <tmp>/collections, and a user's environment for it."""
    dest = os.path.join(artifact['tmp'], 'collections')
    workdir = os.path.join(artifact['tmp'], 'elsewhere')
    os.makedirs(workdir)
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '--no-deps', '-p', dest, artifact['tarball']],
        cwd=workdir, env=clean_env())
    root = os.path.join(dest, 'ansible_collections', 'pgha', 'cluster')
    assert os.path.isfile(os.path.join(root, 'MANIFEST.json'))
    env = clean_env(ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([dest, sysconfig.get_paths()['purelib']]))
    return {'root': root, 'env': env, 'cwd': workdir}


def test_no_checkout_only_paths(artifact):
    shipped = [f for f in artifact['files'] if f.startswith(CHECKOUT_ONLY) or f in CHECKOUT_ONLY]
    assert not shipped, 'checkout-only files in the tarball: %s' % shipped
    stray = [f for f in artifact['files'] if not (f in SHIPPED_TOP or f.startswith(SHIPPED_TOP))]
    assert not stray, 'files outside the shipped directories (add them to build_ignore or SHIPPED_TOP): %s' % stray
    caches = [f for f in artifact['files'] if '__pycache__' in f or f.endswith(('.pyc', '.retry', '.tar.gz'))]
    assert not caches, caches


def test_required_files(artifact):
    missing = [f for f in REQUIRED if f not in artifact['files']]
    assert not missing, 'missing from the tarball: %s' % missing
    with open(os.path.join(artifact['extracted'], 'COPYING'), encoding='utf-8') as handle:
        text = handle.read()
    assert 'GNU GENERAL PUBLIC LICENSE' in text and 'Version 3, 29 June 2007' in text and len(text) > 30000
    assert artifact['manifest']['collection_info']['license'] == ['GPL-3.0-or-later']


def test_no_placeholder_urls(artifact):
    with open(os.path.join(REPO, 'galaxy.yml'), encoding='utf-8') as handle:
        galaxy = yaml.safe_load(handle)
    info = artifact['manifest']['collection_info']
    for key in URL_KEYS:
        for value in (galaxy.get(key), info.get(key)):
            if value:
                assert value.startswith('https://') and not PLACEHOLDER.search(value), '%s: %s' % (key, value)


def test_no_comment_points_outside_the_collection(artifact):
    hits = []
    for name in artifact['files']:
        # README.md is the project's page (its sections have several authors): not checked here.
        if name in ('FILES.json', 'MANIFEST.json', 'COPYING', 'README.md'):
            continue
        with open(os.path.join(artifact['extracted'], name), encoding='utf-8', errors='replace') as handle:
            for number, line in enumerate(handle, 1):
                if OUTSIDE.search(line):
                    hits.append('%s:%d: %s' % (name, number, line.strip()))
    assert not hits, 'references to files outside the collection:\n' + '\n'.join(hits)


def test_dependencies_equal_used_collections(artifact):
    declared = set(artifact['manifest']['collection_info']['dependencies'])
    known = bundled_collections() | declared | CORE | {SELF}
    used = collections.defaultdict(set)
    unknown = collections.defaultdict(set)
    for name in artifact['files']:
        if not name.endswith(('.yml', '.yaml', '.py', '.j2')) or name.startswith('changelogs/'):
            continue
        path = os.path.join(artifact['extracted'], name)
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
        for line in text.splitlines():
            if name.endswith('.py') and re.match(r'\s*(from|import)\s', line):
                for match in PY_IMPORT.finditer(line):
                    used['%s.%s' % match.groups()].add(name)
                continue
            for match in FQCN.finditer(line):
                collection = '%s.%s' % match.groups()
                if collection in known:
                    used[collection].add(name)
        if name.endswith(('.yml', '.yaml')) and (name.startswith('playbooks/') or re.match(r'roles/[^/]+/(tasks|handlers)/', name)):
            for key in walk_keys(yaml.safe_load(text)):
                match = TASK_KEY.match(str(key))
                if match:
                    collection = '%s.%s' % match.groups()
                    used[collection].add(name)
                    if collection not in known:
                        unknown[collection].add(name)
    assert not unknown, 'tasks call collections that are neither declared nor installed: %s' % dict(unknown)
    undeclared = set(used) - declared - CORE - {SELF}
    unused = declared - set(used)
    print('\ncollections used by shipped content: %s' % ', '.join(
        '%s (%d files)' % (c, len(used[c])) for c in sorted(used)))
    assert not undeclared, 'used but not declared in galaxy.yml dependencies: %s' % {c: sorted(used[c]) for c in undeclared}
    assert not unused, 'declared in galaxy.yml but not used by shipped content: %s' % sorted(unused)


def test_dependencies_have_ranges_met_by_the_bundled_versions(artifact):
    from ansible.galaxy.dependency_resolution.versioning import meets_requirements
    purelib = sysconfig.get_paths()['purelib']
    for collection, spec in artifact['manifest']['collection_info']['dependencies'].items():
        assert spec not in ('*', '') and re.search(r'[<>=]', spec), '%s: %r is no version range' % (collection, spec)
        namespace, name = collection.split('.')
        with open(os.path.join(purelib, 'ansible_collections', namespace, name, 'MANIFEST.json'), encoding='utf-8') as handle:
            version = json.load(handle)['collection_info']['version']
        assert meets_requirements(version, spec), '%s %s does not meet %s' % (collection, version, spec)


def test_playbooks_by_fqcn(artifact, installed):
    names = sorted(os.path.basename(f)[:-4] for f in artifact['files'] if re.match(r'playbooks/[^/]+\.yml$', f))
    assert 'site' in names and 'switchover' in names, names
    fqcns = ['pgha.cluster.%s' % n for n in names]
    inventory = os.path.join(installed['root'], 'inventories', 'example')
    proc = run([os.path.join(BIN, 'ansible-playbook'), '--syntax-check', '-i', inventory] + fqcns,
               cwd=installed['cwd'], env=installed['env'])
    print('\nsyntax-check from %s: %s' % (installed['cwd'], ' '.join(fqcns)))
    assert 'ERROR' not in proc.stderr, proc.stderr


def test_ansible_doc_from_the_installed_collection(artifact, installed):
    modules = sorted('pgha.cluster.' + os.path.basename(f)[:-3] for f in artifact['files']
                     if re.match(r'plugins/modules/[^/_][^/]*\.py$', f))
    assert 'pgha.cluster.patroni_cluster_info' in modules
    proc = run([os.path.join(BIN, 'ansible-doc'), '--json'] + modules, cwd=installed['cwd'], env=installed['env'])
    docs = json.loads(proc.stdout)
    assert sorted(docs) == modules
    for module, doc in docs.items():
        # the installed copy, not this checkout
        assert doc['doc']['filename'].startswith(installed['root']), (module, doc['doc']['filename'])
    roles = sorted(os.path.basename(d) for d in glob.glob(os.path.join(installed['root'], 'roles', '*')))
    proc = run([os.path.join(BIN, 'ansible-doc'), '-t', 'role', '--json'] + ['pgha.cluster.' + r for r in roles],
               cwd=installed['cwd'], env=installed['env'])
    assert sorted(json.loads(proc.stdout)) == ['pgha.cluster.' + r for r in roles]


def test_changelog_lint():
    tool = shutil.which('antsibull-changelog', path=BIN + os.pathsep + os.environ.get('PATH', ''))
    if not tool:
        pytest.skip('antsibull-changelog is not installed (pip install antsibull-changelog); '
                    '`make sanity` runs its lint as the changelog test')
    run([tool, 'lint'], cwd=REPO, env=clean_env())
    run([tool, 'lint-changelog-yaml', os.path.join('changelogs', 'changelog.yaml')], cwd=REPO, env=clean_env())


def _groups(node, parent='all'):
    """{group: (children, hosts)} of a YAML inventory, hosts without their variables."""
    found = {parent: (sorted((node or {}).get('children') or {}), sorted((node or {}).get('hosts') or {}))}
    for name, child in ((node or {}).get('children') or {}).items():
        found.update(_groups(child, name))
    return found


def test_lab_ssh_inventory_has_the_example_shape():
    """The SSH lab (Molecule's installed-collection stage) is reached as the example tells users to
    reach their hosts: the same groups, the same connection variables; only names, addresses and the
    lab's own key and host-key settings differ."""
    def load(path):
        with open(os.path.join(REPO, 'inventories', path, 'hosts.yml'), encoding='utf-8') as handle:
            return yaml.safe_load(handle)['all']
    example, lab = load('example'), load('lab-ssh')
    rename = {'db1': 'pg1', 'db2': 'pg2', 'db3': 'pg3'}
    expected = {g: (c, sorted(rename.get(h, h) for h in hosts)) for g, (c, hosts) in _groups(example).items()}
    assert _groups(lab) == expected
    lab_only = {'ansible_ssh_private_key_file', 'ansible_ssh_common_args', 'lab_address_prefix'}
    assert {k: v for k, v in lab['vars'].items() if k not in lab_only} == example['vars']
    # The lab's cluster settings, file by file (ansible-test refuses links to directories).
    lab_vars = os.path.join(REPO, 'inventories', 'lab', 'group_vars')
    ssh_vars = os.path.join(REPO, 'inventories', 'lab-ssh', 'group_vars')
    assert sorted(os.listdir(ssh_vars)) == sorted(os.listdir(lab_vars))
    for name in os.listdir(ssh_vars):
        assert os.path.realpath(os.path.join(ssh_vars, name)) == os.path.join(lab_vars, name), name
