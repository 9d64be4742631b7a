"""Publishes messages to RabbitMQ with the real fedora-messaging library (and raw pika for
messages fedora-messaging would refuse to build), for the trigger's AMQP tests.

usage: fm_publish.py AMQP_URL SPEC.json

SPEC is a JSON list of actions, run in order:
  {"file": PATH}                         fedora-messaging dumps() file(s) -> message.loads() -> api.publish
  {"publish": {"topic": T, "body": {...}, "id": ID?}}   a fresh Message -> api.publish
  {"raw": {"topic": T, "body": TEXT, "content_type": CT?, "message_id": ID?}}  pika basic_publish

Prints "published N" when done.
"""

import json
import os
import sys
import tempfile


def main():
    url, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    conf = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    conf.write('amqp_url = "%s"\npublish_exchange = "amq.topic"\n' % url)
    conf.close()
    os.environ["FEDORA_MESSAGING_CONF"] = conf.name

    # Imported after the config path is set: fedora_messaging reads it on import.
    from fedora_messaging import api, message
    import pika

    count = 0
    raw_channel = None
    for action in spec:
        if "file" in action:
            with open(action["file"]) as f:
                for msg in message.loads(f.read()):
                    api.publish(msg)
                    count += 1
        elif "publish" in action:
            p = action["publish"]
            msg = message.Message(topic=p["topic"], body=p["body"])
            if p.get("id"):
                msg.id = p["id"]
            api.publish(msg)
            count += 1
        elif "raw" in action:
            r = action["raw"]
            if raw_channel is None:
                raw_channel = pika.BlockingConnection(pika.URLParameters(url)).channel()
                raw_channel.confirm_delivery()
            props = pika.BasicProperties(
                content_type=r.get("content_type", "application/json"),
                content_encoding="utf-8",
                delivery_mode=2,
                message_id=r.get("message_id"),
                headers={"fedora_messaging_schema": r.get("schema", "base.message")},
            )
            raw_channel.basic_publish("amq.topic", r["topic"], r["body"].encode(), props)
            count += 1
        else:
            raise SystemExit("unknown action %r" % (action,))
    os.unlink(conf.name)
    print("published %d" % count, flush=True)


if __name__ == "__main__":
    main()
