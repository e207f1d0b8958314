#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: patroni_config
short_description: Read and change the dynamic (DCS) configuration of a Patroni cluster
version_added: 0.1.0
description:
  - Reads the dynamic configuration with C(GET /config) and changes it with C(PATCH /config).
  - Only the keys given in O(settings) are compared (recursively); the module reports a change and sends the
    PATCH only when at least one value differs. A V(null) value removes the key.
  - Scalars are compared by their text, so V(200) and V('200') are equal, as they are for PostgreSQL.
  - Without O(settings) the module only returns the configuration.
  - Before it sends anything (in check mode too) it checks the merged result, the current configuration with
    O(settings) applied, against Patroni's rules and fails, naming the rule and the values, when one is broken
    - V(ttl) >= 20, V(loop_wait) >= 1, V(retry_timeout) >= 3, V(loop_wait) + 2 x V(retry_timeout) <= V(ttl)
    (absent keys count with Patroni's defaults 30, 10 and 10), V(maximum_lag_on_failover) >= 0,
    V(synchronous_node_count) between 1 and the number of replicas, V(synchronous_mode) one of V(true),
    V(false), V(on), V(off), V(quorum), and only Patroni's known top-level keys in O(settings) unless O(force).
    The patroni role asserts the same rules at provisioning.
options:
  settings:
    description:
      - "Nested dictionary merged into the dynamic configuration, for example
        C({loop_wait: 10, postgresql: {parameters: {max_connections: 200}}})."
      - A V(null) value removes that key.
    type: dict
  force:
    description:
      - Accept top-level keys of O(settings) that are not among Patroni's known dynamic configuration keys
        (a key of a newer Patroni, for instance). Every other rule still applies.
    type: bool
    default: false
  state:
    description:
      - V(present) makes sure O(settings) are part of the configuration.
    type: str
    choices: [present]
    default: present
extends_documentation_fragment:
  - pgha.cluster.patroni
attributes:
  check_mode:
    support: full
    description: Computes the change and the diff, sends nothing.
  diff_mode:
    support: full
    description: Shows the configuration before and after.
author:
  - pgha.cluster maintainers (@pgha-cluster)
'''

EXAMPLES = r'''
- name: Raise max_connections and drop an obsolete parameter
  pgha.cluster.patroni_config:
    api_url: [http://pg1:8008, http://pg2:8008, http://pg3:8008]
    api_username: patroni
    api_password: "{{ patroni_restapi_password }}"
    settings:
      postgresql:
        parameters:
          max_connections: 200
          old_setting: null
  register: cfg

- name: Restart the members that need it
  pgha.cluster.patroni_restart:
    api_url: [http://pg1:8008, http://pg2:8008, http://pg3:8008]
    api_username: patroni
    api_password: "{{ patroni_restapi_password }}"
    pending_only: true
  when: cfg.pending_restart | length > 0

- name: Only read the configuration
  pgha.cluster.patroni_config:
    api_url: http://pg1:8008
  register: current
'''

RETURN = r'''
config:
  description: The dynamic configuration after the change (the expected one in check mode).
  returned: always
  type: dict
  sample: {"loop_wait": 10, "ttl": 30, "postgresql": {"parameters": {"max_connections": 200}}}
changes:
  description: The part of O(settings) that differed and was (or would be) sent with PATCH.
  returned: always
  type: dict
problems:
  description: The rules the merged configuration breaks, one message each (only when the module refused).
  returned: failure
  type: list
  elements: str
pending_restart:
  description:
    - Members that report a pending restart after the change. Patroni applies a change within C(loop_wait)
      seconds, so a restart need may show up a little later.
  returned: always
  type: list
  elements: str
'''

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pgha.cluster.plugins.module_utils.patroni import (
    PATRONI_REQUIRED_TOGETHER,
    PatroniClient,
    PatroniError,
    fetch_cluster,
    patroni_argument_spec,
)
from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rules import dcs_config_problems


def _scalar_equal(a, b):
    if a == b:
        return True
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)) or a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        truthy = ('true', 'on', 'yes', '1')
        falsy = ('false', 'off', 'no', '0')
        sa, sb = str(a).lower(), str(b).lower()
        return (sa in truthy and sb in truthy) or (sa in falsy and sb in falsy)
    return str(a) == str(b)


def compute_changes(current, desired):
    """Return the subset of ``desired`` that differs from ``current`` (``None`` means remove)."""
    changes = {}
    for key, want in desired.items():
        have_key = isinstance(current, dict) and key in current
        have = current.get(key) if isinstance(current, dict) else None
        if want is None:
            if have_key:
                changes[key] = None
        elif isinstance(want, dict):
            if isinstance(have, dict):
                sub = compute_changes(have, want)
                if sub:
                    changes[key] = sub
            else:
                changes[key] = want
        elif not have_key or not _scalar_equal(have, want):
            changes[key] = want
    return changes


def merge(current, changes):
    """Patroni's PATCH semantic: nested merge, ``None`` removes the key."""
    result = copy.deepcopy(current) if isinstance(current, dict) else {}
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        elif isinstance(value, dict):
            result[key] = merge({}, value)
        else:
            result[key] = value
    return result


def main():
    argument_spec = patroni_argument_spec()
    argument_spec.update(
        settings=dict(type='dict'),
        force=dict(type='bool', default=False),
        state=dict(type='str', default='present', choices=['present']),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_together=PATRONI_REQUIRED_TOGETHER,
                           supports_check_mode=True)
    settings = module.params['settings'] or {}
    result = dict(changed=False, changes={}, config={}, pending_restart=[])
    try:
        client = PatroniClient.from_module(module)
        before = client.config()
    except PatroniError as e:
        module.fail_json(msg='cannot read the Patroni dynamic configuration: %s' % e, **result)

    if settings:
        # The merged result is what Patroni would run with: check it before anything is sent.
        wanted = merge(before, settings)
        replicas = None
        if 'synchronous_node_count' in wanted:
            try:
                replicas = len(fetch_cluster(client).replicas)
            except PatroniError as e:
                module.warn('could not count the replicas (GET /cluster: %s); synchronous_node_count is checked '
                            'only against its lower bound' % e)
        problems = dcs_config_problems(wanted, replicas=replicas, force=module.params['force'],
                                       keys=[k for k, v in settings.items() if v is not None])
        if problems:
            module.fail_json(msg='refusing the dynamic configuration change, nothing was sent: %s'
                                 % '; '.join(problems), problems=problems, **result)

    changes = compute_changes(before, settings)
    expected = merge(before, changes)
    result.update(changes=changes, config=expected)
    if changes:
        result['changed'] = True
        if module._diff:
            result['diff'] = dict(before=before, after=expected)

    if changes and not module.check_mode:
        try:
            client.patch_config(changes)
            after = client.config()
        except PatroniError as e:
            if e.status == 401:
                module.fail_json(msg='cannot change the Patroni configuration: %s' % e, **result)
            module.fail_json(msg='cannot change the Patroni configuration: %s; the change may be partly applied, '
                                 'check it with GET /config' % e, **result)
        left = compute_changes(after, changes)
        result['config'] = after
        if module._diff:
            result['diff'] = dict(before=before, after=after)
        if left:
            module.fail_json(msg='Patroni accepted the PATCH but GET /config still differs for: %s' % left, **result)

    try:
        state = fetch_cluster(client)
        result['pending_restart'] = [m['name'] for m in state.members if m['pending_restart']]
    except PatroniError as e:
        module.warn('could not read pending restarts from GET /cluster: %s' % e)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
