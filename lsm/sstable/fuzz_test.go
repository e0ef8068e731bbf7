package sstable

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/tapewire/tapewire/lsm/bloom"
	"github.com/tapewire/tapewire/lsm/internal/base"
)

// FuzzBlockIter feeds arbitrary bytes to the block decoder: it must never
// panic or loop, whatever the bytes.
func FuzzBlockIter(f *testing.F) {
	var w blockWriter
	w.restartInterval = 2
	for i, k := range []string{"apple", "apricot", "banana", "band"} {
		w.add(base.AppendInternalKey(nil, []byte(k), base.SeqNum(i+1), base.KindSet), []byte(k))
	}
	f.Add(append([]byte(nil), w.finish()...), []byte("ban"))
	f.Add([]byte{0, 0, 0, 0}, []byte("a"))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0}, []byte(""))
	f.Fuzz(func(t *testing.T, block, key []byte) {
		var it blockIter
		if it.init(block) != nil {
			return
		}
		n := 0
		for ok := it.first(); ok && n < 10000; ok = it.next() {
			n++
		}
		n = 0
		for ok := it.last(); ok && n < 10000; ok = it.prev() {
			n++
		}
		it.seekGE(key, base.MakeTrailer(base.SeqNumMax, base.KindMax))
		it.seekLT(key, 0)
	})
}

// FuzzOpen feeds arbitrary (mostly mutated valid) table images to Open and
// reads everything: damage must surface as an error, never a panic.
func FuzzOpen(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	es := genEntries(rng, 40, 20)
	var buf bytes.Buffer
	w := NewWriter(&buf, 3, WriterOptions{BlockSizeBytes: 128, RestartInterval: 2})
	for _, e := range es {
		if err := w.Add(e.ikey, e.value); err != nil {
			f.Fatal(err)
		}
	}
	if _, _, err := w.Finish(); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(make([]byte, FooterLen))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Open(data, 3, "fuzz.sst", nil)
		if err != nil {
			return
		}
		it := r.NewIter()
		for ok := it.First(); ok; ok = it.Next() {
		}
		for ok := it.Last(); ok; ok = it.Prev() {
		}
		var s GetScratch
		k := []byte("user000001")
		_, _, _, _ = r.Get(k, bloom.Hash(k), base.SeqNumMax, &s)
	})
}
