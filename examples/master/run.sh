#!/bin/sh
# Starts a local master and one local worker with the example tasks (examples/tasks/*).
# State (database, artifacts, mirrors, worker basedir) goes to $TASKOTRON_STATE (default .run/).
# Stop with Ctrl-C. Submit a job from another terminal:
#   curl -d project=rpmcheck -d category=x86_64 \
#        --data-urlencode 'properties={"taskname":"hello-shell","item":"hello-1.0-1.fc40","item_type":"koji_build","arch":"x86_64","uuid":"demo-1"}' \
#        http://127.0.0.1:8010/change_hook
#   curl -s 'http://127.0.0.1:8010/api/v2/builds?property=uuid'
#   curl -s http://127.0.0.1:8010/artifacts/demo-1/
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${TASKOTRON_STATE:-$REPO/.run}
BIN=$REPO/target/debug
(cd "$REPO" && cargo build --workspace --bins)
mkdir -p "$STATE/tasks"
STATE=$(cd "$STATE" && pwd)

# Each example task becomes a git repository the master can mirror.
for dir in "$REPO"/examples/tasks/*/; do
    name=$(basename "$dir")
    dst="$STATE/tasks/$name"
    rm -rf "$dst"
    cp -r "$dir" "$dst"
    git -C "$dst" init -q -b master
    git -C "$dst" add -A
    git -C "$dst" -c user.name=taskotron -c user.email=taskotron@localhost commit -qm "example task $name"
done

sed "s|@STATE@|$STATE|g; s|@REPO@|$REPO|g" "$REPO/examples/master/master.yaml" > "$STATE/master.yaml"
printf 'report_to_resultsdb: false\nartifactsdir: %s/runtask-artifacts\ntmpdir: %s/runtask-tmp\n' "$STATE" "$STATE" > "$STATE/taskotron.yaml"
if [ ! -d "$STATE/worker" ]; then
    "$BIN/taskotron-worker" create-worker "$STATE/worker" 127.0.0.1:9989 local1 local1-pw --arch x86_64
fi

"$BIN/taskotron-master" --config "$STATE/master.yaml" run &
MASTER=$!
trap 'kill $MASTER ${WORKER:-} 2>/dev/null; wait' EXIT INT TERM
i=0
until curl -sf http://127.0.0.1:8010/healthz >/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "master did not start" >&2; exit 1; }
    sleep 0.2
done
PATH="$BIN:$PATH" "$BIN/taskotron-worker" start "$STATE/worker" &
WORKER=$!
echo "master: http://127.0.0.1:8010 (REST: /api/v2/builds, artifacts: /artifacts/<uuid>/)"
wait $MASTER
