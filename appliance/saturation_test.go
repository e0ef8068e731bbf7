package appliance

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

// TestDurableAdvanceWaitsForPublishedPosition commits a frame the way a
// publisher preempted inside Commit leaves it: its length word stored (the
// committer reads it, writes it to the WAL and makes it durable) but not yet
// the published position after it. The storage tenant must not give up on
// the topic (ring refuses a durable position past the published one): it
// advances the durable position once the publisher's store lands. Before
// the fix the topic failed with "advance durable ... beyond the published
// position" and every later event of it stayed not durable: the stall of
// e2ebench's publish-durable-saturation at ~950 K events/s.
func TestDurableAdvanceWaitsForPublishedPosition(t *testing.T) {
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	n, logs := startNode(t, cfg)
	defer n.Close()
	p := openProducer(t, cfg, "trades")
	_, pos := p.publish(testOrder(0))
	p.waitDurable(pos)

	frame, err := schema.AppendEvent(nil, schema.Header{PublishNs: time.Now().UnixNano()}, testOrder(1))
	if err != nil {
		t.Fatal(err)
	}
	typ := schema.Type(binary.LittleEndian.Uint16(frame[4:6]))
	c, err := p.pub.Claim(len(frame), typ, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.SetPublishNs(int64(binary.LittleEndian.Uint64(frame[16:24])))
	// The header exactly as Commit will write it, then the length word
	// alone: the first half of Commit.
	f := c.Frame()
	copy(f[4:], frame[4:])
	binary.LittleEndian.PutUint64(f[8:16], p.pub.NextSeq())
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&f[0])), uint32(len(frame)))

	topic := storageTopicNamed(t, n, "trades")
	deadline := time.Now().Add(10 * time.Second)
	for topic.durableDeferred.Load() == 0 && topic.failure() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the committer did not make the half-committed frame durable within 10 s\nlog:\n%s", logs)
		}
		time.Sleep(time.Millisecond)
	}
	if err := topic.failure(); err != nil {
		t.Fatalf("topic failed on a frame whose published position was not stored yet: %v", err)
	}
	if d := p.pub.Log().Durable(); d != pos {
		t.Fatalf("durable position %d while the published position is %d: want it held at %d", d, p.pub.Log().Published(), pos)
	}
	// The second half of Commit: the same header and length again, then
	// the published position.
	p.pub.Commit(c)
	end := p.pub.Position()
	p.waitDurable(end)
	// And the topic goes on.
	_, pos = p.publish(testOrder(2))
	p.waitDurable(pos)
	if err := topic.failure(); err != nil {
		t.Fatalf("topic failed: %v", err)
	}
}

// TestBurstBeyondCommitterBecomesDurable publishes, open loop, a burst
// far larger than the ring (so the publisher runs into back-pressure and the
// committer falls behind), then stops publishing: every event must become
// durable within a bounded time, and the topic must not fail.
func TestBurstBeyondCommitterBecomesDurable(t *testing.T) {
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	n, logs := startNode(t, cfg)
	defer n.Close()
	p := openProducer(t, cfg, "trades")
	frames, err := LoadGenFrames(11, 150, 256)
	if err != nil {
		t.Fatal(err)
	}
	burst := 150_000
	if raceEnabled {
		burst = 60_000
	}
	// The ring holds ~1 MiB (~6,000 frames): the burst laps it many times,
	// each lap waiting for the committer to make the last one durable.
	lg := p.pub.Log()
	for i := range burst {
		if _, err := p.pub.Offer(frames[i%len(frames)]); err != nil {
			t.Fatalf("offer %d of %d: %v", i, burst, err)
		}
		if i%4096 == 0 {
			shm.Pause() // stay open loop: never wait for durability
		}
	}
	end := p.pub.Position()
	if err := lg.WaitDurable(end, 30*time.Second); err != nil {
		topic := storageTopicNamed(t, n, "trades")
		t.Fatalf("burst of %d events not durable 30 s after the last publication: durable %d, published %d, topic failure %v\nlog:\n%s",
			burst, lg.Durable(), lg.Published(), topic.failure(), logs)
	}
	if err := storageTopicNamed(t, n, "trades").failure(); err != nil {
		t.Fatalf("topic failed: %v", err)
	}
}

func storageTopicNamed(t *testing.T, n *Node, name string) *storageTopic {
	t.Helper()
	for _, st := range n.storage.topics {
		if st.name == name {
			return st
		}
	}
	t.Fatalf("no storage topic %s", name)
	return nil
}

// TestBusySpinCommitter: with storage.wait = busy-spin the committer never
// parks; events still become durable and applied, and a stop still drains.
func TestBusySpinCommitter(t *testing.T) {
	cfg := testConfig(t)
	cfg.LastValue.Enabled = false
	cfg.Storage.Wait = WaitBusySpin
	n, _ := startNode(t, cfg)
	p := openProducer(t, cfg, "trades")
	for i := range 200 {
		_, pos := p.publish(testOrder(i))
		p.waitDurable(pos)
	}
	_, pos := p.publish(testOrder(200))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if d := p.pub.Log().Durable(); d < pos {
		t.Fatalf("durable position %d after a graceful stop, the last event ends at %d", d, pos)
	}
}
