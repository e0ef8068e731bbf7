package ring

import (
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/tapewire/tapewire/schema"
)

// ringModel predicts positions: frames are 8-aligned, never cross the end of
// the data area (padding fills it), and a reliable claim fits only while its
// end plus the 8-byte commit word stays within one capacity of the
// subscriber's position.
type ringModel struct {
	capacity uint64
	tail     uint64 // end of committed data
	subPos   uint64
	nextSeq  uint64
	pending  []modelFrame // committed, not yet read
}

type modelFrame struct {
	seq, pos uint64
	size     int
}

// place lays out sizes from m.tail; ok is false when the batch would not fit
// in front of the subscriber.
func (m *ringModel) place(sizes []int) (positions []uint64, end uint64, ok bool) {
	pos := m.tail
	for _, n := range sizes {
		a := uint64(schema.AlignedSize(n))
		if idx := pos % m.capacity; idx+a > m.capacity {
			pos += m.capacity - idx
		}
		positions = append(positions, pos)
		pos += a
	}
	return positions, pos, pos+commitWordBytes <= m.subPos+m.capacity
}

// checkZeroing asserts the publisher's write-horizon invariants (doc.go,
// "Write horizon and commit protocol"): the zeroing mark lies below the
// horizon the tail word announces, at least 8 bytes past the newest claim,
// and every byte from the end of the newest claim (or commit) up to the mark
// is zero.
func checkZeroing(rt *rapid.T, p *Publisher) {
	end := p.tail
	if p.claimFrames > 0 {
		end = p.claimEnd
	}
	if p.zeroed < end+commitWordBytes || p.zeroed > p.horizon {
		rt.Fatalf("zeroing mark %d outside [%d, horizon %d]", p.zeroed, end+commitWordBytes, p.horizon)
	}
	if tail := p.log.Tail(); tail+commitWordBytes != p.horizon {
		rt.Fatalf("tail word %d announces horizon %d, publisher writes below %d", tail, tail+commitWordBytes, p.horizon)
	}
	for pos := end; pos < p.zeroed; pos++ {
		if b := p.log.bytesAt(pos, 1)[0]; b != 0 {
			rt.Fatalf("byte at %d (zeroed from %d to %d) is %#x", pos, end, p.zeroed, b)
		}
	}
}

// Random claims, batches, aborts and partial polls against the model: every
// claim succeeds exactly when the model says it fits, lands at the predicted
// position, and the subscriber receives exactly the committed frames, in
// order, at their positions, intact; the zeroing invariants hold throughout.
func TestRingMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		o := testOptions(t)
		capacity := uint64(1) << rapid.IntRange(10, 13).Draw(rt, "log2cap")
		maxFrame := int(capacity / 4)
		pub, err := CreateLog(o, "m", LogConfig{CapacityBytes: capacity, Mode: Reliable}, PublisherOptions{BackPressureTimeout: -1})
		if err != nil {
			rt.Fatal(err)
		}
		defer pub.Close()
		sub, err := OpenSubscriber(o, "m", SubscriberOptions{})
		if err != nil {
			rt.Fatal(err)
		}
		defer sub.Close()
		m := &ringModel{capacity: capacity}
		claims := make([]Claim, 4)
		steps := rapid.IntRange(1, 200).Draw(rt, "steps")
		for step := 0; step < steps; step++ {
			checkZeroing(rt, pub)
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0, 1: // claim a batch, then commit or abort it
				k := rapid.IntRange(1, 4).Draw(rt, "batch")
				sizes := make([]int, k)
				for i := range sizes {
					sizes[i] = rapid.IntRange(schema.HeaderSize+8, maxFrame/2).Draw(rt, "size")
				}
				positions, end, fits := m.place(sizes)
				err := pub.ClaimBatch(sizes, testFrameType, 0, claims)
				if !fits {
					if !errors.Is(err, ErrBackPressure) {
						rt.Fatalf("claim of %v at tail %d, subscriber at %d: %v, want back-pressure", sizes, m.tail, m.subPos, err)
					}
					continue
				}
				if err != nil {
					rt.Fatalf("claim of %v that fits: %v", sizes, err)
				}
				for i := range sizes {
					if claims[i].Position() != positions[i] {
						rt.Fatalf("frame %d at %d, model says %d", i, claims[i].Position(), positions[i])
					}
				}
				checkZeroing(rt, pub)
				if rapid.IntRange(0, 5).Draw(rt, "abort") == 0 {
					if err := pub.Abort(); err != nil {
						rt.Fatal(err)
					}
				} else {
					for i := range sizes {
						fillFrame(claims[i].Frame(), m.nextSeq+uint64(i))
						m.pending = append(m.pending, modelFrame{seq: m.nextSeq + uint64(i), pos: positions[i], size: sizes[i]})
					}
					if first := pub.CommitBatch(claims[:k]); first != m.nextSeq {
						rt.Fatalf("batch seq %d, model %d", first, m.nextSeq)
					}
					m.nextSeq += uint64(k)
				}
				m.tail = end
			case 2, 3: // poll some
				max := rapid.IntRange(1, 8).Draw(rt, "poll")
				var perr error
				n, err := sub.Poll(func(f []byte, pos uint64) {
					if perr != nil {
						return
					}
					want := m.pending[0]
					m.pending = m.pending[1:]
					seq, err := verifyFrame(f)
					if err != nil || seq != want.seq || pos != want.pos || len(f) != want.size {
						perr = errors.New("frame differs from the model")
						rt.Errorf("got seq %d pos %d len %d (%v), model %+v", seq, pos, len(f), err, want)
					}
				}, max)
				if err != nil || perr != nil {
					rt.Fatal(err, perr)
				}
				if want := min(max, n+len(m.pending)); n != want {
					rt.Fatalf("poll(%d) delivered %d with %d pending", max, n, len(m.pending)+n)
				}
				if len(m.pending) == 0 {
					m.subPos = m.tail
				} else {
					m.subPos = m.pending[0].pos
				}
				if sub.Position() > m.subPos {
					rt.Fatalf("subscriber at %d, model %d", sub.Position(), m.subPos)
				}
				// Padding before the next frame may have been consumed too.
				m.subPos = sub.Position()
			}
		}
	})
}
