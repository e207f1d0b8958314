# -*- coding: utf-8 -*-
# Copyright (c) 2026, pgha.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process, the way community.general's unit tests do; load a
standalone script (bench/, roles/*/files/) as a module."""

import contextlib
import importlib.util
import io
import json
import os

import pytest

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
