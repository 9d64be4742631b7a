"""A real fedmsg 1.1.7 subscriber for the trigger's `publish` test.

Usage: python fedmsg_tail.py ENDPOINT CA_CERT COUNT
Connects to ENDPOINT with fedmsg.tail_messages, prints one JSON line per message
({topic, msg_id, msg, valid}) where `valid` is fedmsg.crypto.validate against CA_CERT, and exits
after COUNT messages. Prints "ready" first.
"""
import json
import os
import sys

import fedmsg
import fedmsg.crypto

endpoint, ca, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
# fedmsg's legacy loader only reads config files (./fedmsg.d/*.py).
os.makedirs("fedmsg.d", exist_ok=True)
with open(os.path.join("fedmsg.d", "tail_test.py"), "w") as f:
    f.write("config = dict(endpoints={'rust.publisher': [%r]})\n" % endpoint)
print("ready", flush=True)
seen = 0
for name, ep, topic, msg in fedmsg.tail_messages(
        topic_prefix="org.fedoraproject", environment="prod", validate_signatures=False,
        zmq_reconnect_ivl=100, zmq_reconnect_ivl_max=200):
    valid = bool(msg.get("signature")) and fedmsg.crypto.validate(
        msg, ca_cert_location=ca, crl_location=None, crypto_validate_backends=["x509"])
    print(json.dumps({"topic": topic, "msg_id": msg.get("msg_id"), "msg": msg.get("msg"),
                      "valid": valid}), flush=True)
    seen += 1
    if seen >= count:
        break
