package appliance

import (
	"testing"

	"github.com/tapewire/tapewire/schema"
)

// TestCommitterDoesNotAllocate drives the storage pipeline by hand — the
// committer's fill (ring → batch → WAL append) and completeDurable (durable
// positions, gate release), then the applier's LSM batch — and checks that
// a round of 64 frames allocates nothing.
func TestCommitterDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	n, s, p := openStorageByHand(t)
	defer n.closeStores()
	frames := make([][]byte, 64)
	for i := range frames {
		var err error
		frames[i], err = schema.AppendEvent(nil, schema.Header{}, testOrder(i))
		if err != nil {
			t.Fatal(err)
		}
	}
	group := make([]*batch, 0, applyGroupMaxBatches)
	round := func() {
		for _, f := range frames {
			if _, err := p.pub.Offer(f); err != nil {
				t.Fatal(err)
			}
		}
		for s.fill() {
		}
		for len(s.pending) > 0 {
			s.completeDurable()
		}
		for len(s.applyCh) > 0 {
			group = append(group[:0], <-s.applyCh)
			for len(s.applyCh) > 0 && len(group) < cap(group) {
				group = append(group, <-s.applyCh)
			}
			s.applyGroup(group)
			if s.applyErr != nil {
				t.Fatal(s.applyErr)
			}
		}
	}
	for range 20 { // warm up: buffers grow to their working size
		round()
	}
	if allocs := testing.AllocsPerRun(50, round); allocs > 0 {
		t.Fatalf("a round of %d frames allocates %.1f times", len(frames), allocs)
	}
	if got := s.topics[0].frames.Load() + s.topics[1].frames.Load() + s.topics[2].frames.Load() + s.topics[3].frames.Load(); got < 64*70 {
		t.Fatalf("%d frames persisted", got)
	}
}
