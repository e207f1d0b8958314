# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures: a real fake Patroni cluster and an in-process module runner."""

import os
import signal
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
LINK = os.path.join(REPO, '.collections', 'ansible_collections', 'pgha', 'cluster')
if not os.path.lexists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(os.path.join('..', '..', '..'), LINK)
if os.path.join(REPO, '.collections') not in sys.path:
    sys.path.insert(0, os.path.join(REPO, '.collections'))

from ansible_collections.pgha.cluster.plugins.module_utils import patroni as patroni_utils  # noqa: E402
from ansible_collections.pgha.cluster.tests.unit.fake_patroni import FakePatroni  # noqa: E402
from ansible_collections.pgha.cluster.tests.unit.fake_haproxy import FakeHAProxy  # noqa: E402

# Hard per-test limit so that nothing can hang the suite.
TEST_TIME_LIMIT = 30


@pytest.fixture(autouse=True)
def _time_limit():
    def expired(signum, frame):
        raise TimeoutError('test exceeded %ss' % TEST_TIME_LIMIT)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIME_LIMIT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch):
    monkeypatch.setattr(patroni_utils, 'POLL_INTERVAL', 0.05)


def _make(version, **kwargs):
    fake = FakePatroni(version=version, **kwargs).start()
    return fake


@pytest.fixture(params=['3.0.2', '4.0.7'])
def fake(request):
    """A running fake 3-member cluster, once per Patroni naming generation."""
    f = _make(request.param)
    yield f
    f.stop()


@pytest.fixture
def make_fake():
    made = []

    def factory(version='4.0.7', **kwargs):
        f = _make(version, **kwargs)
        made.append(f)
        return f
    yield factory
    for f in made:
        f.stop()


@pytest.fixture
def haproxy(tmp_path):
    """A fake HAProxy: stats page (HTTP, basic auth, admin form) and runtime API socket."""
    h = FakeHAProxy(socket_dir=tmp_path)
    yield h
    h.stop()
