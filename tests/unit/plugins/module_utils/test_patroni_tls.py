# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Patroni client against a real fake Patroni served over HTTPS: a trusted CA works; a
missing CA file, a certificate from another CA, plain http against HTTPS and a wrong password
fail with messages that say what to do, and change nothing."""

import datetime
import ipaddress

import pytest

# cryptography comes with ansible-core (requirements.txt): a missing one is an error, not a skip.
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.pgha.cluster.plugins.module_utils import patroni as pu
from ansible_collections.pgha.cluster.plugins.modules import patroni_cluster_info, patroni_switchover
from ansible_collections.pgha.cluster.tests.unit.utils import conn_args, run_module


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name('pg1')).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _write(path, data):
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp('pki')
    ca_key, ca_cert = _ca('cluster CA')
    key, cert = _leaf(ca_key, ca_cert)
    _other_key, other_cert = _ca('another CA')
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {
        'ca': _write(d / 'ca.crt', ca_cert.public_bytes(pem)),
        'other_ca': _write(d / 'other.crt', other_cert.public_bytes(pem)),
        'cert': _write(d / 'server.crt', cert.public_bytes(pem)),
        'key': _write(d / 'server.key', key_pem),
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
