# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The keepalived_problems filter: what is wrong with the balancers' VRRP settings, checked
before anything changes (site.yml's fact play and the keepalived role)."""

import ipaddress


def _vip_problems(b, reserved):
    """reserved: (host, address) pairs."""
    problems = []
    name = b.get('host', '?')
    try:
        vip = ipaddress.IPv4Address(str(b.get('vip', '')).strip())
    except ValueError:
        return ['%s: keepalived_virtual_ip %r is not an IPv4 address' % (name, b.get('vip'))]
    try:
        network = ipaddress.IPv4Interface('%s/%s' % (b.get('address'), b.get('prefix'))).network
    except ValueError:
        return ['%s: cannot tell the subnet of interface %s (address %r, prefix %r); set keepalived_interface'
                % (name, b.get('interface'), b.get('address'), b.get('prefix'))]
    if vip not in network or vip in (network.network_address, network.broadcast_address):
        problems.append('%s: keepalived_virtual_ip %s is outside the subnet %s of interface %s; the address '
                        'must be a free host address of the balancers\' own subnet'
                        % (name, vip, network, b.get('interface')))
    owners = sorted({h for h, a in reserved if str(a) == str(vip)})
    if owners:
        problems.append('%s: keepalived_virtual_ip %s is the address of %s; choose a free address'
                        % (name, vip, ', '.join(owners)))
    return problems


def _integer(value):
    """value as an int when keepalived.conf would read it as one (an int or a string of digits; not
    51.5, 51.0 or True, which the template writes as they are), else None."""
    if isinstance(value, (bool, float)):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def keepalived_problems(balancers, reserved=None):
    """One message per problem of the balancers' settings (a list of dicts with keys host,
    address, prefix, interface, vip, router_id, priority, vrrp_version, advert_int,
    auth_pass_length); reserved maps other hosts to their addresses."""
    reserved = dict(reserved or {})
    problems = []
    if not balancers:
        return ['keepalived needs at least one balancer host']
    # the balancers' addresses on their VRRP interface are taken too (reserved has the hosts'
    # default addresses: another interface's are not there)
    taken = list(reserved.items()) + [(b.get('host', '?'), b.get('address')) for b in balancers if b.get('address')]
    for b in balancers:
        name = b.get('host', '?')
        problems.extend(_vip_problems(b, taken))
        router_id = _integer(b.get('router_id'))
        if router_id is None or not 1 <= router_id <= 255:
            problems.append('%s: keepalived_virtual_router_id %r must be an integer from 1 to 255'
                            % (name, b.get('router_id')))
        priority = _integer(b.get('priority'))
        if priority is None or not 1 <= priority <= 254:
            problems.append('%s: keepalived_priority %r must be an integer from 1 to 254 (255 is reserved '
                            'for the owner of the address)' % (name, b.get('priority')))
        version = str(b.get('vrrp_version'))
        try:
            advert = float(b.get('advert_int'))
        except (TypeError, ValueError):
            advert = None
        if version == '2':
            if advert is None or not advert.is_integer() or not 1 <= advert <= 255:
                problems.append('%s: keepalived_advert_int %r: VRRP version 2 sends whole seconds from 1 to 255 '
                                '(use keepalived_vrrp_version 3 for sub-second adverts)' % (name, b.get('advert_int')))
            length = int(b.get('auth_pass_length') or 0)
            if not 1 <= length <= 8:
                problems.append('%s: VRRP version 2 authenticates with keepalived_auth_pass, 1 to 8 characters '
                                '(it has %d); set it in a vault' % (name, length))
        elif version == '3':
            if advert is None or not 0.01 <= advert <= 40.95:
                problems.append('%s: keepalived_advert_int %r: VRRP version 3 sends from 0.01 to 40.95 seconds'
                                % (name, b.get('advert_int')))
        else:
            problems.append('%s: keepalived_vrrp_version %r must be 2 or 3' % (name, b.get('vrrp_version')))
    for key, var in (('vip', 'keepalived_virtual_ip'), ('router_id', 'keepalived_virtual_router_id'),
                     ('vrrp_version', 'keepalived_vrrp_version'), ('advert_int', 'keepalived_advert_int')):
        values = sorted({str(b.get(key)) for b in balancers})
        if len(values) > 1:
            problems.append('%s differs between the balancers (%s); it must be the same on all of them'
                            % (var, ', '.join('%s=%s' % (b.get('host'), b.get(key)) for b in balancers)))
    priorities = [str(b.get('priority')) for b in balancers]
    duplicates = sorted({p for p in priorities if priorities.count(p) > 1})
    if duplicates:
        problems.append('keepalived_priority must differ between the balancers (%s); equal priorities '
                        'leave the choice to the address order' % ', '.join(
                            '%s=%s' % (b.get('host'), b.get('priority')) for b in balancers))
    return problems


class FilterModule(object):
    def filters(self):
        return {'keepalived_problems': keepalived_problems}
