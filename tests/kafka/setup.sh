#!/usr/bin/env bash
# Installs the real Kafka clients the Kafka-listener test drives, once: confluent-kafka (a wheel
# bundling librdkafka), kafka-python and aiokafka in a virtual environment under target/, kafkajs
# and kafka-console (on @platformatic/kafka) with npm under target/kafka-node, and kcat from apt. Fails loudly: the test must never skip
# because a client is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Say which step failed: some installers are quiet even when they fail.
trap 'echo "error: tests/kafka/setup.sh: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR
# Tests run in parallel and several of them need the clients: one installer at a time, the
# others wait and then find everything in place (concurrent pip/npm/apt runs corrupt each other).
mkdir -p target
exec 9>target/kafka-setup.lock
flock 9
venv=target/kafka-venv
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import confluent_kafka, kafka, aiokafka' 2>/dev/null; }; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || {
    echo "error: python3 -m venv failed; install python3-venv (apt-get install -y python3-venv)" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet confluent-kafka==2.16.1 kafka-python==3.0.12 aiokafka==0.12.0
fi
node_dir=target/kafka-node
if [ ! -f "$node_dir/node_modules/kafkajs/package.json" ] \
  || [ ! -f "$node_dir/node_modules/kafka-console/package.json" ]; then
  command -v npm >/dev/null 2>&1 || {
    echo "error: npm is not installed; the kafkajs check needs Node.js (apt-get install -y nodejs npm)" >&2
    exit 1
  }
  mkdir -p "$node_dir"
  npm install --loglevel=error --no-audit --no-fund --prefix "$node_dir" kafkajs@2.2.4 \
    kafka-console@3.1.55 >/dev/null
fi
if ! command -v kcat >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq kcat >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null && apt-get install -y -qq kcat >/dev/null
    }
  fi
  command -v kcat >/dev/null 2>&1 || {
    echo "error: kcat is not installed and could not be installed (apt-get install -y kcat)" >&2
    exit 1
  }
fi
"$venv/bin/python" -c 'import confluent_kafka, kafka, aiokafka; print("clients: confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion()[0], "kafka-python", kafka.__version__, "aiokafka", aiokafka.__version__)'
echo "clients: kafkajs $(node -p "require('./$node_dir/node_modules/kafkajs/package.json').version") on node $(node --version)"
echo "clients: kafka-console $(node -p "require('./$node_dir/node_modules/kafka-console/package.json').version") on @platformatic/kafka $(node -p "require('./$node_dir/node_modules/@platformatic/kafka/package.json').version")"
kcat -V | grep -o 'librdkafka [0-9.]*' | sed 's/^/clients: kcat with /'
