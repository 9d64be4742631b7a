"""modulemd validity checks (written for the tests), run by the test `avocado` runner.

Reads the file given as run:modulemd and checks the fields a module document needs."""
import json

try:
    import yaml
    load = yaml.safe_load
except ImportError:  # the test documents are JSON, which is YAML too
    load = json.load

REQUIRED_DATA = ('summary', 'description', 'license')


def checks(path):
    """[(test name, passed, reason)]"""
    with open(path) as f:
        doc = load(f)
    out = []
    out.append(('test_document', isinstance(doc, dict) and doc.get('document') == 'modulemd',
                'document is not modulemd'))
    out.append(('test_version', isinstance(doc, dict) and doc.get('version') in (1, 2),
                'unsupported version'))
    data = doc.get('data', {}) if isinstance(doc, dict) else {}
    for key in REQUIRED_DATA:
        out.append(('test_%s' % key, bool(data.get(key)), 'data.%s is missing' % key))
    return out
