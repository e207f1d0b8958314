# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The keepalived_problems filter: the balancers' VRRP settings as the keepalived role's
keepalived_balancers builds them (one dict per balancer), checked before anything changes."""

import copy

import pytest

from ansible_collections.pgha.cluster.plugins.filter.keepalived_problems import FilterModule, keepalived_problems

LB1 = {'host': 'lb1', 'interface': 'eth0', 'address': '10.0.0.21', 'prefix': 24, 'vip': '10.0.0.20',
       'router_id': 51, 'priority': 200, 'vrrp_version': 3, 'advert_int': 0.3, 'auth_pass_length': 0}
LB2 = dict(LB1, host='lb2', address='10.0.0.22', priority=190)
# every inventory host's default address (keepalived_reserved_addresses)
RESERVED = {'pg1': '10.0.0.11', 'pg2': '10.0.0.12', 'pg3': '10.0.0.13', 'lb1': '10.0.0.21', 'lb2': '10.0.0.22'}
SUBNET_ADVICE = 'the address must be a free host address of the balancers\' own subnet'


def balancers(**settings):
    """lb1 and lb2, both with `settings` (as a group_vars setting reaches every balancer)."""
    return [dict(copy.deepcopy(LB1), **settings), dict(copy.deepcopy(LB2), **settings)]


def problems(bals, reserved=None):
    return keepalived_problems(bals, reserved=RESERVED if reserved is None else reserved)


def both(message):
    """The message of a per-balancer problem, once for lb1 and once for lb2."""
    return [message % 'lb1', message % 'lb2']


# ---------------------------------------------------------------------------------------------
# acceptable settings

def test_two_balancers_as_the_role_builds_them():
    assert problems(balancers()) == []
    assert problems(balancers(), reserved={}) == []
    assert keepalived_problems(balancers()) == []    # reserved defaults to none


@pytest.mark.parametrize('settings', [
    {'vrrp_version': 3, 'advert_int': 0.01},
    {'vrrp_version': 3, 'advert_int': 40.95},
    {'vrrp_version': 3, 'advert_int': 1},
    {'vrrp_version': '3', 'advert_int': '0.3'},          # strings, as inventory values may come
    {'vrrp_version': 2, 'advert_int': 1, 'auth_pass_length': 8},
    {'vrrp_version': 2, 'advert_int': 255, 'auth_pass_length': 1},
    {'vrrp_version': '2', 'advert_int': '3', 'auth_pass_length': 6},
    {'vrrp_version': 2, 'advert_int': 2.0, 'auth_pass_length': 4},
    {'router_id': 1}, {'router_id': 255}, {'router_id': '51'},
    {'vip': ' 10.0.0.20 '},                              # stripped
    {'vip': '10.0.0.1'}, {'vip': '10.0.0.254'},          # the first and last host addresses
    {'prefix': '24'},
    {'vrrp_version': 3, 'auth_pass_length': 12},         # version 3 ignores the password
])
def test_acceptable_settings(settings):
    assert problems(balancers(**settings)) == [], settings


def test_acceptable_priorities():
    bals = balancers()
    bals[0]['priority'], bals[1]['priority'] = 254, 1
    assert problems(bals) == []
    bals[0]['priority'], bals[1]['priority'] = '150', 100
    assert problems(bals) == []


def test_one_balancer_and_three():
    assert problems([copy.deepcopy(LB1)]) == []
    lb3 = dict(LB1, host='lb3', address='10.0.0.23', priority=180)
    assert problems(balancers() + [lb3], dict(RESERVED, lb3='10.0.0.23')) == []


def test_a_balancer_on_another_subnet_length():
    # the VIP is checked against each balancer's own subnet: a /28 around the addresses is fine
    assert problems(balancers(prefix=28)) == []   # 10.0.0.16/28: .17 to .30
    assert problems(balancers(prefix=28, vip='10.0.0.30')) == []


def test_the_filter_is_exposed():
    assert FilterModule().filters() == {'keepalived_problems': keepalived_problems}


# ---------------------------------------------------------------------------------------------
# the client address

@pytest.mark.parametrize('vip', ['10.0.0.300', '', None, 'lb-vip.example.com', '10.0.0.20/24', 'fe80::20',
                                 '010.0.0.20'])
def test_vip_not_an_ipv4_address(vip):
    assert problems(balancers(vip=vip)) == both('%%s: keepalived_virtual_ip %r is not an IPv4 address' % (vip,))


def test_vip_missing():
    bals = balancers()
    for b in bals:
        del b['vip']
    assert problems(bals) == both('%s: keepalived_virtual_ip None is not an IPv4 address')


@pytest.mark.parametrize('address,prefix', [
    ('', 24), ('10.0.0.21', ''), (None, None), ('10.0.0.21', 33), ('eth0', 24)])
def test_subnet_unknown(address, prefix):
    bals = balancers()
    bals[0].update(address=address, prefix=prefix)
    assert problems(bals) == ['lb1: cannot tell the subnet of interface eth0 (address %r, prefix %r); set '
                              'keepalived_interface' % (address, prefix)]


@pytest.mark.parametrize('vip,prefix,network', [
    ('10.0.1.20', 24, '10.0.0.0/24'),
    ('192.168.0.20', 24, '10.0.0.0/24'),
    ('10.0.0.40', 28, '10.0.0.16/28'),
    ('10.0.0.0', 24, '10.0.0.0/24'),          # the network address
    ('10.0.0.255', 24, '10.0.0.0/24'),        # the broadcast address
    ('10.0.0.16', 28, '10.0.0.16/28'),
    ('10.0.0.31', 28, '10.0.0.16/28'),
])
def test_vip_outside_the_subnet_or_not_a_host_address(vip, prefix, network):
    assert problems(balancers(vip=vip, prefix=prefix)) == both(
        '%%s: keepalived_virtual_ip %s is outside the subnet %s of interface eth0; %s' % (vip, network, SUBNET_ADVICE))


def test_vip_outside_one_balancers_subnet():
    bals = balancers()
    bals[1].update(address='10.0.1.22', interface='ens4')
    assert problems(bals) == ['lb2: keepalived_virtual_ip 10.0.0.20 is outside the subnet 10.0.1.0/24 of interface '
                              'ens4; ' + SUBNET_ADVICE]


@pytest.mark.parametrize('vip,owner', [('10.0.0.11', 'pg1'), ('10.0.0.13', 'pg3'), ('10.0.0.22', 'lb2'),
                                       ('10.0.0.21', 'lb1')])
def test_vip_is_a_hosts_address(vip, owner):
    assert problems(balancers(vip=vip)) == both(
        '%%s: keepalived_virtual_ip %s is the address of %s; choose a free address' % (vip, owner))


def test_vip_is_the_address_of_several_hosts():
    reserved = dict(RESERVED, backup='10.0.0.11')
    assert problems(balancers(vip='10.0.0.11'), reserved) == both(
        '%s: keepalived_virtual_ip 10.0.0.11 is the address of backup, pg1; choose a free address')


def test_vip_is_a_balancers_vrrp_address_on_another_interface():
    # the VRRP interface is not the default one: reserved has the balancers' default addresses
    # (192.168.1.x), not their VRRP ones; a VIP equal to lb2's VRRP address is taken all the same
    bals = balancers(interface='ens4', vip='10.0.0.22')
    reserved = dict(RESERVED, lb1='192.168.1.21', lb2='192.168.1.22')
    assert problems(bals, reserved) == both(
        '%s: keepalived_virtual_ip 10.0.0.22 is the address of lb2; choose a free address')
    assert problems(balancers(interface='ens4'), reserved) == []


def test_vip_outside_the_subnet_and_taken():
    got = problems(balancers(vip='10.0.5.1'), dict(RESERVED, dns='10.0.5.1'))
    assert got == [
        'lb1: keepalived_virtual_ip 10.0.5.1 is outside the subnet 10.0.0.0/24 of interface eth0; ' + SUBNET_ADVICE,
        'lb1: keepalived_virtual_ip 10.0.5.1 is the address of dns; choose a free address',
        'lb2: keepalived_virtual_ip 10.0.5.1 is outside the subnet 10.0.0.0/24 of interface eth0; ' + SUBNET_ADVICE,
        'lb2: keepalived_virtual_ip 10.0.5.1 is the address of dns; choose a free address']


# ---------------------------------------------------------------------------------------------
# router id and priority

@pytest.mark.parametrize('router_id', [0, 256, -1, 'abc', '', None, '51.5', 51.5, 51.0, True, [51]])
def test_router_id_not_an_integer_from_1_to_255(router_id):
    assert problems(balancers(router_id=router_id)) == both(
        '%%s: keepalived_virtual_router_id %r must be an integer from 1 to 255' % (router_id,))


@pytest.mark.parametrize('priority', [0, 255, 300, -5, 'high', '', None, 150.5, 150.0, True])
def test_priority_not_an_integer_from_1_to_254(priority):
    bals = balancers()
    bals[0]['priority'] = priority
    assert problems(bals) == ['lb1: keepalived_priority %r must be an integer from 1 to 254 (255 is reserved for '
                              'the owner of the address)' % (priority,)]


# ---------------------------------------------------------------------------------------------
# VRRP version and advert interval

V2_ADVERT = ('%%s: keepalived_advert_int %r: VRRP version 2 sends whole seconds from 1 to 255 (use '
             'keepalived_vrrp_version 3 for sub-second adverts)')


@pytest.mark.parametrize('advert', [0.3, 1.5, '2.5', 0, 256, -1, 'fast', '', None, float('inf'), float('nan'),
                                    'inf', 'nan'])
def test_version_2_advert_not_whole_seconds_from_1_to_255(advert):
    assert problems(balancers(vrrp_version=2, advert_int=advert, auth_pass_length=8)) == both(V2_ADVERT % (advert,))


@pytest.mark.parametrize('length', [0, 9, 40, None])
def test_version_2_auth_pass_missing_or_too_long(length):
    assert problems(balancers(vrrp_version=2, advert_int=1, auth_pass_length=length)) == both(
        '%%s: VRRP version 2 authenticates with keepalived_auth_pass, 1 to 8 characters (it has %d); set it in a '
        'vault' % (length or 0))


def test_version_2_with_the_version_3_defaults():
    # switching to version 2 without changing the advert interval nor setting a password
    assert problems(balancers(vrrp_version=2)) == [
        V2_ADVERT % 0.3 % 'lb1',
        'lb1: VRRP version 2 authenticates with keepalived_auth_pass, 1 to 8 characters (it has 0); set it in a vault',
        V2_ADVERT % 0.3 % 'lb2',
        'lb2: VRRP version 2 authenticates with keepalived_auth_pass, 1 to 8 characters (it has 0); set it in a vault']


@pytest.mark.parametrize('advert', [0, 0.001, 0.009, 41, 40.96, 300, -0.3, 'fast', '', None, 'inf'])
def test_version_3_advert_out_of_range(advert):
    assert problems(balancers(advert_int=advert)) == both(
        '%%s: keepalived_advert_int %r: VRRP version 3 sends from 0.01 to 40.95 seconds' % (advert,))


@pytest.mark.parametrize('version', [1, 4, 0, None, 'three', '', 3.0, 'v3'])
def test_bad_version(version):
    assert problems(balancers(vrrp_version=version)) == both(
        '%%s: keepalived_vrrp_version %r must be 2 or 3' % (version,))


# ---------------------------------------------------------------------------------------------
# across the balancers

@pytest.mark.parametrize('key,var,value', [
    ('vip', 'keepalived_virtual_ip', '10.0.0.30'),
    ('router_id', 'keepalived_virtual_router_id', 52),
    ('advert_int', 'keepalived_advert_int', 0.5),
    ('advert_int', 'keepalived_advert_int', 1),
])
def test_values_differing_between_the_balancers(key, var, value):
    bals = balancers()
    bals[1][key] = value
    assert problems(bals) == ['%s differs between the balancers (lb1=%s, lb2=%s); it must be the same on all of '
                              'them' % (var, LB1[key], value)]


def test_version_differing_between_the_balancers():
    bals = balancers(advert_int=1, auth_pass_length=8)
    bals[1]['vrrp_version'] = 2
    assert problems(bals) == ['keepalived_vrrp_version differs between the balancers (lb1=3, lb2=2); it must be '
                              'the same on all of them']


def test_several_values_differing():
    bals = balancers()
    bals[1].update(vip='10.0.0.30', router_id=52)
    assert problems(bals) == [
        'keepalived_virtual_ip differs between the balancers (lb1=10.0.0.20, lb2=10.0.0.30); it must be the same '
        'on all of them',
        'keepalived_virtual_router_id differs between the balancers (lb1=51, lb2=52); it must be the same on all '
        'of them']


@pytest.mark.parametrize('p1,p2', [(200, 200), ('150', 150), (100, '100')])
def test_duplicate_priorities(p1, p2):
    bals = balancers()
    bals[0]['priority'], bals[1]['priority'] = p1, p2
    assert problems(bals) == ['keepalived_priority must differ between the balancers (lb1=%s, lb2=%s); equal '
                              'priorities leave the choice to the address order' % (p1, p2)]


def test_duplicate_priorities_among_three():
    lb3 = dict(LB1, host='lb3', address='10.0.0.23', priority=190)
    assert problems(balancers() + [lb3]) == [
        'keepalived_priority must differ between the balancers (lb1=200, lb2=190, lb3=190); equal priorities '
        'leave the choice to the address order']


@pytest.mark.parametrize('bals', [[], None, ()])
def test_no_balancer(bals):
    assert keepalived_problems(bals) == ['keepalived needs at least one balancer host']
    assert keepalived_problems(bals, reserved=RESERVED) == ['keepalived needs at least one balancer host']


def test_every_problem_at_once():
    bals = balancers()
    bals[0].update(vip='10.0.0.11', router_id=0, priority=190, vrrp_version=2, advert_int=0.5)
    bals[1].update(vip='10.0.1.20', advert_int=50)
    assert problems(bals) == [
        'lb1: keepalived_virtual_ip 10.0.0.11 is the address of pg1; choose a free address',
        'lb1: keepalived_virtual_router_id 0 must be an integer from 1 to 255',
        V2_ADVERT % 0.5 % 'lb1',
        'lb1: VRRP version 2 authenticates with keepalived_auth_pass, 1 to 8 characters (it has 0); set it in a vault',
        'lb2: keepalived_virtual_ip 10.0.1.20 is outside the subnet 10.0.0.0/24 of interface eth0; ' + SUBNET_ADVICE,
        'lb2: keepalived_advert_int 50: VRRP version 3 sends from 0.01 to 40.95 seconds',
        'keepalived_virtual_ip differs between the balancers (lb1=10.0.0.11, lb2=10.0.1.20); it must be the same on '
        'all of them',
        'keepalived_virtual_router_id differs between the balancers (lb1=0, lb2=51); it must be the same on all of '
        'them',
        'keepalived_vrrp_version differs between the balancers (lb1=2, lb2=3); it must be the same on all of them',
        'keepalived_advert_int differs between the balancers (lb1=0.5, lb2=50); it must be the same on all of them',
        'keepalived_priority must differ between the balancers (lb1=190, lb2=190); equal priorities leave the '
        'choice to the address order']


def test_the_documented_example():
    # plugins/filter/keepalived_problems.yml's EXAMPLES
    bal = {'host': 'lb1', 'address': '10.0.0.21', 'prefix': 24, 'interface': 'eth0', 'vip': '10.0.1.20',
           'router_id': 51, 'priority': 200, 'vrrp_version': 3, 'advert_int': 0.3, 'auth_pass_length': 0}
    assert keepalived_problems([bal], reserved={'db1': '10.0.0.11'}) == [
        'lb1: keepalived_virtual_ip 10.0.1.20 is outside the subnet 10.0.0.0/24 of interface eth0; ' + SUBNET_ADVICE]
