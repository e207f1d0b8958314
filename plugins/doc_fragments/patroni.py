# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment(object):
    """Connection options shared by every Patroni module."""

    DOCUMENTATION = r'''
options:
  api_url:
    description:
      - Base URLs of the Patroni REST API of one or more cluster members, for example V(http://10.0.0.11:8008).
      - A trailing C(/patroni) is accepted and ignored.
      - Read-only requests are tried on the next URL when a member is unreachable, times out, answers 5xx or
        returns malformed JSON. Changing requests are only retried on the next URL when the connection could
        not be established at all.
      - Proxy settings from the environment are not used.
    type: list
    elements: str
    default: ['http://127.0.0.1:8008']
  api_username:
    description:
      - User name for HTTP basic authentication (Patroni C(restapi.authentication.username)).
      - Sent only with changing requests (POST, PATCH), which Patroni protects.
    type: str
  api_password:
    description:
      - Password for HTTP basic authentication (Patroni C(restapi.authentication.password)).
    type: str
  ca_path:
    description:
      - PEM file of the CA that signed the Patroni REST API certificates.
    type: path
  client_cert:
    description:
      - PEM client certificate, for a REST API that requires client certificates.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert).
    type: path
  validate_certs:
    description:
      - Whether to validate the TLS certificates of the REST API.
    type: bool
    default: true
  timeout:
    description:
      - Timeout in seconds of every single HTTP request.
    type: float
    default: 10.0
notes:
  - Works with Patroni 3.0 (which calls the leader V(master) and reports replicas as V(running)) and Patroni 4.x
    (V(primary), replicas V(streaming)); roles and states are normalised and the raw values returned as well.
'''
