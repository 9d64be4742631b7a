"""Results of checks: ``CheckDetail``, ``ReportType`` and the ResultYAML format.

Same API and semantics as libtaskotron's ``check`` module (ResultYAML: a mapping with a
``results`` list; reserved keys ``item, type, outcome, note, results, checkname, artifact,
_internal``; every other key of a result is a keyval).
"""

import collections
import json

from libtaskotron.exceptions import TaskotronValueError

try:
    import yaml
except ImportError:  # pragma: no cover - fallback for interpreters without PyYAML
    yaml = None

RESERVED_KEYS = ('item', 'type', 'outcome', 'note', 'results', 'checkname', 'artifact',
                 '_internal')


class ReportType(object):
    """Known item types (``runtask -t``)."""
    BODHI_UPDATE = 'bodhi_update'
    COMPOSE = 'compose'
    DIST_GIT_COMMIT = 'dist_git_commit'
    DOCKER_IMAGE = 'docker_image'
    GIT_COMMIT = 'git_commit'
    KOJI_BUILD = 'koji_build'
    KOJI_TAG = 'koji_tag'
    MODULE_BUILD = 'module_build'
    PULL_REQUEST = 'pull_request'

    @classmethod
    def list(cls):
        """All item type values, sorted."""
        return sorted(v for k, v in vars(cls).items()
                      if k.isupper() and isinstance(v, str))


class CheckDetail(object):
    """The result of checking one item."""

    #: outcomes from least to most severe
    outcome_priority = ('PASSED', 'INFO', 'FAILED', 'NEEDS_INSPECTION', 'ABORTED', 'CRASHED')

    def __init__(self, item, report_type=None, outcome=None, note='', output=None,
                 keyvals=None, checkname=None, artifact=None):
        if keyvals is not None and not isinstance(keyvals, dict):
            raise TaskotronValueError("'keyvals' must be a mapping, not %s" % type(keyvals))
        self.item = item
        self.report_type = report_type
        self._outcome = None  # unset reads as NEEDS_INSPECTION
        if outcome:
            self.outcome = outcome
        self.note = note
        self.output = output if output is not None else []
        self.keyvals = keyvals if keyvals is not None else {}
        self.checkname = checkname
        self.artifact = artifact
        self._internal = {}

    @property
    def outcome(self):
        """PASSED, INFO, FAILED, NEEDS_INSPECTION, ABORTED or CRASHED (unset: NEEDS_INSPECTION)."""
        return self._outcome or 'NEEDS_INSPECTION'

    @outcome.setter
    def outcome(self, value):
        if value not in self.outcome_priority:
            raise TaskotronValueError('Unknown outcome keyword: %s (allowed: %s)'
                                      % (value, ', '.join(self.outcome_priority)))
        self._outcome = value

    def update_outcome(self, outcome):
        """Set ``outcome`` only if it is more severe than the current one (None: no-op)."""
        if self.cmp_outcome(outcome, self._outcome) > 0:
            self.outcome = outcome

    def broken(self):
        """True when the check itself broke (ABORTED or CRASHED)."""
        return self.outcome in ('ABORTED', 'CRASHED')

    def store(self, message, printout=True):
        """Append a line to ``output`` (and print it)."""
        self.output.append(message)
        if printout:
            print(message)

    @classmethod
    def cmp_outcome(cls, outcome1, outcome2):
        """-1/0/1 when outcome1 is less/equally/more severe than outcome2 (None = lowest)."""
        for o in (outcome1, outcome2):
            if o is not None and o not in cls.outcome_priority:
                raise TaskotronValueError('Unknown outcome keyword: %s' % o)

        def rank(o):
            return -1 if o is None else cls.outcome_priority.index(o)
        r1, r2 = rank(outcome1), rank(outcome2)
        return (r1 > r2) - (r1 < r2)

    @classmethod
    def create_multi_item_summary(cls, outcomes):
        """``'3 PASSED, 1 INFO, 2 FAILED'`` from outcomes or CheckDetails."""
        if isinstance(outcomes, (CheckDetail, str)):
            outcomes = [outcomes]
        names = [o.outcome if isinstance(o, CheckDetail) else o for o in outcomes]
        counts = collections.Counter(names)
        return ', '.join('%d %s' % (counts[o], o) for o in cls.outcome_priority if counts[o])

    def __repr__(self):
        return '<CheckDetail item=%r type=%r outcome=%r checkname=%r>' % (
            self.item, self.report_type, self.outcome, self.checkname)


def _to_dict(detail):
    event = {'item': detail.item, 'outcome': detail.outcome}
    if detail.report_type:
        event['type'] = detail.report_type
    if detail.note:
        event['note'] = detail.note
    if detail.checkname:
        event['checkname'] = detail.checkname
    if detail.artifact:
        event['artifact'] = detail.artifact
    if detail._internal:
        event['_internal'] = detail._internal
    for key, value in detail.keyvals.items():
        if key in RESERVED_KEYS:
            print('Keyval %r uses a reserved name; it is not exported' % key)
            continue
        event[key] = value
    return event


def export_YAML(check_details):
    """ResultYAML text for one CheckDetail or a list of them."""
    if isinstance(check_details, CheckDetail):
        check_details = [check_details]
    for detail in check_details:
        if not detail.item:
            raise TaskotronValueError('CheckDetail.item is empty for: %r' % detail)
    data = {'results': [_to_dict(d) for d in check_details]}
    if yaml is None:
        # JSON is valid YAML; used only when PyYAML is not installed.
        return json.dumps(data, indent=2, sort_keys=True) + '\n'
    return yaml.safe_dump(data, indent=2, allow_unicode=True, default_flow_style=False)


def import_YAML(source):
    """A list of CheckDetails from ResultYAML text."""
    if not source:
        raise TaskotronValueError('Failed to parse YAML contents: empty input')
    try:
        data = yaml.safe_load(source) if yaml is not None else json.loads(source)
    except Exception as e:
        raise TaskotronValueError('Failed to load YAML: %s' % e)
    if not isinstance(data, dict):
        raise TaskotronValueError('Structure of the YAML is not as expected: not a mapping')
    if 'results' not in data:
        raise TaskotronValueError('Structure of the YAML is not as expected: no "results" key')
    if not data['results']:
        return []
    if not isinstance(data['results'], list):
        raise TaskotronValueError('Structure of the YAML is not as expected: '
                                  '"results" is not a list')
    details = []
    for result in data['results']:
        if not isinstance(result, dict):
            raise TaskotronValueError('Structure of the YAML is not as expected: '
                                      'a result is not a mapping')
        detail = CheckDetail(item=result.get('item'), report_type=result.get('type'),
                             outcome=result.get('outcome'), note=result.get('note') or '',
                             checkname=result.get('checkname'),
                             artifact=result.get('artifact'))
        detail.keyvals = dict((k, v) for k, v in result.items() if k not in RESERVED_KEYS)
        detail._internal = result.get('_internal') or {}
        details.append(detail)
    return details
