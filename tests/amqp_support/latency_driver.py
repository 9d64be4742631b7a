"""Publishes one Koji build message at a time on request, with the real fedmsg 1.1.7 (active,
like a relay inbound, to the trigger's bound SUB) or the real fedora-messaging 3.9.1 (to
RabbitMQ), and prints the wall-clock time just before each publish. For the side-by-side
latency measurement in tests/trigger_amqp_bench.rs.

usage: latency_driver.py RELAY_ENDPOINT AMQP_URL
stdin: lines "fedmsg I" or "amqp I"; stdout: "ready", then one "<unix time>" per line.
"""

import os
import socket
import sys
import tempfile
import time

relay, url = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp()
os.chdir(work)
conf = os.path.join(work, "fm.toml")
with open(conf, "w") as f:
    f.write('amqp_url = "%s"\npublish_exchange = "amq.topic"\n' % url)
os.environ["FEDORA_MESSAGING_CONF"] = conf
os.makedirs("fedmsg.d", exist_ok=True)
with open(os.path.join("fedmsg.d", "bench.py"), "w") as f:
    f.write("config = dict(endpoints={'unused.local': []}, relay_inbound=%r)\n" % relay)

import fedmsg  # noqa: E402
from fedora_messaging import api, message  # noqa: E402

fedmsg.init(active=True, name="relay_inbound", relay_inbound=relay,
            topic_prefix="org.fedoraproject", environment="prod", post_init_sleep=0.5,
            zmq_linger=1000, sign_messages=False, validate_signatures=False)
TOPIC = "org.fedoraproject.prod.buildsys.build.state.change"


def body(i):
    return {"build_id": i, "instance": "primary", "name": "pkg%d" % i, "new": 1, "old": 0,
            "owner": "x", "release": "1.fc40", "version": "1.0", "epoch": None, "task": None}


print("ready", flush=True)
for line in sys.stdin:
    bus, i = line.split()
    i = int(i)
    if bus == "fedmsg":
        t0 = time.time()
        fedmsg.publish(modname="buildsys", topic="build.state.change", msg=body(i))
    else:
        msg = message.Message(topic=TOPIC, body=body(i))
        t0 = time.time()
        api.publish(msg)
    print("%.6f" % t0, flush=True)
fedmsg.destroy()
