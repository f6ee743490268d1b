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

// readPartitions reads every partition from the oldest offset to the end it has now.
func readPartitions(brokers []string, topic string) map[acked]*sarama.ConsumerMessage {
	client, err := sarama.NewClient(brokers, config())
	if err != nil {
		fail("client: %v", err)
	}
	defer client.Close()
	c, err := sarama.NewConsumerFromClient(client)
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
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			fail("end of partition %d: %v", p, err)
		}
		if end == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("consume partition %d: %v", p, err)
		}
		deadline := time.After(60 * time.Second)
		for next := int64(-1); next < end; {
			select {
			case m := <-pc.Messages():
				out[acked{m.Partition, m.Offset}] = m
				next = m.Offset + 1
			case e := <-pc.Errors():
				fail("partition %d: %v", p, e)
			case <-deadline:
				fail("partition %d: read up to %d of %d in 60 s", p, next, end)
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

// readGroup reads through group until it has seen every value in want (within a minute: the
// join alone can take seconds), then until nothing new arrives for two seconds, and leaves,
// committing what it marked; returns the values read.
func readGroup(brokers []string, group, topic string, want map[string]acked) []string {
	g, err := sarama.NewConsumerGroup(brokers, group, config())
	if err != nil {
		fail("group: %v", err)
	}
	go func() {
		for e := range g.Errors() {
			fmt.Printf("note: group %s: %v\n", group, e) // retried by sarama
		}
	}()
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
	missing := len(want)
	seen := map[string]bool{}
	deadline := time.After(60 * time.Second)
	for quiet := false; !quiet; {
		idle := time.After(2 * time.Second)
		if missing > 0 {
			idle = nil
		}
		select {
		case v := <-m.values:
			read = append(read, v)
			if _, ok := want[v]; ok && !seen[v] {
				seen[v] = true
				missing--
			}
		case err := <-done:
			fail("group %s: %v", group, err)
		case <-deadline:
			fail("group %s: %d of the %d records it must read still unread after 60 s", group, missing, len(want))
		case <-idle:
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
	first := readGroup(brokers, group, topic, sent)
	more := produce(brokers, topic, "sarama-after", 3)
	again := readGroup(brokers, group, topic, more)
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
