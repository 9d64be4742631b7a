"""A real fedmsg 1.1.7 publisher for the trigger's end-to-end tests.

It runs fedmsg in active mode (its PUB socket connects to the trigger's bound SUB, like a
fedmsg-relay inbound), waits for a line "go" on stdin, publishes, prints "done", and keeps the
socket open until stdin closes so nothing is lost to an early close.

Usage: python fedmsg_publish.py RELAY_ENDPOINT SPEC_JSON
SPEC_JSON is a file with a list of actions:
  {"raw": "<path to an envelope file>"}            send the file's exact bytes as frame 2
  {"body": "<envelope JSON text>"}                 send that text as frame 2
  {"publish": {"modname": m, "topic": t, "msg": {...}}, "certname": optional}
        call fedmsg.publish (signed with certname from ssldir when given)
A top-level {"ssldir": path} entry (first element) enables signing.
"""
import json
import os
import socket
import sys

import fedmsg

relay, spec_path = sys.argv[1], sys.argv[2]
with open(spec_path) as f:
    spec = json.load(f)
ssldir = None
if spec and "ssldir" in spec[0]:
    ssldir = spec.pop(0)["ssldir"]

# fedmsg's legacy loader only reads config files (./fedmsg.d/*.py); give it the minimum.
os.makedirs("fedmsg.d", exist_ok=True)
with open(os.path.join("fedmsg.d", "trigger_test.py"), "w") as f:
    f.write("config = dict(endpoints={'unused.local': []}, relay_inbound=%r)\n" % relay)

shorthost = socket.gethostname().split(".")[0]
config = dict(
    active=True, name="relay_inbound", relay_inbound=relay, topic_prefix="org.fedoraproject",
    # high_water_mark=0 makes fedmsg leave libzmq's default send HWM (1,000 messages): a
    # burst larger than that may be dropped by this publisher if the subscriber lags.
    environment="prod", post_init_sleep=0.5, high_water_mark=0, zmq_linger=5000,
    sign_messages=False, validate_signatures=False,
)
if ssldir:
    config.update(sign_messages=True, crypto_backend="x509", ssldir=ssldir,
                  certnames={"shell." + shorthost: "trigger-test.localdomain"})
fedmsg.init(**config)
context = getattr(fedmsg.__dict__["__local"], "__context")

print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "go":
        break

for action in spec:
    if "raw" in action or "body" in action:
        if "raw" in action:
            body = open(action["raw"], "rb").read().strip()
        else:
            body = action["body"].encode("utf-8")
        topic = json.loads(body)["topic"].encode("utf-8")
        context.publisher.send_multipart([topic, body])
    else:
        p = action["publish"]
        if action.get("certname"):
            context.c["certnames"]["shell." + shorthost] = action["certname"]
        fedmsg.publish(modname=p["modname"], topic=p["topic"], msg=p["msg"])
print("done", flush=True)
sys.stdin.read()
fedmsg.destroy()
