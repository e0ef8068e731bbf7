package lsm

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// BenchmarkGetRandom measures point reads of 16-byte keys over a flushed
// table set of b.N-independent size (the lsmbench readrandom shape, in
// process, for profiling). Comparisons with peers live in bench/cmd/lsmbench.
func BenchmarkGetRandom(b *testing.B) {
	const n = 500_000
	d := mustOpen(b, b.TempDir(), Options{Durability: ExternalLog, BlockRestartInterval: 16})
	defer d.Close()
	var batch Batch
	key := make([]byte, 16)
	val := make([]byte, 100)
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(key, uint64(i))
		binary.BigEndian.PutUint64(key[8:], uint64(i)*0x9E3779B97F4A7C15)
		batch.Reset()
		batch.Set(key, val)
		if err := d.ApplyAt(&batch, uint64(i+1)); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := uint64(rng.IntN(n))
		binary.BigEndian.PutUint64(key, k)
		binary.BigEndian.PutUint64(key[8:], k*0x9E3779B97F4A7C15)
		_, c, err := d.Get(key)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkApplyAtRandom measures single-key batches in random key order in
// ExternalLog mode (no log of the engine's own): memtable insert plus the
// commit pipeline.
func BenchmarkApplyAtRandom(b *testing.B) {
	d := mustOpen(b, b.TempDir(), Options{Durability: ExternalLog})
	defer d.Close()
	var batch Batch
	key := make([]byte, 16)
	val := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := uint64(i) * 0x9E3779B97F4A7C15
		binary.BigEndian.PutUint64(key, k)
		binary.BigEndian.PutUint64(key[8:], k)
		batch.Reset()
		batch.Set(key, val)
		if err := d.ApplyAt(&batch, uint64(i+1)); err != nil {
			b.Fatal(err)
		}
	}
}
