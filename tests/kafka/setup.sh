#!/usr/bin/env bash
# Installs the real Kafka clients the Kafka-listener test drives, once: confluent-kafka (a wheel
# bundling librdkafka), kafka-python and aiokafka in a virtual environment under target/, kafkajs
# and kafka-console (on @platformatic/kafka) with npm under target/kafka-node, kcat from apt,
# rskafka (Rust, from crates.io) built into target/kafka-rust, and sarama (Go, Debian's package
# with Go itself from apt) built into target/kafka-go. Fails loudly: the test must never skip
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
# rskafka: a small check program of our own (tests/kafka/rskafka_check), its own workspace with a
# committed lock file; cargo makes this a no-op when nothing changed. Never the outer build's
# target directory, which the running `cargo test` holds, nor the flags or target triple a
# caller's environment may set for the project's own build.
env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u CARGO_BUILD_TARGET \
  cargo build --quiet --locked --manifest-path tests/kafka/rskafka_check/Cargo.toml \
  --target-dir target/kafka-rust
# sarama: Debian packages it (and its dependencies) as Go sources under /usr/share/gocode, built
# in GOPATH mode (the Go module proxy is not needed).
sarama_src=/usr/share/gocode/src/github.com/Shopify/sarama
if ! command -v go >/dev/null 2>&1 || [ ! -d "$sarama_src" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq golang-go golang-github-shopify-sarama-dev >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null || true
      apt-get install -y -qq golang-go golang-github-shopify-sarama-dev >/dev/null || true
    }
  fi
  command -v go >/dev/null 2>&1 && [ -d "$sarama_src" ] || {
    echo "error: Go and sarama are not installed and could not be (apt-get install -y golang-go golang-github-shopify-sarama-dev)" >&2
    exit 1
  }
fi
mkdir -p target/kafka-go
# cgo warnings from a dependency's bundled C are noise: show the output only if the build fails.
go_log=target/kafka-go/build.log
# sarama's zstd binding is cgo; module mode and inherited Go flags would break the GOPATH build.
GO111MODULE=off GOFLAGS= CGO_ENABLED=1 GOPATH="$PWD/target/kafka-go:/usr/share/gocode" \
  GOCACHE="$PWD/target/kafka-go/cache" go build -o target/kafka-go/sarama-check ./tests/kafka/sarama_check/ >"$go_log" 2>&1 || {
  cat "$go_log" >&2
  exit 1
}
"$venv/bin/python" -c 'import confluent_kafka, kafka, aiokafka; print("clients: confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion()[0], "kafka-python", kafka.__version__, "aiokafka", aiokafka.__version__)'
echo "clients: kafkajs $(node -p "require('./$node_dir/node_modules/kafkajs/package.json').version") on node $(node --version)"
echo "clients: kafka-console $(node -p "require('./$node_dir/node_modules/kafka-console/package.json').version") on @platformatic/kafka $(node -p "require('./$node_dir/node_modules/@platformatic/kafka/package.json').version")"
kcat -V | grep -o 'librdkafka [0-9.]*' | sed 's/^/clients: kcat with /'
echo "clients: rskafka $(sed -n 's/^rskafka = "\(.*\)"/\1/p' tests/kafka/rskafka_check/Cargo.toml), sarama $(dpkg-query -W -f='${Version}' golang-github-shopify-sarama-dev 2>/dev/null) on $(go version | cut -d' ' -f3)"
