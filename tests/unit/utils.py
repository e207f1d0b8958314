# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process, the way community.general's unit tests do; load a
standalone script (bench/, roles/*/files/) as a module; make a CA and certificates for TLS tests."""

import contextlib
import datetime
import importlib.util
import io
import ipaddress
import json
import os
import socket
import socketserver
import ssl
import sys
from http.server import ThreadingHTTPServer

import pytest

# cryptography comes with ansible-core (requirements.txt): a missing one is an error, not a skip.
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible.module_utils.testing import patch_module_args


class ModuleResult(dict):
    @property
    def failed(self):
        return bool(self.get('failed'))


def run_module(module, args, check_mode=False, diff=False):
    """Run a module's main() in-process with ``args``; return its JSON result as a dict."""
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit) as exc:
            module.main()
    text = out.getvalue()
    try:
        result = ModuleResult(json.loads(text))
    except ValueError:
        raise AssertionError('module printed no JSON: %r' % text)
    result['rc'] = exc.value.code
    return result


@contextlib.contextmanager
def silent_listener():
    """The URL of a port on 127.0.0.1 that accepts TCP connections (the kernel's queue) but never
    answers: a request there waits for its timeout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(('127.0.0.1', 0))
        sock.listen(16)
        yield 'http://127.0.0.1:%d' % sock.getsockname()[1]
    finally:
        sock.close()


def conn_args(fake, **extra):
    args = dict(api_url=fake.urls, api_username='patroni', api_password='secret', timeout=2)
    args.update(extra)
    return args


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def load_script(relative_path, module_name):
    """Import a script of this repository that is not a package module (e.g. a file name with dashes)."""
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(REPO, relative_path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn):
    """A self-signed CA valid for 30 days: (private key, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca_key, ca_cert, cn='pg1', ips=('127.0.0.1',)):
    """A certificate signed by the CA for the IP addresses `ips` (no extended key usage: good for a
    server and a client alike): (private key, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def write_pem(path, obj):
    """Write a certificate or a private key (unencrypted PKCS#8) to `path` (a pathlib.Path) as PEM;
    returns the path as a string."""
    pem = serialization.Encoding.PEM
    if isinstance(obj, x509.Certificate):
        data = obj.public_bytes(pem)
    else:
        data = obj.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(data)
    return str(path)


class LocalHTTPServer(ThreadingHTTPServer):
    """http.server for tests on 127.0.0.1: no host name lookup on bind, and a client that gives up
    mid-request (timeout tests, a refused TLS handshake) is expected, not printed."""
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind() resolves the host name with getfqdn(), which can be slow
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            super().handle_error(request, client_address)
