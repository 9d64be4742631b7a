"""python-versions check, written for the tests: does a binary RPM require Python 2 and 3?

Same callable signature as the real task (fedora-python/taskotron-python-versions):
run(koji_build, workdir='.', artifactsdir='artifacts').
"""
import glob
import os
import subprocess

from libtaskotron import check

PY2 = ('python(abi) = 2.', 'python2', '/usr/bin/python2', 'libpython2')
PY3 = ('python(abi) = 3.', 'python3', '/usr/bin/python3', 'libpython3')


def requires(path):
    out = subprocess.check_output(['rpm', '-qp', '--requires', path],
                                  universal_newlines=True)
    return [line.strip() for line in out.splitlines() if line.strip()]


def run(koji_build, workdir='.', artifactsdir='artifacts'):
    rpms = sorted(glob.glob(os.path.join(workdir, '*.rpm')))
    binary = [p for p in rpms if not p.endswith('.src.rpm')]
    logs = sorted(glob.glob(os.path.join(workdir, 'build.log.*')))
    bad = {}
    for path in binary:
        reqs = requires(path)
        two = [r for r in reqs if r.startswith(PY2)]
        three = [r for r in reqs if r.startswith(PY3)]
        if two and three:
            bad[os.path.basename(path)] = two + three

    detail = check.CheckDetail(koji_build, check.ReportType.KOJI_BUILD,
                               checkname='python-versions.two_three')
    detail.keyvals['rpms'] = len(rpms)
    detail.keyvals['srpms'] = len(rpms) - len(binary)
    detail.keyvals['build_logs'] = len(logs)
    if not binary:
        detail.update_outcome('NEEDS_INSPECTION')
        detail.note = 'no binary RPMs downloaded'
    elif bad:
        detail.update_outcome('FAILED')
        detail.note = '%d of %d RPMs require Python 2 and 3' % (len(bad), len(binary))
    else:
        detail.update_outcome('PASSED')

    log = os.path.join(artifactsdir, 'python-versions.two_three.log')
    with open(log, 'w') as f:
        for name in sorted(os.path.basename(p) for p in rpms):
            f.write('checked %s\n' % name)
        for name, reqs in sorted(bad.items()):
            f.write('BAD %s: %s\n' % (name, ', '.join(reqs)))
    detail.artifact = log
    return check.export_YAML(detail)
