"""More Kafka clients against a seedlog cluster's Kafka listeners (run by tests/kafka_clients.rs,
after clients.py, on the same cluster and topic).

- confluent-kafka reading with `assign` (no group membership) commits offsets, seeks back and
  forth, and a new consumer of the same group resumes at the committed offset;
- kafka-python and aiokafka consumer groups (each with its own default assignors, computed by the
  group's leader member) read the topic, commit, and a restarted member resumes with nothing
  left to read; aiokafka produces idempotently first.

Exits non-zero with a message on any mismatch; prints `RESULT ok` at the end.
"""

import argparse
import asyncio
import sys
import time

from confluent_kafka import OFFSET_STORED, Consumer, TopicPartition
import aiokafka
import kafka


def fail(msg):
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


def poll_offsets(c, n, timeout=30):
    """The offsets of the next `n` records `c` (confluent-kafka) reads."""
    got, deadline = [], time.time() + timeout
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail(f"confluent-kafka: {m.error()}")
        got.append(m.offset())
    return got


def check_assign_commit(bootstrap, topic):
    """A consumer outside any group generation commits, seeks, and is resumed by another."""
    group = "ci-assign-commit"
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    c = Consumer(conf)
    c.assign([TopicPartition(topic, 0, 0)])
    first = poll_offsets(c, 6)
    if first != list(range(6)):
        fail(f"assign: read offsets {first}, expected 0..5")
    # Seek back, then forth.
    c.seek(TopicPartition(topic, 0, 2))
    back = poll_offsets(c, 2)
    c.seek(TopicPartition(topic, 0, 9))
    forth = poll_offsets(c, 1)
    if back != [2, 3] or forth != [9]:
        fail(f"seek: back to 2 read {back}, forth to 9 read {forth}")
    c.commit(offsets=[TopicPartition(topic, 0, 10, metadata="ci-checkpoint")],
             asynchronous=False)
    c.close()
    d = Consumer(conf)
    committed = d.committed([TopicPartition(topic, 0)], timeout=10)[0]
    if (committed.offset, committed.metadata) != (10, "ci-checkpoint"):
        fail(f"assign commit: the group's committed offset is {committed.offset} with metadata "
             f"{committed.metadata!r}, expected 10 with 'ci-checkpoint'")
    d.assign([TopicPartition(topic, 0, OFFSET_STORED)])
    resumed = poll_offsets(d, 1)
    d.close()
    if resumed != [10]:
        fail(f"assign commit: a new consumer resumed at {resumed}, expected [10]")
    print("OK assign commit: read 0..5, sought back to 2 and forth to 9, committed 10 "
          "(with its metadata) outside any generation; a new consumer resumed at 10", flush=True)


def check_kafka_python_group(bootstrap, topic, total):
    group = "ci-kafka-python-group"

    def member():
        return kafka.KafkaConsumer(topic, bootstrap_servers=bootstrap.split(","), group_id=group,
                                   auto_offset_reset="earliest", enable_auto_commit=False)

    c = member()
    got, deadline, started, first = 0, time.time() + 60, time.time(), None
    while got < total and time.time() < deadline:
        for batch in c.poll(timeout_ms=500).values():
            first = first or time.time() - started
            got += len(batch)
    if got != total:
        fail(f"kafka-python group: read {got} of {total}")
    c.commit()
    c.close()
    again = member()
    extra = sum(len(b) for b in again.poll(timeout_ms=3000).values())
    again.close()
    if extra:
        fail(f"kafka-python group: a restarted member read {extra} records past the commit")
    print(f"OK kafka-python group: {got} records read and committed (first after {first:.2f} s); "
          "a restarted member found nothing new", flush=True)


async def aiokafka_checks(bootstrap, topic, total):
    p = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await p.start()
    try:
        for i in range(20):
            await p.send_and_wait(topic, key=f"ak-k{i % 3}".encode(), value=f"ak-v{i}".encode())
    finally:
        await p.stop()
    total += 20
    group = "ci-aiokafka-group"

    def member():
        return aiokafka.AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                         auto_offset_reset="earliest", enable_auto_commit=False)

    c = member()
    await c.start()
    values, deadline = [], time.time() + 60
    try:
        while len(values) < total and time.time() < deadline:
            batches = await c.getmany(timeout_ms=500)
            values += [m.value.decode() for b in batches.values() for m in b]
        await c.commit()
    finally:
        await c.stop()
    mine = [v for v in values if v.startswith("ak-v")]
    if len(values) != total or sorted(mine) != sorted(f"ak-v{i}" for i in range(20)):
        fail(f"aiokafka group: read {len(values)} of {total}, {len(mine)} of its own 20")
    again = member()
    await again.start()
    try:
        extra = sum(len(b) for b in (await again.getmany(timeout_ms=3000)).values())
    finally:
        await again.stop()
    if extra:
        fail(f"aiokafka group: a restarted member read {extra} records past the commit")
    print(f"OK aiokafka: 20 records produced idempotently; the group read all {total} and "
          "committed; a restarted member found nothing new", flush=True)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    a = ap.parse_args()
    started = time.time()
    probe = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "ci-probe"})
    total = sum(probe.get_watermark_offsets(TopicPartition(a.topic, p), timeout=10)[1]
                for p in range(a.partitions))
    probe.close()
    check_assign_commit(a.bootstrap, a.topic)
    check_kafka_python_group(a.bootstrap, a.topic, total)
    total = asyncio.run(aiokafka_checks(a.bootstrap, a.topic, total))
    print(f"RESULT ok records={total} seconds={time.time() - started:.1f}", flush=True)


if __name__ == "__main__":
    main()
