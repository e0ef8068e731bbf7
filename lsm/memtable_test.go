package lsm

import (
	"encoding/binary"
	"testing"
)

// BenchmarkApplyAtSequential measures single-key batches of time-ordered
// keys in ExternalLog mode (the fillseq path): memtable insert through the
// batch's finger plus the commit pipeline, with memtable rotations and
// flushes every few hundred thousand keys.
func BenchmarkApplyAtSequential(b *testing.B) {
	d := mustOpen(b, b.TempDir(), Options{Durability: ExternalLog})
	defer d.Close()
	var batch Batch
	key := make([]byte, 16)
	val := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint64(key, uint64(i))
		batch.Reset()
		batch.Set(key, val)
		if err := d.ApplyAt(&batch, uint64(i+1)); err != nil {
			b.Fatal(err)
		}
	}
}
