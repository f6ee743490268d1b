// kafkajs (Node.js) against a seedlog cluster's Kafka listeners, run by tests/kafka_clients.rs
// after the Python clients: an idempotent producer sends keyed records with acks=all, a consumer
// group (kafkajs's own round-robin assigner, computed by the group's leader member) reads the
// whole topic and commits, and the admin client's offsets agree: the group's committed offset of
// every partition is its latest offset. Exits non-zero with a message on any mismatch.

const { Kafka, logLevel } = require("kafkajs");

function fail(msg) {
  console.log(`FAIL ${msg}`);
  process.exit(1);
}

async function main() {
  const [bootstrap, topic] = process.argv.slice(2);
  if (!bootstrap || !topic) fail("usage: kafkajs.js BOOTSTRAP TOPIC");
  const started = Date.now();
  const kafka = new Kafka({
    clientId: "seedlog-ci",
    brokers: bootstrap.split(","),
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < 30; i++) messages.push({ key: `js-k${i % 4}`, value: `js-v${i}` });
  const acked = await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
  if (acked.some((r) => r.errorCode !== 0)) fail(`produce: ${JSON.stringify(acked)}`);

  const admin = kafka.admin();
  await admin.connect();
  const latest = await admin.fetchTopicOffsets(topic);
  const total = latest.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);

  const consumer = kafka.consumer({ groupId: "ci-kafkajs-group" });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const values = [];
  let joined = null;
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = joined ?? Date.now() - started));
  await consumer.run({
    eachMessage: async ({ message }) => {
      values.push(message.value.toString());
    },
  });
  const deadline = Date.now() + 60000;
  while (values.length < total && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await consumer.disconnect(); // commits what was read
  const mine = values.filter((v) => v.startsWith("js-v"));
  if (values.length !== total || mine.length !== 30) {
    fail(`group: read ${values.length} of ${total}, ${mine.length} of its own 30`);
  }
  const committed = await admin.fetchOffsets({ groupId: "ci-kafkajs-group", topics: [topic] });
  for (const p of committed[0].partitions) {
    const high = latest.find((l) => l.partition === p.partition).high;
    if (p.offset !== high) fail(`partition ${p.partition}: committed ${p.offset}, latest ${high}`);
  }
  await admin.disconnect();
  console.log(
    `OK kafkajs: 30 records produced idempotently; the group read all ${total} ` +
      `and committed the latest offset of every partition`
  );
  console.log(`RESULT ok records=${total} seconds=${((Date.now() - started) / 1000).toFixed(1)}`);
}

main().catch((e) => fail(e.stack || String(e)));
