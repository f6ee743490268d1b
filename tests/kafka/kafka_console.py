"""kafka-console (an npm CLI on @platformatic/kafka, a client that speaks only the flexible
versions of each API and fetches by topic id) against a seedlog cluster's Kafka listeners (run
by tests/kafka_clients.rs, on the same cluster as the other clients, with a topic of its own).

- `topic:create` makes a topic with 2 partitions replicated 3 ways; `metadata` lists it with
  three brokers;
- `produce` writes keyed records with unique values (some with headers); `topic:dump` reads them
  all back: every value once, offsets dense from 0 in each partition, headers kept;
- `consume --group` reads everything; a @platformatic/kafka group consumer
  (tests/kafka/platformatic_group.mjs) reads everything and commits, and `topic:offsets --group`
  shows its commits at the high watermarks; after more records are produced, the same group in
  `committed` mode gets exactly those (the CLI itself starts a group at the latest offset);
- `topic:offsets TIMESTAMP` finds offsets by time.

Exits non-zero with a message on any mismatch; prints `RESULT ok` at the end.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def fail(msg):
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


class Console:
    def __init__(self, cli, bootstrap):
        self.cli = cli
        self.bootstrap = bootstrap

    def run(self, *args, stdin=None, timeout=60):
        cmd = [self.cli, "--brokers", self.bootstrap, *args]
        try:
            p = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            fail(f"kafka-console {' '.join(args)}: no end after {timeout} s: {e.stdout!r}")
        if p.returncode != 0:
            fail(f"kafka-console {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
        return p.stdout

    def lines(self, *args, **kw):
        return [json.loads(l) for l in self.run(*args, **kw).splitlines() if l.strip()]


def produce(kc, topic, values):
    """Produces one keyed record per value; every third carries a header naming it."""
    rows = []
    for i, v in enumerate(values):
        row = {"key": f"k{i % 5}", "value": v}
        if i % 3 == 0:
            row["headers"] = {"n": v}
        rows.append(json.dumps(row))
    kc.run("produce", topic, stdin="\n".join(rows) + "\n")


def value_of(record):
    # The CLI writes the JSON encoding of a value it was given as a JSON string.
    v = record["value"]
    try:
        return json.loads(v)
    except (TypeError, ValueError):
        return v


def library_group(a, group, mode, count):
    """The values tests/kafka/platformatic_group.mjs reads as a member of `group`."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "platformatic_group.mjs")
    # The CLI's package directory holds the library beside it.
    modules = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(a.cli))))
    p = subprocess.run(["node", script, modules, a.bootstrap, a.topic, group, mode, str(count)],
                       capture_output=True, text=True, timeout=90)
    out = p.stdout.splitlines()
    if p.returncode != 0 or out[-1:] != ["DONE"]:
        fail(f"platformatic_group.mjs {group} {mode} exited {p.returncode}: {p.stdout} {p.stderr}")
    return [json.loads(v) if v.startswith('"') else v for v in out[:-1]
            if not v.startswith("COMMIT-ERROR")]


def committed(kc, topic, group):
    out = kc.lines("topic:offsets", topic, "--group", group)
    return {p["partition"]: int(p["offset"]) for p in out[0]["partitions"]}


def high_watermarks(kc, topic):
    return {p["partition"]: int(p["high"]) for p in kc.lines("topic:offsets", topic)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--cli", required=True, help="path of the kafka-console executable")
    ap.add_argument("--topic", default="console")
    ap.add_argument("--count", type=int, default=40)
    a = ap.parse_args()
    kc = Console(a.cli, a.bootstrap.split(",")[0])

    made = kc.lines("topic:create", a.topic, "--partitions", "2", "--replicas", "3")
    if not made or made[0].get("name") != a.topic or made[0].get("partitions") != 2:
        fail(f"topic:create answered {made}")
    md = kc.lines("metadata")[0]
    if sorted(b["nodeId"] for b in md["brokers"]) != [0, 1, 2]:
        fail(f"metadata brokers: {md['brokers']}")
    topics = {t["topic"]: t for t in md["topicMetadata"]}
    # A new topic's metadata may trail its creation by a push: ask again for a while.
    deadline = time.time() + 20
    while a.topic not in topics and time.time() < deadline:
        time.sleep(0.5)
        topics = {t["topic"]: t for t in kc.lines("metadata")[0]["topicMetadata"]}
    if a.topic not in topics or len(topics[a.topic]["partitionMetadata"]) != 2:
        fail(f"metadata does not list {a.topic} with 2 partitions: {topics.get(a.topic)}")
    print(f"kafka-console: created {a.topic}, 2 partitions, brokers 0-2", flush=True)

    values = [f"console-{i}" for i in range(a.count)]
    before = int(time.time() * 1000) - 1
    produce(kc, a.topic, values)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "dump.jsonl")
        kc.run("topic:dump", a.topic, "--output", path)
        with open(path) as f:
            dumped = [json.loads(l) for l in f if l.strip()]
    got = sorted(value_of(r) for r in dumped)
    if got != sorted(values):
        fail(f"topic:dump read {len(got)} records, not the {len(values)} produced: {got[:5]}...")
    for p in {r["partition"] for r in dumped}:
        offs = sorted(int(r["offset"]) for r in dumped if r["partition"] == p)
        if offs != list(range(len(offs))):
            fail(f"partition {p}: offsets {offs} are not dense from 0")
    for r in dumped:
        v = value_of(r)
        if values.index(v) % 3 == 0 and r["headers"] != {"n": v}:
            fail(f"record {v}: headers {r['headers']}, expected {{'n': {v!r}}}")
    print(f"kafka-console: dumped {len(dumped)} records, offsets dense, headers kept", flush=True)

    # The CLI reads through a group (it may close before its last commit lands: not checked).
    read = kc.lines("consume", a.topic, "--group", "console-cli", "--from", "0",
                    "--data-format", "raw", "--count", str(a.count))
    if sorted(value_of(r) for r in read) != sorted(values):
        fail(f"consume --group read {len(read)} records, not the {a.count} produced")
    print(f"kafka-console: a group consumer read all {len(read)} records", flush=True)

    # The library reads through another group and commits; the CLI's OffsetFetch sees the
    # commits at the high watermarks; after more records, the group resumes exactly there.
    group = "console-group"
    got = library_group(a, group, "earliest", a.count)
    if sorted(got) != sorted(values):
        fail(f"@platformatic/kafka read {len(got)} records, not the {a.count} produced")
    hw = high_watermarks(kc, a.topic)
    if committed(kc, a.topic, group) != hw:
        fail(f"committed {committed(kc, a.topic, group)}, high watermarks {hw}")
    print(f"@platformatic/kafka: a group read {len(got)} records and committed {hw}", flush=True)
    more = [f"console-more-{i}" for i in range(3)]
    produce(kc, a.topic, more)
    again = library_group(a, group, "committed", len(more))
    if sorted(again) != sorted(more):
        fail(f"the group resumed with {again}, expected {more}")
    print("@platformatic/kafka: the group resumed at its committed offsets", flush=True)

    # Before every record: the first offset of each partition that has records, and Kafka's
    # -1 (no record at or after that time) for one that has none.
    by_time = kc.lines("topic:offsets", a.topic, str(before))
    firsts = {p["partition"]: int(p["offset"]) for p in by_time}
    expected = {p: (0 if h > 0 else -1) for p, h in high_watermarks(kc, a.topic).items()}
    if firsts != expected:
        fail(f"offsets at {before}, before every record: {firsts}, expected {expected}")
    print("RESULT ok", flush=True)


if __name__ == "__main__":
    main()
