"""The workload of `seedlog chaos` (written next to the run's history and started by it): real
Kafka clients (confluent-kafka) against the cluster's Kafka listeners, each operation written to
the history (seedlog's format, README "Histories and the checker") as it is invoked and completes.

- producers p0..pN-1: idempotent, acks=all, keys k0..kK-1, unique values `p0-17`; an invoke per
  record, an `ok` with partition and offset from its delivery report, `info` on a delivery error
  (idempotence makes the outcome of a timed-out record unknown, not failed). A producer that
  hits a fatal error stops (its records in flight stay unknown) and a new one, `p0.1`, goes on;
- consumer c0: `assign` of every partition from offset 0, polling throughout;
- group members g0..gM-1 of the group `seedlog-chaos-group`, subscribed to the topic (the classic,
  eager protocol); each leaves the group after `--member-life-s` seconds (the first ones
  staggered) and a new one (`g0.1`, ...) joins, so the group rebalances throughout: each assignment the group gives a member is an `assign` naming the group; the
  member then fetches each partition's committed offset and resumes there (or at 0 if the group
  has none, a `seek`); it processes what it polls and commits each partition's next offset
  synchronously after every poll. Every error of a commit is `info` (a commit whose answer was
  lost may still have landed);
- looker l0: every `--lookup-every-s` seconds asks AdminClient.list_offsets for a partition's
  first offset at or after a time (of a record c0 read lately, or of the last few seconds:
  `offset-for-time`) and for the first
  offset holding its largest timestamp (`offset-for-max-timestamp`), taking partitions in turn;
  an answer carries the record's timestamp, which the checker holds against the record read at
  that offset and the records read below it (polled records carry their timestamps), with the
  earliest offset asked right after as the log start; none found (-1) or an error is `info`;
- after the fault phase the producers flush and stop, and consumer `final` reads every partition
  from 0 up to its high watermark, so the checker can tell a lost record from an unread one.

One process writes the whole history under a lock, with CLOCK_MONOTONIC times, so invokes come
before their completions. Prints progress on stdout and `DRIVER done ...` at the end.

Every phase after the fault phase has its own time budget, and a client call that outlives it
(a flush, a close, a client's own teardown) is left behind in its thread rather than waited for:
the driver says so on stdout and goes on without it; sends are no longer recorded once the
producers' budget is over, and nothing once the history is closed (an operation left open is
"unknown" to the checker, never a false loss); the driver exits with `os._exit`. On SIGUSR1 (sent by `seedlog chaos`
before it kills a driver past its deadline) every thread's Python stack goes to stderr, so a hang
shows where it was.
"""

import argparse
import faulthandler
import json
import os
import signal
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

# Reentrant, and never waited on for long: a CI run once hung here for minutes with every thread
# waiting for this lock and none holding it in Python code (a client's delivery report can run
# inside a collected producer's teardown, on whatever thread collects it). A history event that
# cannot get the lock in LOCK_WAIT_S is dropped and said: a dropped send leaves its operation
# open (unknown), a dropped poll is read again by the final read.
lock = threading.RLock()
LOCK_WAIT_S = 20
out = None
# Set once the producers' budget is over: a producer left behind in its flush may still get
# delivery reports, but an `ok` recorded after the high watermarks are read could lie past them,
# where the final read does not look, and read as lost. Its sends stay open (unknown) instead.
sends_closed = False
# The timestamp of a record c0 read lately, per partition: a time the looker asks for, so the
# answer is a record of that very millisecond (and, with others stamped the same, the first).
recent_stamps = {}


def write(event, time_ns=None):
    """Appends one event; `time_ns` (CLOCK_MONOTONIC) if the operation began before this. Once
    the history is closed, a late event (from a thread left behind) is dropped. Returns whether
    the event was written."""
    line_of = lambda t: json.dumps(dict(event, time_ns=t), separators=(",", ":")) + "\n"
    if not lock.acquire(timeout=LOCK_WAIT_S):
        say(f"DRIVER note: history lock not free in {LOCK_WAIT_S}s; dropped {event.get('f')} "
            f"of {event.get('process')}")
        return False
    try:
        if out is not None and not (sends_closed and event.get("f") == "send"):
            out.write(line_of(time_ns if time_ns is not None else time.monotonic_ns()))
            return True
        return False
    finally:
        lock.release()


def locked_anyway(what, change):
    """Runs `change` holding the history lock, or without it after LOCK_WAIT_S (said)."""
    held = lock.acquire(timeout=LOCK_WAIT_S)
    if not held:
        say(f"DRIVER note: history lock not free in {LOCK_WAIT_S}s; {what} without it")
    try:
        change()
    finally:
        if held:
            lock.release()


def close_sends():
    def change():
        global sends_closed
        sends_closed = True
    locked_anyway("closing sends", change)


def close_history():
    def change():
        global out
        f, out = out, None
        f.close()
    locked_anyway("closing the history", change)


def say(line):
    print(line, flush=True)


def join_within(threads, seconds, what):
    """Waits for `threads` until `seconds` from now; says which ones are left behind."""
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    late = [t.name for t in threads if t.is_alive()]
    if late:
        say(f"DRIVER note: {what} not finished after {seconds:.0f}s, left behind: {late}")


def close_within(client, seconds, what):
    """`client.close()` in its own thread, waited for at most `seconds` (a consumer's close
    can wait on a coordinator that is down)."""
    t = threading.Thread(target=client.close, name=f"close {what}", daemon=True)
    t.start()
    join_within([t], seconds, f"close of {what}")


def producer(name, a, stop, counts):
    conf = {"bootstrap.servers": a.bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": a.message_timeout_ms}
    if os.environ.get("SEEDLOG_CHAOS_RDKAFKA_DEBUG"):
        # librdkafka's own log (to driver.log), e.g. "eos,msg,protocol".
        conf["debug"] = os.environ["SEEDLOG_CHAOS_RDKAFKA_DEBUG"]
    p = Producer(conf)

    def report(err, msg):
        if err:
            counts["errors"] += 1
            write({"process": name, "type": "info", "f": "send", "value": msg.value().decode(),
                   "error": str(err)})
        else:
            counts["acked"] += 1
            write({"process": name, "type": "ok", "f": "send", "value": msg.value().decode(),
                   "partition": msg.partition(), "offset": msg.offset()})

    n, fatal = 0, False
    while not stop.is_set():
        key, value = f"k{n % a.keys}", f"{name}-{n}"
        began = time.monotonic_ns()
        try:
            p.produce(a.topic, key=key, value=value, on_delivery=report)
            sent = True
        except BufferError:
            sent = False
        except KafkaException as e:
            # A fatal error (e.g. the broker lost records the idempotent producer had
            # acknowledged, so its sequences no longer match): this producer stops; what it has
            # in flight stays open, outcome unknown. A new producer takes over.
            print(f"{name}: stops: {e}", flush=True)
            counts["fatal"] += 1
            fatal = True
            break
        if sent:
            # Its completion can only come from this thread's next poll, so after this line.
            write({"process": name, "type": "invoke", "f": "send", "topic": a.topic,
                   "key": key, "value": value}, began)
            n += 1
            counts["sent"] += 1
        p.poll(0 if sent else 0.1)
        time.sleep(1.0 / a.rate)
    if fatal:
        return True
    try:
        left = p.flush(a.message_timeout_ms / 1000 + 10)
    except KafkaException as e:
        print(f"{name}: flush: {e}", flush=True)
        return False
    if left:
        print(f"{name}: {left} records never completed", flush=True)
    return False


def producers_of(name, a, stop, counts):
    """Producer `name`; after a fatal error a new one (a new producer id) as `name.1`, `name.2`..."""
    generation = 0
    while producer(name if generation == 0 else f"{name}.{generation}", a, stop, counts):
        generation += 1


def records_of(msgs):
    records = []
    for m in msgs:
        r = {"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
             "key": m.key().decode() if m.key() is not None else None,
             "value": m.value().decode()}
        kind, stamp = m.timestamp()
        if kind != 0:  # TIMESTAMP_NOT_AVAILABLE
            r["timestamp"] = stamp
        records.append(r)
    return records


def looker(name, a, stop):
    """Looks offsets up by time and by max timestamp until `stop` (see the module's doc)."""
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    turn = 0
    while not stop.wait(a.lookup_every_s):
        q = turn % a.partitions
        if turn % 2 == 0:
            # A record's own time, or one of the last few seconds (the producers' records are
            # stamped with the wall clock as they are sent).
            t = recent_stamps.get(q) if turn % 4 == 0 else None
            if t is None:
                t = int(time.time() * 1000) - 500 * (turn % 7)
            f, spec, asked = "offset-for-time", OffsetSpec.for_timestamp(t), {"timestamp": t}
        else:
            f, spec, asked = "offset-for-max-timestamp", OffsetSpec.max_timestamp(), {}
        turn += 1
        op = dict({"process": name, "f": f, "topic": a.topic, "partition": q}, **asked)
        invoked = time.monotonic_ns()
        write(dict(op, type="invoke"), invoked)
        tp = TopicPartition(a.topic, q)
        try:
            info = admin.list_offsets({tp: spec}, request_timeout=10)[tp].result(timeout=15)
        except Exception as e:  # a fault in the way: the outcome is unknown
            write(dict(op, type="info", error=str(e)))
            continue
        if info.offset < 0:
            write(dict(op, type="info", error="none found (-1)"))
            continue
        answer = dict(op, type="ok", offset=info.offset, record_timestamp=info.timestamp)
        # The log start, asked right after: Kafka's answer does not carry it. This cluster
        # keeps every record (no retention), so no leader's log start is above the one asked
        # after; the checker then also holds every record read below the answer against it.
        try:
            start = admin.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=10)[tp]
            answer["log_start"] = start.result(timeout=15).offset
        except Exception:
            pass
        write(answer)


def stay(c, who, topic, q, offset):
    """Out of range (`auto.offset.reset=error`): `c` stays where it was, at `offset`, rather than
    let the client jump somewhere the history would not know of; written as a seek by `who` (the
    event's process and group), `info` if the seek raised. Returns whether it was written."""
    seek = dict(who, f="seek", topic=topic, partition=q, offset=offset)
    try:
        c.seek(TopicPartition(topic, q, offset))
        return write(dict(seek, type="ok"))
    except KafkaException as e:
        return write(dict(seek, type="info", error=str(e)))


def consume(name, a, stop, until=None):
    """Reads every partition from 0 until `stop` is set or, with `until` (the high watermark of
    each partition), until every partition has been read up to it."""
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": f"seedlog-chaos-{name}",
                  "enable.auto.commit": False, "auto.offset.reset": "error"})
    parts = list(range(a.partitions))
    c.assign([TopicPartition(a.topic, q, 0) for q in parts])
    write({"process": name, "type": "ok", "f": "assign",
           "partitions": [{"topic": a.topic, "partition": q} for q in parts]})
    next_offset = {q: 0 for q in parts}
    read = 0
    while not stop.is_set():
        if until is not None and all(next_offset[q] >= until[q] for q in parts):
            break
        msgs = c.consume(num_messages=500, timeout=0.5)
        good = [m for m in msgs if not m.error()]
        for m in msgs:
            if m.error() is None:
                continue
            if m.error().code() == KafkaError._AUTO_OFFSET_RESET and m.partition() is not None:
                # Out of range: stay where we were (logged as a seek) rather than let the
                # client jump somewhere the history would not know of.
                stay(c, {"process": name}, a.topic, m.partition(), next_offset[m.partition()])
            print(f"{name}: {m.error()}", flush=True)
        if good:
            records = records_of(good)
            write({"process": name, "type": "ok", "f": "poll", "records": records})
            for r in records[-1:]:
                if "timestamp" in r:
                    recent_stamps[r["partition"]] = r["timestamp"]
            for m in good:
                next_offset[m.partition()] = m.offset() + 1
            read += len(good)
    close_within(c, 10, name)
    return read


GROUP = "seedlog-chaos-group"


def member(name, a, stop, counts, life_s):
    """Group member `name` for `life_s` seconds (or until `stop`): subscribes, resumes every
    partition the group gives it at the group's committed offset, polls, commits what it
    processed after every poll, then leaves the group (closes)."""
    ends = time.monotonic() + life_s
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": GROUP,
                  "enable.auto.commit": False, "auto.offset.reset": "error",
                  "partition.assignment.strategy": "range", "session.timeout.ms": 10000})
    # Where the member stands in each partition it owns (what its next poll reads).
    position = {}
    # Set when an event could not be written (the history lock stayed busy): the history no
    # longer knows where the member stands, so it stops at once, commits nothing more and
    # leaves; the records it held are read again by the member given them next.
    lost = []

    def ev(type_, f, **fields):
        written = write(dict({"process": name, "type": type_, "f": f, "group": GROUP}, **fields))
        if not written:
            lost.append(f)
        return written

    def on_assign(consumer, parts):
        position.clear()
        ev("ok", "assign", partitions=[{"topic": p.topic, "partition": p.partition}
                                       for p in parts])
        counts["assignments"] += 1
        start = []
        for p in parts:
            tp = {"topic": p.topic, "partition": p.partition}
            ev("invoke", "fetch-committed", **tp)
            try:
                got = consumer.committed([TopicPartition(p.topic, p.partition)], timeout=10)[0]
                if got.error:
                    raise KafkaException(got.error)
            except KafkaException as e:
                # Unknown; stand at 0 instead (a seek: rereading is the application's choice).
                ev("info", "fetch-committed", error=str(e), **tp)
                got = None
            if got is not None and got.offset >= 0:
                ev("ok", "fetch-committed", offset=got.offset, **tp)
                position[p.partition] = got.offset
            else:
                if got is not None:
                    ev("ok", "fetch-committed", **tp)  # the group has none
                ev("ok", "seek", offset=0, **tp)
                position[p.partition] = 0
            start.append(TopicPartition(p.topic, p.partition, position[p.partition]))
        consumer.assign(start)

    def on_revoke(consumer, parts):
        position.clear()
        consumer.unassign()

    c.subscribe([a.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
    while not stop.is_set() and time.monotonic() < ends:
        try:
            msgs = c.consume(num_messages=200, timeout=0.5)
        except KafkaException as e:
            print(f"{name}: {e}", flush=True)
            continue
        good = [m for m in msgs if not m.error()]
        for m in msgs:
            if m.error() is None:
                continue
            if m.error().code() == KafkaError._AUTO_OFFSET_RESET and m.partition() in position:
                q = m.partition()
                if not stay(c, {"process": name, "group": GROUP}, a.topic, q, position[q]):
                    lost.append("seek")
            print(f"{name}: {m.error()}", flush=True)
        # A poll the history did not get must not be committed past (its records would read as
        # skipped), nor read on from.
        if lost or (good and not ev("ok", "poll", records=records_of(good))):
            say(f"DRIVER note: {name} stops: its {lost[0]} was not written")
            break
        if not good:
            continue
        upto = {}
        for m in good:
            upto[m.partition()] = m.offset() + 1
            position[m.partition()] = m.offset() + 1
        for q, offset in sorted(upto.items()):
            tp = {"topic": a.topic, "partition": q, "offset": offset}
            if not ev("invoke", "commit", **tp):
                break  # not asked for: the loop stops the member next
            try:
                done = c.commit(offsets=[TopicPartition(a.topic, q, offset)],
                                asynchronous=False)
                err = next((d.error for d in done or [] if d.error), None)
                if err:
                    raise KafkaException(err)
                ev("ok", "commit", **tp)
                counts["commits"] += 1
            except KafkaException as e:
                # Refused or unknown: either way the history claims nothing (a lost answer may
                # hide a commit that landed).
                ev("info", "commit", error=str(e), **tp)
    close_within(c, 10, name)


def members_of(name, a, stop, counts, index):
    """Member `name`, then (after it leaves the group) a new one as `name.1`, `name.2`...: each
    lives `--member-life-s` seconds, the first ones staggered, so the group rebalances
    throughout the run, faults or not."""
    life = a.member_life_s * (index + 1) / max(1, a.group_members)
    generation = 0
    while not stop.is_set():
        this = name if generation == 0 else f"{name}.{generation}"
        try:
            member(this, a, stop, counts, life)
        except Exception as e:  # the next member goes on; this one is expelled in time
            say(f"DRIVER note: {this} failed: {e!r}")
        generation += 1
        life = a.member_life_s


def main():
    global out
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--history", required=True)
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--group-members", type=int, default=2)
    ap.add_argument("--member-life-s", type=float, default=8.0,
                    help="seconds a group member stays before it leaves and a new one joins")
    ap.add_argument("--keys", type=int, default=8)
    ap.add_argument("--rate", type=float, default=100.0, help="records per second per producer")
    ap.add_argument("--message-timeout-ms", type=int, default=30000)
    ap.add_argument("--final-read-s", type=float, default=60.0)
    ap.add_argument("--watermarks-s", type=float, default=45.0)
    ap.add_argument("--lookup-every-s", type=float, default=1.0,
                    help="seconds between the looker's lookups by time and by max timestamp")
    a = ap.parse_args()
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    out = open(a.history, "w", buffering=1)
    started = time.time()
    stop_producing, stop_reading = threading.Event(), threading.Event()
    counts = {"sent": 0, "acked": 0, "errors": 0, "fatal": 0, "assignments": 0, "commits": 0}
    # Daemon threads: one left behind in a client call does not keep the driver alive.
    producers = [threading.Thread(target=producers_of, args=(f"p{i}", a, stop_producing, counts),
                                  name=f"p{i}", daemon=True)
                 for i in range(a.producers)]
    reader = threading.Thread(target=consume, args=("c0", a, stop_reading), name="c0",
                              daemon=True)
    members = [threading.Thread(target=members_of, args=(f"g{i}", a, stop_reading, counts, i),
                                name=f"g{i}", daemon=True)
               for i in range(a.group_members)]
    lookers = [threading.Thread(target=looker, args=("l0", a, stop_reading), name="l0",
                                daemon=True)]
    for t in producers + [reader] + members + lookers:
        t.start()
    say(f"DRIVER started producers={a.producers} partitions={a.partitions}")
    while time.time() - started < a.duration:
        time.sleep(1)
        say(f"t={time.time() - started:.0f}s sent={counts['sent']} acked={counts['acked']} "
            f"errors={counts['errors']} fatal={counts['fatal']} "
            f"assignments={counts['assignments']} commits={counts['commits']}")
    stop_producing.set()
    # A producer's flush waits at most the message timeout and 10 s.
    join_within(producers, a.message_timeout_ms / 1000 + 20, "producers")
    close_sends()
    stop_reading.set()
    join_within([reader] + members + lookers, 15, "consumers")
    say(f"DRIVER reading high watermarks ({time.time() - started:.0f}s)")
    probe = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "seedlog-chaos-probe"})
    until = {}
    give_up = time.monotonic() + a.watermarks_s
    for q in range(a.partitions):
        while q not in until:
            try:
                until[q] = probe.get_watermark_offsets(TopicPartition(a.topic, q), timeout=5,
                                                       cached=False)[1]
            except Exception as e:  # the cluster may still be electing
                say(f"DRIVER note: watermarks of partition {q}: {e}")
                if time.monotonic() > give_up:
                    say(f"DRIVER error: no high watermark for partition {q} "
                        f"in {a.watermarks_s:.0f}s")
                    close_history()
                    os._exit(3)
                time.sleep(1)
    close_within(probe, 10, "probe")
    say(f"DRIVER final read up to {[until[q] for q in range(a.partitions)]} "
        f"({time.time() - started:.0f}s)")
    deadline = threading.Event()
    timer = threading.Timer(a.final_read_s, deadline.set)
    timer.start()
    read = consume("final", a, deadline, until)
    timer.cancel()
    close_history()
    say(f"DRIVER done sent={counts['sent']} acked={counts['acked']} errors={counts['errors']} "
        f"fatal={counts['fatal']} assignments={counts['assignments']} "
        f"commits={counts['commits']} "
        f"final_read={read} high_watermarks={[until[q] for q in range(a.partitions)]}")
    # Not a normal exit: a client left behind must not hold the process in its teardown.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
