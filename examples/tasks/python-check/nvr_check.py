"""Example check: is the item a name-version-release with a dist tag?"""
import os

from libtaskotron import check


def run(koji_build, artifactsdir='artifacts'):
    detail = check.CheckDetail(koji_build, check.ReportType.KOJI_BUILD,
                               checkname='python-check')
    detail.update_outcome('PASSED')
    parts = koji_build.rsplit('-', 2)
    if len(parts) != 3 or not all(parts):
        detail.update_outcome('FAILED')
        detail.note = 'not a name-version-release'
    elif '.fc' not in parts[2] and '.el' not in parts[2]:
        detail.update_outcome('INFO')
        detail.note = 'release has no dist tag'
    log = os.path.join(artifactsdir, 'nvr_check.log')
    with open(log, 'w') as f:
        f.write('name=%s version=%s release=%s\n' % tuple((parts + ['', '', ''])[:3]))
    detail.artifact = log
    detail.store('checked %s: %s' % (koji_build, detail.outcome))
    return check.export_YAML(detail)
