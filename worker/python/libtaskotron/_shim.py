"""Runs one ``python`` directive call for runtask (not for use by tasks).

Usage: ``python3 -m libtaskotron._shim REQUEST.json RESULT.json``. The request holds ``file``,
``callable`` and ``kwargs``; the file is imported as a module (its directory first on
``sys.path``), the callable is called with the kwargs, and ``{"ok": true, "value": ...}`` or
``{"ok": false, "error": ..., "traceback": ...}`` is written to RESULT.json. The task's own
stdout/stderr go to runtask's log.
"""

import importlib.util
import json
import os
import sys
import traceback


def _jsonable(value):
    from libtaskotron.check import CheckDetail, _to_dict
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    if isinstance(value, dict):
        return dict((str(k), _jsonable(v)) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, CheckDetail):
        return _jsonable(_to_dict(value))
    return str(value)


def _call(request):
    path = os.path.abspath(request['file'])
    if not os.path.isfile(path):
        raise IOError('python file %s does not exist' % path)
    sys.path.insert(0, os.path.dirname(path))
    name = os.path.splitext(os.path.basename(path))[0].replace('-', '_')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    func = getattr(module, request['callable'], None)
    if not callable(func):
        raise AttributeError('%s has no callable named %r' % (path, request['callable']))
    return func(**request['kwargs'])


def main():
    request_path, result_path = sys.argv[1], sys.argv[2]
    with open(request_path) as f:
        request = json.load(f)
    try:
        result = {'ok': True, 'value': _jsonable(_call(request))}
    except BaseException as e:  # report everything, including SystemExit, to runtask
        result = {'ok': False, 'error': '%s: %s' % (type(e).__name__, e),
                  'traceback': traceback.format_exc()}
    sys.stdout.flush()
    with open(result_path, 'w') as f:
        json.dump(result, f)


if __name__ == '__main__':
    main()
