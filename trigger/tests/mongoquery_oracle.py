"""The oracle for trigger/tests/mongoquery_differential.rs: the real mongoquery (PyPI 1.4.3,
the library Taskotron's trigger matched rules with).

stdin: JSON lines {"q": query, "d": document}; stdout: one line per case, "true", "false" or
"error:<exception type>".
"""

import json
import sys

from mongoquery import Query

for line in sys.stdin:
    case = json.loads(line)
    try:
        answer = "true" if Query(case["q"]).match(case["d"]) else "false"
    except Exception as e:  # mongoquery raises QueryError, TypeError, ... for some inputs
        answer = "error:" + type(e).__name__
    sys.stdout.write(answer + "\n")
