// sarama (Go; Debian's sarama 1.22) against a seedlog cluster: sarama-check BOOTSTRAP TOPIC.
// Built by tests/kafka/setup.sh into target/kafka-go, run by tests/kafka_clients.rs.
//
// sarama sends no ApiVersions: it picks request versions from config.Version. 2.1.0 gives
// Produce v7, Fetch v10, Metadata v5, JoinGroup v1, SyncGroup v0 and OffsetFetch v1 or so, older
// shapes than the other clients use. Offsets.Retention is set because sarama 1.22 otherwise
// commits with OffsetCommit v1, which Kafka 4.0 removed and seedlog does not serve.
//
// Produces keyed records with a header through an idempotent producer (acks=all), reads each
// partition from the oldest offset and finds every acknowledged record at its offset with its
// key, value and header, then reads through a consumer group that commits, produces more, and
// checks that a new member of the group reads exactly those. Prints OK lines and RESULT ok;
// exits 1 with FAIL on a mismatch.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/Shopify/sarama"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL sarama: "+format+"\n", args...)
	os.Exit(1)
}

type acked struct {
	partition int32
	offset    int64
}

func config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_1_0_0
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.Retention = 24 * time.Hour
	cfg.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	return cfg
}

// produce sends n records valued prefix-0 .. prefix-(n-1) and returns where each was acked.
func produce(brokers []string, topic, prefix string, n int) map[string]acked {
	p, err := sarama.NewSyncProducer(brokers, config())
	if err != nil {
		fail("producer: %v", err)
	}
	defer p.Close()
	out := map[string]acked{}
	for i := 0; i < n; i++ {
		value := fmt.Sprintf("%s-%d", prefix, i)
		m := &sarama.ProducerMessage{
			Topic:   topic,
			Key:     sarama.StringEncoder(fmt.Sprintf("key-%d", i%5)),
			Value:   sarama.StringEncoder(value),
			Headers: []sarama.RecordHeader{{Key: []byte("origin"), Value: []byte("sarama")}},
		}
		partition, offset, err := p.SendMessage(m)
		if err != nil {
			fail("send %s: %v", value, err)
		}
		out[value] = acked{partition, offset}
	}
	return out
}

// readPartitions reads every partition from the oldest offset to its high watermark.
func readPartitions(brokers []string, topic string) map[acked]*sarama.ConsumerMessage {
	c, err := sarama.NewConsumer(brokers, config())
	if err != nil {
		fail("consumer: %v", err)
	}
	defer c.Close()
	partitions, err := c.Partitions(topic)
	if err != nil {
		fail("partitions: %v", err)
	}
	out := map[acked]*sarama.ConsumerMessage{}
	for _, p := range partitions {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("consume partition %d: %v", p, err)
		}
	reading:
		for {
			select {
			case m := <-pc.Messages():
				out[acked{m.Partition, m.Offset}] = m
				if m.Offset+1 >= pc.HighWaterMarkOffset() {
					break reading
				}
			case e := <-pc.Errors():
				fail("partition %d: %v", p, e)
			case <-time.After(3 * time.Second):
				break reading // an empty partition
			}
		}
		pc.Close()
	}
	return out
}

type member struct{ values chan string }

func (m *member) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (m *member) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (m *member) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		s.MarkMessage(msg, "")
		m.values <- string(msg.Value)
	}
	return nil
}

// readGroup reads through group until nothing new arrives for idle, then leaves (committing
// what it marked); returns the values read.
func readGroup(brokers []string, group, topic string, idle time.Duration) []string {
	g, err := sarama.NewConsumerGroup(brokers, group, config())
	if err != nil {
		fail("group: %v", err)
	}
	m := &member{values: make(chan string, 1024)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, m); err != nil && ctx.Err() == nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var read []string
	for quiet := false; !quiet; {
		select {
		case v := <-m.values:
			read = append(read, v)
		case err := <-done:
			fail("group %s: %v", group, err)
		case e := <-g.Errors():
			fail("group %s: %v", group, e)
		case <-time.After(idle):
			quiet = true
		}
	}
	cancel()
	<-done
	if err := g.Close(); err != nil {
		fail("closing group %s: %v", group, err)
	}
	return read
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: sarama-check BOOTSTRAP TOPIC")
	}
	brokers, topic := strings.Split(os.Args[1], ","), os.Args[2]
	sent := produce(brokers, topic, "sarama", 30)
	fmt.Printf("OK sarama: %d records acked (idempotent, acks=all, a header each)\n", len(sent))

	read := readPartitions(brokers, topic)
	for value, at := range sent {
		m, ok := read[at]
		if !ok || string(m.Value) != value || len(m.Headers) != 1 || string(m.Headers[0].Value) != "sarama" {
			fail("%s acked at partition %d offset %d, read %v", value, at.partition, at.offset, m)
		}
	}
	fmt.Printf("OK sarama: every acked record read back at its partition and offset (%d read)\n", len(read))

	group := "sarama-check"
	first := readGroup(brokers, group, topic, 5*time.Second)
	seen := map[string]bool{}
	for _, v := range first {
		seen[v] = true
	}
	for value := range sent {
		if !seen[value] {
			fail("group %s read %d records but not %s", group, len(first), value)
		}
	}
	more := produce(brokers, topic, "sarama-after", 3)
	again := readGroup(brokers, group, topic, 5*time.Second)
	if len(again) != len(more) {
		fail("a new member of %s read %v, expected only the %d records produced after the commit", group, again, len(more))
	}
	for _, v := range again {
		if _, ok := more[v]; !ok {
			fail("a new member of %s read %s, produced before the commit", group, v)
		}
	}
	fmt.Printf("OK sarama: group %s read %d records and committed; a new member read exactly the %d produced after\n", group, len(first), len(again))
	fmt.Println("RESULT ok")
}
