# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The patroni_dcs_problems filter: Patroni's dynamic-configuration rules, for the timing check of
the patroni role. The rules live in module_utils so that patroni_config checks exactly the same ones."""

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_rules import dcs_config_problems


def patroni_dcs_problems(config, replicas=None, force=False):
    return dcs_config_problems(config, replicas=replicas, force=force)


class FilterModule(object):
    def filters(self):
        return {'patroni_dcs_problems': patroni_dcs_problems}
