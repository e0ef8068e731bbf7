package shm

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
)

// One writer fills a 256-byte record with a repeated counter; readers must
// only ever accept records whose bytes all agree. Without the seqlock (or
// with a broken one) readers would accept torn records.
func TestSeqlockReadersNeverAcceptTornData(t *testing.T) {
	o := testOptions(t)
	s := createTest(t, o, "seq")
	lock := NewSeqlock(s.Uint64At(HeaderPageBytes))
	data := s.Bytes()[HeaderPageBytes+64 : HeaderPageBytes+64+256]
	const writes = 200000
	var done atomic.Bool
	var wg sync.WaitGroup
	var accepted, torn atomic.Int64
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [256]byte
			for !done.Load() {
				v, ok := lock.ReadBegin()
				if !ok {
					Pause()
					continue
				}
				copy(buf[:], data)
				if !lock.ReadValid(v) {
					continue
				}
				first := binary.LittleEndian.Uint64(buf[:])
				for i := 8; i < len(buf); i += 8 {
					if binary.LittleEndian.Uint64(buf[i:]) != first {
						torn.Add(1)
						break
					}
				}
				if v != 2*first {
					torn.Add(1)
				}
				accepted.Add(1)
			}
		}()
	}
	for i := uint64(1); i <= writes; i++ {
		lock.WriteBegin()
		for off := 0; off < len(data); off += 8 {
			binary.LittleEndian.PutUint64(data[off:], i)
		}
		if v := lock.WriteEnd(); v != 2*i {
			t.Fatalf("version %d after write %d", v, i)
		}
	}
	done.Store(true)
	wg.Wait()
	if torn.Load() != 0 {
		t.Fatalf("%d torn records accepted of %d", torn.Load(), accepted.Load())
	}
	if accepted.Load() == 0 {
		t.Fatal("readers accepted nothing")
	}
}
