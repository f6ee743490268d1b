"""Creates topics the moment a new cluster's processes are started (run by tests/kafka_clients.rs).

A new cluster's controller quorum elects for a second or two, and its brokers register after
that. Both admin clients (confluent-kafka, kafka-python) must get their topic created within the
request's timeout, not a timeout or an error: the broker's Kafka listener accepts connections once
the broker is registered, and retries a creation its controller refused as not active. One
replica each, so that one registered broker is enough. Prints `RESULT ok` and how long each took.
"""

import argparse
import sys
import time

from confluent_kafka.admin import AdminClient, NewTopic
import kafka.admin


def fail(msg):
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic")
    ap.add_argument("--partitions", type=int)
    a = ap.parse_args()
    started = time.monotonic()
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    for topic, f in admin.create_topics([NewTopic("early-confluent", 2, 1)],
                                        operation_timeout=30).items():
        try:
            f.result(timeout=60)
        except Exception as e:
            fail(f"confluent-kafka: creating {topic} at start: {e!r}")
    print(f"OK confluent-kafka created early-confluent after "
          f"{time.monotonic() - started:.1f} s", flush=True)
    started = time.monotonic()
    kp = kafka.admin.KafkaAdminClient(bootstrap_servers=a.bootstrap.split(","),
                                      request_timeout_ms=60000)
    try:
        kp.create_topics([kafka.admin.NewTopic("early-kafka-python", 1, 1)], timeout_ms=30000)
    except Exception as e:
        fail(f"kafka-python: creating early-kafka-python at start: {e!r}")
    print(f"OK kafka-python created early-kafka-python after "
          f"{time.monotonic() - started:.1f} s", flush=True)
    md = admin.list_topics(timeout=30)
    for t in ["early-confluent", "early-kafka-python"]:
        if t not in md.topics or md.topics[t].error is not None:
            fail(f"{t} is not in the metadata: {sorted(md.topics)}")
    print("RESULT ok", flush=True)


if __name__ == "__main__":
    main()
