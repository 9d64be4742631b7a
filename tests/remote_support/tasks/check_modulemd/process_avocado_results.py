"""Turn the avocado job results into ResultYAML. Same signature as check_modulemd's
process_avocado_results.run(item, item_type, checkname, workdir='.', artifactsdir='artifacts')."""
import json
import os
import shutil

from libtaskotron import check


def run(item, item_type, checkname, workdir='.', artifactsdir='artifacts'):
    with open(os.path.join(workdir, 'latest', 'results.json')) as f:
        results = json.load(f)
    detail = check.CheckDetail(item, item_type, checkname=checkname)
    detail.update_outcome('PASSED')
    failed = [t for t in results['tests'] if t['status'] != 'PASS']
    for t in failed:
        detail.update_outcome('FAILED')
        detail.store('%s: %s' % (t['test'], t['fail_reason']), printout=False)
    detail.note = '%d of %d tests failed' % (len(failed), len(results['tests']))
    log = os.path.join(artifactsdir, 'avocado-results.json')
    shutil.copy(os.path.join(workdir, 'latest', 'results.json'), log)
    detail.artifact = log
    return check.export_YAML(detail)
