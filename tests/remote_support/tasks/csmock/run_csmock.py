"""Static analysis of a downloaded SRPM, written for the tests. Same signature as the 2014
csmock task's run_csmock.run(workdir, koji_build, koji_build_dict, koji_tag=None); it reads
koji_build_dict['downloaded_rpms'][0] like the real one, runs `csmock` (the test stand-in on
PATH unpacks the SRPM and scans the spec), and returns ResultYAML (the 2014 task used TAP)."""
import os
import subprocess

from libtaskotron import check


def run(workdir, koji_build, koji_build_dict, koji_tag=None):
    srpm = koji_build_dict['downloaded_rpms'][0]
    if not srpm.endswith('.src.rpm'):
        raise ValueError('expected an SRPM first, got %s' % srpm)
    out = subprocess.run(['csmock', '-o', os.path.join(workdir, 'csmock.txt'), srpm],
                         universal_newlines=True, stdout=subprocess.PIPE)
    with open(os.path.join(workdir, 'csmock.txt')) as f:
        defects = [line for line in f.read().splitlines() if line.startswith('Error:')]
    detail = check.CheckDetail(koji_build, check.ReportType.KOJI_BUILD, checkname='csmock')
    detail.update_outcome('FAILED' if defects else 'PASSED')
    detail.note = '%d defects' % len(defects)
    detail.keyvals['srpm'] = os.path.basename(srpm)
    detail.keyvals['exit'] = out.returncode
    return check.export_YAML(detail)
