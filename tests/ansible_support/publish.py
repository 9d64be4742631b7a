"""Publishes one fedmsg message on a bound ZeroMQ PUB socket, again every half second until
killed: a SUB socket that connects later (ZeroMQ's slow joiner) still gets it, and the trigger
drops the repeats by msg_id.

usage: publish.py tcp://127.0.0.1:PORT MESSAGE.json
"""
import json
import sys
import time

import zmq

endpoint, path = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    body = f.read().strip()
topic = json.loads(body)["topic"].encode()

sock = zmq.Context.instance().socket(zmq.PUB)
sock.bind(endpoint)
print("publishing", topic.decode(), "on", endpoint, flush=True)
while True:
    sock.send_multipart([topic, body])
    time.sleep(0.5)
