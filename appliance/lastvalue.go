package appliance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/tapewire/tapewire/lsm"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/schema/fb"
	"github.com/tapewire/tapewire/tune"
)

// lastValueTenant keeps the last-value topic of quotes: every Tick of the
// source topic becomes the value of its instrument_id. It reads as an
// observer (it never holds a publisher back: a quote cache only needs the
// newest tick, and missing some under overload is counted, not fatal).
// When it creates the table (first start, or after the segment vanished) it
// seeds it from the store's s/quote/ keys, so quotes survive a reboot.
type lastValueTenant struct {
	n       *Node
	sub     *ring.Subscriber
	w       *ring.LastValueWriter
	keys    map[string]string // instrument id bytes → interned key, so Put does not allocate
	tick    fb.Tick
	stopped atomic.Bool
	done    chan struct{}
}

func newLastValueTenant(n *Node) (*lastValueTenant, error) {
	cfg := n.cfg.LastValue
	target, _ := n.cfg.Topic(cfg.Target)
	source, _ := n.cfg.Topic(cfg.Source)
	o, err := n.cfg.shmOptions(target)
	if err != nil {
		return nil, err
	}
	created := false
	w, err := ring.OpenLastValueWriter(o, target.Name)
	if errors.Is(err, os.ErrNotExist) {
		w, err = ring.CreateLastValue(o, target.Name, ring.LastValueConfig{Slots: target.Slots, MaxValueBytes: target.MaxFrameBytes})
		created = true
	}
	if err != nil {
		return nil, fmt.Errorf("last-value topic %s: %w", target.Name, err)
	}
	so, err := n.cfg.shmOptions(source)
	if err != nil {
		w.Close()
		return nil, err
	}
	sub, err := ring.OpenSubscriber(so, source.Name, ring.SubscriberOptions{Observer: true})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("last-value tenant: subscribe to %s: %w", source.Name, err)
	}
	t := &lastValueTenant{n: n, sub: sub, w: w, keys: map[string]string{}, done: make(chan struct{})}
	if created {
		if err := t.seed(); err != nil {
			n.logf("last-value topic %s: seeding from the store: %v", target.Name, err)
		}
	}
	return t, nil
}

// seed fills a new table with the quotes the store holds.
func (t *lastValueTenant) seed() error {
	it := t.n.db.NewIter(&lsm.IterOptions{LowerBound: []byte("s/" + StateQuote + "/"), UpperBound: []byte("s/" + StateQuote + "0")})
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		t.put(it.Value())
	}
	return it.Error()
}

// put stores one tick frame under its instrument id. Hot path once the key
// exists: no allocation.
func (t *lastValueTenant) put(frame []byte) {
	m := t.n.met
	if len(frame) < schema.HeaderSize || schema.Type(binary.LittleEndian.Uint16(frame[4:6])) != schema.TypeTick {
		m.lvcSkipped.Add(1)
		return
	}
	if err := schema.Verify(frame); err != nil {
		m.lvcSkipped.Add(1)
		return
	}
	p := frame[schema.HeaderSize:]
	t.tick.Init(p, flatbuffers.GetUOffsetT(p))
	id := t.tick.InstrumentId()
	key, ok := t.keys[string(id)]
	if !ok {
		key = string(id)
		t.keys[key] = key
	}
	if _, err := t.w.Put(key, frame); err != nil {
		m.lvcSkipped.Add(1)
		return
	}
	m.lvcUpdates.Add(1)
}

func (t *lastValueTenant) run() {
	defer close(t.done)
	defer t.w.Close()
	defer t.sub.Close()
	if cpu := t.n.cfg.LastValue.CPU; cpu >= 0 {
		if p, err := tune.Pin(cpu); err != nil {
			t.n.logf("last-value tenant not pinned: %v", err)
		} else {
			defer p.Release()
		}
	}
	handler := func(frame []byte, _ uint64) { t.put(frame) }
	var lostSeen uint64
	for !t.stopped.Load() {
		if _, err := t.sub.Poll(handler, t.n.cfg.LastValue.PollMaxFrames); err != nil {
			t.n.logf("last-value tenant: %v; stopping", err)
			return
		}
		if lost, _, _ := t.sub.Loss(); lost != lostSeen {
			t.n.met.lvcLost.Add(lost - lostSeen)
			lostSeen = lost
		}
		// Housekeeping tenant: wait with the ring's spin-then-park, waking
		// at least every 100 ms to notice a stop.
		if err := t.sub.Wait(100 * time.Millisecond); err != nil && !errors.Is(err, ring.ErrTimeout) && !errors.Is(err, ring.ErrPublisherGone) {
			t.n.logf("last-value tenant: %v; stopping", err)
			return
		} else if errors.Is(err, ring.ErrPublisherGone) {
			time.Sleep(50 * time.Millisecond) // no publisher: nothing will arrive soon
		}
	}
}

func (t *lastValueTenant) stop() {
	t.stopped.Store(true)
	<-t.done
}
