#!/bin/sh
# Starts taskotron-trigger with the example config, submitting to the example master
# (start it first: examples/master/run.sh). State goes to $TASKOTRON_STATE (default .run/).
# Then, from another terminal, publish example messages:
#   target/debug/taskotron-trigger publish --endpoint tcp://127.0.0.1:9941 \
#       examples/trigger/messages/koji-build-complete.json
#   target/debug/taskotron-trigger publish --endpoint tcp://127.0.0.1:9941 \
#       --topic org.fedoraproject.prod.buildsys.tag examples/trigger/messages/koji-tag-pending.json
# With TASKOTRON_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2F it consumes fedora-messaging too:
#   target/debug/taskotron-trigger publish --amqp "$TASKOTRON_AMQP_URL" \
#       tests/fixtures/fedmsg/fedora-messaging.buildsys.build.state.change.complete.json
# or check what a message would do without running anything:
#   target/debug/taskotron-trigger check-rules --rules examples/trigger/trigger_rules.yml \
#       --message examples/trigger/messages/koji-build-complete.json
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${TASKOTRON_STATE:-$REPO/.run}
mkdir -p "$STATE/trigger"
STATE=$(cd "$STATE" && pwd)
[ -x "$REPO/target/debug/taskotron-trigger" ] || (cd "$REPO" && cargo build -p taskotron-trigger)
sed "s|@STATE@|$STATE|g" "$REPO/examples/trigger/trigger.yaml" > "$STATE/trigger.yaml"
if [ -n "${TASKOTRON_AMQP_URL:-}" ]; then
  printf 'amqp:\n  url: "%s"\n  queue: taskotron-trigger-example\n' "$TASKOTRON_AMQP_URL" >> "$STATE/trigger.yaml"
fi
cp "$REPO/examples/trigger/trigger_rules.yml" "$STATE/trigger_rules.yml"
exec "$REPO/target/debug/taskotron-trigger" run --config "$STATE/trigger.yaml"
