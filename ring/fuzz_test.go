package ring

import (
	"encoding/binary"
	"testing"

	"github.com/tapewire/tapewire/schema"
)

// FuzzSubscriberOnHostileData fills a topic's data area and hot words with
// arbitrary bytes (what a buggy or hostile process sharing the mapping could
// write) and polls it as a reliable subscriber, as an observer, and through
// the publisher's repair walk: no panic, no out-of-range access, and every
// frame handed over lies inside the data area with a sane length.
func FuzzSubscriberOnHostileData(f *testing.F) {
	good := make([]byte, 1024)
	frame := make([]byte, 40)
	for pos := 0; pos+48 <= len(good); pos += 48 {
		schema.EncodeHeader(frame, schema.Header{Length: 40, Type: testFrameType, Seq: uint64(pos / 48)})
		copy(good[pos:], frame)
	}
	f.Add(good, uint64(960), uint64(960), uint64(0))
	f.Add(make([]byte, 1024), uint64(0), uint64(0), uint64(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, uint64(8), uint64(1<<40), uint64(5000))
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 10, 0}, uint64(24), uint64(24), uint64(1020))
	f.Fuzz(func(t *testing.T, data []byte, published, tail, start uint64) {
		o := testOptions(t)
		pub, err := CreateLog(o, "f", LogConfig{CapacityBytes: 1024, Mode: Reliable}, PublisherOptions{})
		if err != nil {
			t.Fatal(err)
		}
		lg := pub.Log()
		copy(lg.bytesAt(0, 1024), data)
		binary.LittleEndian.PutUint64(lg.ctl[ctlPublished:], published)
		binary.LittleEndian.PutUint64(lg.ctl[ctlTail:], tail)
		pub.Close() // state closed: the next OpenPublisher runs the repair walk
		start &^= 7
		check := func(fr []byte) {
			if len(fr) < schema.HeaderSize || len(fr) > 256 {
				t.Fatalf("frame of %d bytes handed over (max 256)", len(fr))
			}
		}
		for _, observer := range []bool{false, true} {
			// Poll, then Next (which has its own fast path), from the same
			// start.
			for _, next := range []bool{false, true} {
				sub, err := OpenSubscriber(o, "f", SubscriberOptions{Observer: observer, Resume: true, From: start})
				if err != nil {
					continue // start outside what the (hostile) counters allow
				}
				for i := 0; i < 64; i++ {
					var n int
					if next {
						var fr []byte
						fr, _, err = sub.Next()
						if fr != nil {
							check(fr)
							n = 1
						}
					} else {
						n, err = sub.Poll(func(fr []byte, pos uint64) { check(fr) }, 16)
					}
					if err != nil || n == 0 {
						break
					}
				}
				sub.Close()
			}
		}
		if p, err := OpenPublisher(o, "f", PublisherOptions{BackPressureTimeout: -1}); err == nil {
			if lg := p.Log(); lg.Tail() != lg.Published() {
				t.Fatalf("after repair tail %d != published %d", lg.Tail(), lg.Published())
			}
			p.Close()
		}
	})
}
