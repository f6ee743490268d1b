"""Real Kafka clients against a seedlog cluster's Kafka listeners (run by tests/kafka_clients.rs).

Produces keyed records with acks=all through confluent-kafka (idempotent, then gzip), kafka-python
(idempotent by default) and kcat, reads every partition back from offset 0 with `assign` in
confluent-kafka and kafka-python, and checks that every acknowledged record is read exactly once,
at its acknowledged partition and offset, with its key and value, that offsets are dense from 0,
and that the earliest and latest offsets (ListOffsets) are 0 and the record count. Then consumer
groups (confluent-kafka, subscribe): a member reads everything and commits, a new member resumes
at the committed offsets; two members split the partitions and one takes them all when the other
leaves, with each of librdkafka's assignors (range, roundrobin, cooperative-sticky: the group's
leader member assigns). Then topics created at runtime: confluent-kafka's AdminClient creates one
(and is told TOPIC_ALREADY_EXISTS the second time), kafka-python's KafkaAdminClient another;
records with set timestamps are produced to the first and read back, and offsets_for_times finds
them by time; one record stamped earlier than the newest is added, and AdminClient.list_offsets
finds the earliest, the latest and the max-timestamp offsets. lz4, snappy and zstd batches (confluent-kafka) are among the records produced.
Last, null values: a record with a null value (a tombstone) and a null header value, and one with
an empty value and an empty header value, read back by both Python clients as null and empty.
Exits non-zero with a message on any mismatch.
"""

import argparse
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
import kafka
import kafka.admin
import kafka.errors


def fail(msg):
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


def produce_confluent(bootstrap, topic, prefix, count, extra):
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    acked, errors = [], []

    def report(err, msg):
        if err:
            errors.append(str(err))
        else:
            acked.append((msg.key().decode(), msg.value().decode(), msg.partition(), msg.offset()))

    for i in range(count):
        p.produce(topic, key=f"{prefix}k{i % 17}", value=f"{prefix}v{i}", on_delivery=report)
        p.poll(0)
    left = p.flush(30)
    if left or errors or len(acked) != count:
        fail(f"confluent-kafka {extra}: {left} unsent, errors {errors[:3]}, {len(acked)} of {count} acked")
    return acked


def produce_kafka_python(bootstrap, topic, prefix, count):
    p = kafka.KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
    futures = [
        (f"{prefix}k{i % 17}", f"{prefix}v{i}",
         p.send(topic, key=f"{prefix}k{i % 17}".encode(), value=f"{prefix}v{i}".encode()))
        for i in range(count)
    ]
    acked = []
    for k, v, f in futures:
        md = f.get(timeout=30)
        acked.append((k, v, md.partition, md.offset))
    p.close()
    return acked


def produce_kcat(bootstrap, topic, prefix, count):
    lines = "".join(f"{prefix}k{i % 17}:{prefix}v{i}\n" for i in range(count))
    subprocess.run(
        ["kcat", "-P", "-b", bootstrap, "-t", topic, "-K:", "-p", "0", "-X", "acks=all"],
        input=lines.encode(), check=True, timeout=60)


def consume_confluent(bootstrap, topic, partitions, want):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "seedlog-assign-only",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got, deadline = [], time.time() + 60
    while len(got) < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail(f"confluent-kafka consumer: {m.error()}")
        got.append((m.key().decode(), m.value().decode(), m.partition(), m.offset()))
    marks = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
             for p in range(partitions)]
    c.close()
    return got, marks


def consume_kafka_python(bootstrap, topic, partitions, want):
    c = kafka.KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                            consumer_timeout_ms=5000)
    tps = [kafka.TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning()
    got = []
    deadline = time.time() + 60
    while len(got) < want and time.time() < deadline:
        for batch in c.poll(timeout_ms=500).values():
            got.extend((m.key.decode(), m.value.decode(), m.partition, m.offset) for m in batch)
    begin, end = c.beginning_offsets(tps), c.end_offsets(tps)
    c.close()
    return got, [(begin[tp], end[tp]) for tp in tps]


def consume_kcat(bootstrap, topic, partition):
    out = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-p", str(partition), "-o", "beginning",
         "-e", "-f", "%k\t%s\t%p\t%o\n"],
        check=True, timeout=60, capture_output=True).stdout.decode()
    return [(k, v, int(p), int(o)) for k, v, p, o in
            (line.split("\t") for line in out.splitlines() if line)]


def group_read(bootstrap, topic, group, want):
    """Reads `want` records as a member of `group` (subscribe), commits, leaves; returns them and
    how long the first record took (the join)."""
    started = time.time()
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got, first = [], None
    deadline = time.time() + 60
    while len(got) < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail(f"group consumer: {m.error()}")
        first = first or time.time() - started
        got.append((m.key().decode(), m.value().decode(), m.partition(), m.offset()))
    # Nothing more than wanted arrives within a second: the group resumed exactly.
    extra = c.poll(1.0)
    if extra is not None and not extra.error():
        fail(f"group {group}: read past the {want} records expected: {extra.partition()}@{extra.offset()}")
    c.commit(asynchronous=False)
    c.close()
    return got, first


def check_group(bootstrap, topic, acked):
    """A group reads everything, commits; after more records a new member of the same group
    resumes at the committed offsets and reads only those."""
    got, join = group_read(bootstrap, topic, "ci-group", len(acked))
    if sorted(got) != sorted(acked):
        fail(f"group: read {len(got)} of {len(acked)} (or other records)")
    more = produce_confluent(bootstrap, topic, "gr-", 30, {"enable.idempotence": True})
    again, _ = group_read(bootstrap, topic, "ci-group", len(more))
    if sorted(again) != sorted(more):
        fail(f"group restart: read {len(again)} records, expected exactly the {len(more)} new ones")
    print(f"OK group: {len(got)} records read and committed (first record {join:.2f} s after subscribing), "
          f"a new member resumed at the committed offsets and read only the {len(more)} new ones", flush=True)
    return more


def check_rebalance(bootstrap, topic, partitions, strategy):
    """Two members split the partitions; when one leaves, the other gets them all. The group's
    leader member assigns with `strategy` (the coordinator only carries its assignment)."""
    seen, stops = {}, {"a": threading.Event(), "b": threading.Event()}

    def member(name):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ci-rebalance-{strategy}",
                      "auto.offset.reset": "latest",
                      "partition.assignment.strategy": strategy})
        c.subscribe([topic])
        while not stops[name].is_set():
            c.poll(0.2)
            seen[name] = sorted(tp.partition for tp in c.assignment())
        c.close()

    def wait_for(cond, what):
        deadline = time.time() + 30
        while time.time() < deadline:
            if cond():
                return
            time.sleep(0.1)
        fail(f"rebalance: {what} never happened; assignments {seen}")

    a = threading.Thread(target=member, args=("a",))
    a.start()
    wait_for(lambda: seen.get("a") == list(range(partitions)), "one member holding every partition")
    b = threading.Thread(target=member, args=("b",))
    b.start()
    wait_for(lambda: seen.get("a") and seen.get("b")
             and sorted(seen["a"] + seen["b"]) == list(range(partitions)), "a split between two members")
    split = dict(seen)
    stops["a"].set()
    a.join()
    wait_for(lambda: seen.get("b") == list(range(partitions)), "the remaining member taking every partition")
    stops["b"].set()
    b.join()
    print(f"OK rebalance ({strategy}): two members split the partitions {split}; "
          f"after one left the other held {seen['b']}", flush=True)


def check(name, acked, got, marks, partitions):
    if len(set(got)) != len(got):
        fail(f"{name}: a record was read twice")
    if sorted(got) != sorted(acked):
        missing = set(acked) - set(got)
        extra = set(got) - set(acked)
        fail(f"{name}: read {len(got)} of {len(acked)}; missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]}")
    for p in range(partitions):
        offsets = sorted(o for _, _, q, o in got if q == p)
        if offsets != list(range(len(offsets))):
            fail(f"{name}: partition {p} offsets are not dense from 0: {offsets[:10]}")
        if marks[p] != (0, len(offsets)):
            fail(f"{name}: partition {p} earliest/latest {marks[p]}, expected (0, {len(offsets)})")
    print(f"OK {name}: {len(got)} records, per partition (earliest, latest) {marks}", flush=True)


def check_create_topics(bootstrap):
    """Creates topics at runtime through both admin clients; a second creation is refused."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = "runtime-created"
    for f in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=3)],
                                 operation_timeout=30).values():
        f.result(timeout=60)
    again = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=3)],
                                operation_timeout=30)[topic]
    try:
        again.result(timeout=60)
        fail("confluent-kafka: creating the topic a second time succeeded")
    except Exception as e:  # KafkaException carrying the broker's error
        code = e.args[0].code() if e.args and hasattr(e.args[0], "code") else None
        if code != KafkaError.TOPIC_ALREADY_EXISTS:
            fail(f"confluent-kafka: creating the topic again gave {e!r}, not TOPIC_ALREADY_EXISTS")
    md = admin.list_topics(topic, timeout=30)
    layout = {p: tuple(md.topics[topic].partitions[p].replicas) for p in md.topics[topic].partitions}
    if sorted(layout) != [0, 1] or any(len(r) != 3 for r in layout.values()):
        fail(f"confluent-kafka: {topic} has partitions {layout}, expected 2 of 3 replicas")
    kp = kafka.admin.KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    kp.create_topics([kafka.admin.NewTopic("kp-created", num_partitions=1, replication_factor=2)])
    try:
        kp.create_topics([kafka.admin.NewTopic("kp-created", num_partitions=1, replication_factor=2)])
        fail("kafka-python: creating the topic a second time succeeded")
    except kafka.errors.TopicAlreadyExistsError:
        pass
    kp.close()
    print(f"OK create topics: {topic} created with replicas {layout} (again: TOPIC_ALREADY_EXISTS), "
          f"kp-created by kafka-python (again: TopicAlreadyExistsError)", flush=True)
    return topic


def check_offsets_for_times(bootstrap, topic):
    """Ten records a second apart to partition 0 of the new topic; read back; looked up by time."""
    base = 1_700_000_000_000
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    acked, errors = [], []

    def report(err, msg):
        (errors if err else acked).append(err or (msg.offset(), msg.timestamp()[1]))

    for i in range(10):
        p.produce(topic, key=f"t{i}", value=f"at{i}", partition=0, timestamp=base + 1000 * i,
                  on_delivery=report)
    if p.flush(60) or errors or len(acked) != 10:
        fail(f"timestamps: {errors[:3]}, {len(acked)} of 10 acked")
    if sorted(acked) != [(i, base + 1000 * i) for i in range(10)]:
        fail(f"timestamps: acked {sorted(acked)}")
    got, _ = consume_confluent(bootstrap, topic, 1, 10)
    if [(o, v) for _, v, _, o in got] != [(i, f"at{i}") for i in range(10)]:
        fail(f"timestamps: read back {got}")
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "seedlog-times"})
    asked = [base - 5, base + 3500, base + 9000, base + 9001]
    found = [c.offsets_for_times([TopicPartition(topic, 0, t)], timeout=30)[0].offset for t in asked]
    c.close()
    # The first record at or after each time; none after the last (librdkafka's OFFSET_END, -1).
    if found != [0, 4, 9, -1]:
        fail(f"offsets_for_times {asked}: {found}, expected [0, 4, 9, -1]")
    print(f"OK offsets_for_times: times {[t - base for t in asked]} ms after the first record "
          f"found offsets {found}", flush=True)


def check_list_offsets(bootstrap, topic):
    """After the ten records of check_offsets_for_times (offsets 0-9, stamped a second apart), one
    stamped earlier than the newest: the max-timestamp offset stays at the newest stamp (9), not
    the last offset; earliest and latest are the log's ends (AdminClient.list_offsets)."""
    base = 1_700_000_000_000
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    acked, errors = [], []
    p.produce(topic, key="late", value="late", partition=0, timestamp=base + 500,
              on_delivery=lambda err, msg: (errors if err else acked).append(err or msg.offset()))
    if p.flush(60) or errors or acked != [10]:
        fail(f"list_offsets: the late record: {errors[:3]}, acked {acked}, expected [10]")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tp = TopicPartition(topic, 0)
    found = {}
    for name, spec in [("earliest", OffsetSpec.earliest()), ("latest", OffsetSpec.latest()),
                       ("max_timestamp", OffsetSpec.max_timestamp())]:
        futures = admin.list_offsets({tp: spec}, request_timeout=30)
        info = futures[tp].result(timeout=60)
        found[name] = (info.offset, info.timestamp)
    want = {"earliest": 0, "latest": 11, "max_timestamp": 9}
    if {k: o for k, (o, _) in found.items()} != want or found["max_timestamp"][1] != base + 9000:
        fail(f"list_offsets: {found}, expected offsets {want} and max timestamp {base + 9000}")
    print(f"OK list_offsets: earliest 0, latest 11, max timestamp at offset 9 "
          f"({found['max_timestamp'][1] - base} ms after the first record)", flush=True)


def check_nulls(bootstrap, topic):
    """A null value and a null header value must come back null, and empty ones empty: Kafka
    tells them apart (a null value is a tombstone to a compacted topic's readers)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    acked, errors = [], []

    def report(err, msg):
        (errors if err else acked).append(err or msg.offset())

    sent = [("null", None, [("h", None), ("e", b"")]), ("empty", b"", [("h", b""), ("n", None)])]
    for key, value, headers in sent:
        p.produce(topic, key=key, value=value, headers=headers, partition=0, on_delivery=report)
    if p.flush(60) or errors or len(acked) != 2:
        fail(f"null values: {errors[:3]}, {len(acked)} of 2 acked")
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "seedlog-nulls",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, min(acked))])
    got, deadline = [], time.time() + 60
    while len(got) < 2 and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail(f"null values: {m.error()}")
        got.append((m.key().decode(), m.value(), m.headers()))
    c.close()
    if got != sent:
        fail(f"null values, confluent-kafka: read back {got}, sent {sent}")
    kp = kafka.KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=10_000)
    tp = kafka.TopicPartition(topic, 0)
    kp.assign([tp])
    kp.seek(tp, min(acked))
    read = [(m.key.decode(), m.value, [(k, v) for k, v in m.headers]) for _, m in zip(range(2), kp)]
    kp.close()
    if read != sent:
        fail(f"null values, kafka-python: read back {read}, sent {sent}")
    print(f"OK null values: a null value and a null header value read back as null, empty ones "
          f"as empty, at offsets {sorted(acked)} (confluent-kafka and kafka-python)", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--count", type=int, default=200)
    a = ap.parse_args()
    started = time.time()
    acked = produce_confluent(a.bootstrap, a.topic, "ci-", a.count, {"enable.idempotence": True})
    acked += produce_confluent(a.bootstrap, a.topic, "cg-", a.count,
                               {"enable.idempotence": False, "compression.type": "gzip"})
    acked += produce_confluent(a.bootstrap, a.topic, "cl-", a.count,
                               {"enable.idempotence": True, "compression.type": "lz4"})
    acked += produce_confluent(a.bootstrap, a.topic, "cs-", a.count,
                               {"enable.idempotence": True, "compression.type": "snappy"})
    acked += produce_confluent(a.bootstrap, a.topic, "cz-", a.count,
                               {"enable.idempotence": True, "compression.type": "zstd"})
    acked += produce_kafka_python(a.bootstrap, a.topic, "kp-", a.count)
    print(f"OK produced {len(acked)} records with acks=all ({time.time() - started:.1f} s)", flush=True)
    got, marks = consume_confluent(a.bootstrap, a.topic, a.partitions, len(acked))
    check("confluent-kafka assign", acked, got, marks, a.partitions)
    got, marks = consume_kafka_python(a.bootstrap, a.topic, a.partitions, len(acked))
    check("kafka-python assign", acked, got, marks, a.partitions)
    # kcat: append to partition 0, then read partition 0 back whole.
    before = [r for r in acked if r[2] == 0]
    produce_kcat(a.bootstrap, a.topic, "kc-", 20)
    read = consume_kcat(a.bootstrap, a.topic, 0)
    if read[:len(before)] != sorted(before, key=lambda r: r[3]):
        fail("kcat: partition 0 does not start with the records acknowledged there")
    tail = read[len(before):]
    want = [(f"kc-k{i % 17}", f"kc-v{i}", 0, len(before) + i) for i in range(20)]
    if tail != want:
        fail(f"kcat: read back {tail[:3]}..., expected {want[:3]}...")
    print(f"OK kcat: 20 records produced to partition 0 and read back at offsets {len(before)}..{len(before) + 19}", flush=True)
    acked += tail
    acked += check_group(a.bootstrap, a.topic, acked)
    for strategy in ("range", "roundrobin", "cooperative-sticky"):
        check_rebalance(a.bootstrap, a.topic, a.partitions, strategy)
    created = check_create_topics(a.bootstrap)
    check_offsets_for_times(a.bootstrap, created)
    check_list_offsets(a.bootstrap, created)
    check_nulls(a.bootstrap, created)
    print(f"RESULT ok records={len(acked)} seconds={time.time() - started:.1f}", flush=True)


if __name__ == "__main__":
    main()
