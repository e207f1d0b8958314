# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Patroni client against a real fake Patroni served over HTTPS: a trusted CA works; a
missing CA file, a certificate from another CA, plain http against HTTPS and a wrong password
fail with messages that say what to do, and change nothing."""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils import patroni as pu
from ansible_collections.pgha.cluster.plugins.modules import patroni_cluster_info, patroni_switchover
from ansible_collections.pgha.cluster.tests.unit.utils import conn_args, make_ca, make_leaf, run_module, write_pem


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp('pki')
    ca_key, ca_cert = make_ca('cluster CA')
    key, cert = make_leaf(ca_key, ca_cert)
    other_cert = make_ca('another CA')[1]
    return {
        'ca': write_pem(d / 'ca.crt', ca_cert),
        'other_ca': write_pem(d / 'other.crt', other_cert),
        'cert': write_pem(d / 'server.crt', cert),
        'key': write_pem(d / 'server.key', key),
    }


@pytest.fixture
def tls_fake(make_fake, pki):
    return make_fake('4.0.7', tls=(pki['cert'], pki['key']))


def test_trusted_ca_reads_and_switches_over(tls_fake, pki):
    c = pu.PatroniClient(tls_fake.urls, username='patroni', password='secret', ca_path=pki['ca'], timeout=2)
    assert all(u.startswith('https://') for u in tls_fake.urls)
    assert pu.fetch_cluster(c).leader_name == 'pg1'
    c.switchover('pg1', 'pg2')
    assert tls_fake.leader == 'pg2'


def test_missing_ca_file_fails_before_any_request(tls_fake, tmp_path):
    with pytest.raises(pu.PatroniError, match=r'ca_path .*nosuch\.crt does not exist') as e:
        pu.PatroniClient(tls_fake.urls, ca_path=str(tmp_path / 'nosuch.crt'))
    assert e.value.kind == 'tls'
    assert tls_fake.requests == []


def test_certificate_from_another_ca_is_refused(tls_fake, pki):
    c = pu.PatroniClient(tls_fake.urls, username='patroni', password='secret', ca_path=pki['other_ca'], timeout=2)
    with pytest.raises(pu.PatroniError, match='TLS certificate of https://127.0.0.1:[0-9]+/switchover cannot be '
                                              'verified .*set ca_path to the CA') as e:
        c.switchover('pg1', 'pg2')
    assert e.value.kind == 'tls'
    assert tls_fake.leader == 'pg1'
    assert tls_fake.requests == []   # refused in the handshake: the request never reached Patroni


def test_plain_http_against_https_says_so(tls_fake, pki):
    urls = [u.replace('https://', 'http://') for u in tls_fake.urls]
    with pytest.raises(pu.PatroniError, match=r'use https:// URLs and ca_path'):
        pu.PatroniClient(urls, ca_path=pki['ca'], timeout=2).cluster()


def test_wrong_password_over_tls_is_401_and_changes_nothing(tls_fake, pki):
    c = pu.PatroniClient(tls_fake.urls, username='patroni', password='wrong', ca_path=pki['ca'], timeout=2)
    with pytest.raises(pu.PatroniError, match='authentication failed: set api_username/api_password') as e:
        c.switchover('pg1', 'pg2')
    assert e.value.status == 401 and tls_fake.leader == 'pg1'


def test_switchover_module_with_another_ca_fails_clearly(tls_fake, pki):
    r = run_module(patroni_switchover, conn_args(tls_fake, candidate='pg2', ca_path=pki['other_ca']))
    assert r['rc'] == 1 and 'cannot be verified' in r['msg'] and 'set ca_path' in r['msg'], r
    assert tls_fake.leader == 'pg1'


def test_cluster_info_module_with_missing_ca_fails_clearly(tls_fake, tmp_path):
    r = run_module(patroni_cluster_info, conn_args(tls_fake, ca_path=str(tmp_path / 'missing-ca.crt')))
    assert r['rc'] == 1 and 'missing-ca.crt does not exist' in r['msg'], r
