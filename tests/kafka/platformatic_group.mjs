// A @platformatic/kafka consumer of GROUP that reads the next COUNT records of TOPIC, starting
// at the earliest offsets or at the group's committed ones (MODE `earliest` or `committed`), and
// prints each value on a line of its own, then `DONE`. It commits as it reads (the library's
// autocommit) and closes only once a commit has covered every record it read: the library
// drops a commit that is still to be sent when the consumer closes. Run by
// tests/kafka/kafka_console.py (the kafka-console CLI on the same library starts a group at the
// latest offset, and may close before its last commit).
//
// Usage: node platformatic_group.mjs NODE_MODULES BOOTSTRAP TOPIC GROUP MODE COUNT
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [modules, bootstrap, topic, group, mode, count] = process.argv.slice(2)
const lib = await import(pathToFileURL(join(modules, '@platformatic/kafka/dist/index.js')).href)
const consumer = new lib.Consumer({
  clientId: 'seedlog-test',
  bootstrapBrokers: bootstrap.split(','),
  groupId: group,
  deserializers: lib.stringDeserializers,
  autocommit: true
})
const timer = setTimeout(() => {
  console.log('TIMEOUT')
  process.exit(1)
}, 60000)
const stream = await consumer.consume({ topics: [topic], mode })
// Per partition: the offset after the last record read, and the last offset committed.
const read = new Map()
const committed = new Map()
let resolveCommitted
const allCommitted = new Promise(resolve => { resolveCommitted = resolve })
const check = () => {
  if ([...read].every(([p, end]) => (committed.get(p) ?? -1n) >= end)) resolveCommitted()
}
stream.on('autocommit', (error, offsets) => {
  if (error) {
    console.log(`COMMIT-ERROR ${error.message}`)
    return
  }
  for (const o of offsets ?? []) committed.set(o.partition, BigInt(o.offset))
  check()
})
let left = Number(count)
for await (const message of stream) {
  console.log(message.value)
  read.set(message.partition, BigInt(message.offset) + 1n)
  if (--left === 0) break
}
check()
await allCommitted
console.log('DONE')
clearTimeout(timer)
await stream.close()
await consumer.close()
