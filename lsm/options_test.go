package lsm

import (
	"strings"
	"testing"
)

func TestOptionsRejectOutOfRange(t *testing.T) {
	cases := []struct {
		o    Options
		want string
	}{
		{Options{MemTableSizeBytes: 1000}, "MemTableSizeBytes 1000 outside"},
		{Options{MemTableSizeBytes: 5 << 30}, "MemTableSizeBytes"},
		{Options{L0CompactionTrigger: 8, L0StopWritesThreshold: 4}, "L0StopWritesThreshold 4 below L0CompactionTrigger 8"},
		{Options{LevelMultiplier: 1}, "LevelMultiplier 1 below 2"},
		{Options{Durability: 7}, "unknown durability mode 7"},
	}
	for _, c := range cases {
		if _, err := c.o.withDefaults(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.o, err, c.want)
		}
	}
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.MemTableSizeBytes != 64<<20 || o.L0CompactionTrigger != 4 || o.BaseLevelBytes != 64<<20 || o.LevelMultiplier != 10 || o.BlockSizeBytes != 4096 || o.BloomBitsPerKey != 10 {
		t.Fatalf("defaults differ from the documented ones: %+v", o)
	}
}

func TestBatchTooLargeForMemtable(t *testing.T) {
	d := mustOpen(t, t.TempDir(), Options{Durability: ExternalLog, MemTableSizeBytes: 64 << 10})
	defer d.Close()
	var b Batch
	b.Set([]byte("big"), make([]byte, 100<<10))
	err := d.ApplyAt(&b, 1)
	if err == nil || !strings.Contains(err.Error(), "MemTableSizeBytes 65536") {
		t.Fatalf("oversized batch: %v", err)
	}
}
