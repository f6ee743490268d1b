"""An idempotent confluent-kafka producer through a kill -9 of a partition leader (run by
tests/kafka_kill.rs).

Produces keyed records (acks=all, enable.idempotence) whose values carry a per-key sequence number,
`k3:17`, for `--seconds`. Once records are acknowledged it prints `LEADER <broker id>`, the leader of
partition 0 by Metadata; the test kills that broker's process with SIGKILL and writes `KILLED` on
our stdin (then restarts it, or not). The producer keeps going to the new leader. At the end it
flushes, reads every partition back from offset 0 with `assign`, and writes one JSON object to
`--out`: the acknowledged records (with whether they were acknowledged after the kill), the
records read, and the per-partition high watermarks. The test checks them.
"""

import argparse
import json
import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--keys", type=int, default=8)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    killed = threading.Event()

    def watch_stdin():
        for line in sys.stdin:
            if line.strip() == "KILLED":
                killed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    p = Producer({"bootstrap.servers": a.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 60000})
    acked, errors, sent = [], [], 0
    seq = [0] * a.keys

    def report(err, msg):
        if err:
            errors.append(str(err))
        else:
            acked.append({"key": msg.key().decode(), "value": msg.value().decode(),
                          "partition": msg.partition(), "offset": msg.offset(),
                          "after_kill": killed.is_set()})

    leader_printed = False
    deadline = time.time() + a.seconds
    while time.time() < deadline:
        k = sent % a.keys
        while True:
            try:
                p.produce(a.topic, key=f"k{k}", value=f"k{k}:{seq[k]}", on_delivery=report)
                break
            except BufferError:
                p.poll(0.1)
        seq[k] += 1
        sent += 1
        p.poll(0)
        if sent % 20 == 0:
            time.sleep(0.01)
        if not leader_printed and len(acked) >= 50:
            md = p.list_topics(a.topic, timeout=10)
            leader = md.topics[a.topic].partitions[0].leader
            print(f"LEADER {leader}", flush=True)
            leader_printed = True
    left = p.flush(90)
    print(f"produced sent={sent} acked={len(acked)} unsent={left} errors={len(errors)} "
          f"acked_after_kill={sum(r['after_kill'] for r in acked)}", flush=True)
    for e in errors[:5]:
        print(f"delivery error: {e}", flush=True)

    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "seedlog-kill-readback",
                  "enable.auto.commit": False})
    marks = [c.get_watermark_offsets(TopicPartition(a.topic, q), timeout=20, cached=False)
             for q in range(a.partitions)]
    c.assign([TopicPartition(a.topic, q, 0) for q in range(a.partitions)])
    want = sum(high for _, high in marks)
    read, stop = [], time.time() + 60
    while len(read) < want and time.time() < stop:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            print(f"consumer error: {m.error()}", flush=True)
            continue
        read.append({"key": m.key().decode(), "value": m.value().decode(),
                     "partition": m.partition(), "offset": m.offset()})
    c.close()
    with open(a.out, "w") as f:
        json.dump({"acked": acked, "read": read, "marks": marks, "sent": sent,
                   "errors": errors}, f)
    print(f"read {len(read)} of {want} (high watermarks {[h for _, h in marks]})", flush=True)


if __name__ == "__main__":
    main()
