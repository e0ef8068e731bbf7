package wal_test

import (
	"context"
	"fmt"
	"io"

	"github.com/tapewire/tapewire/vfs"
	"github.com/tapewire/tapewire/wal"
)

// A log is opened (recovering whatever a previous run left), appended to —
// synchronously or asynchronously — read back from an LSN, and closed; the
// next Open sees the clean shutdown.
func Example() {
	fs := vfs.NewCrashFS(1) // vfs.Default (nil) in production
	opts := wal.Options{FS: fs, SegmentSizeBytes: 1 << 20, MaxGroupBytes: 64 << 10}
	l, err := wal.Open("/data/wal", opts)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	lsn, err := l.Append(ctx, []wal.Record{{Type: 1, Payload: []byte("order 1")}, {Type: 1, Payload: []byte("order 2")}})
	fmt.Println("durable through", lsn, err)

	last, _ := l.AppendAsync([]wal.Record{{Type: 2, Payload: []byte("trade 1")}})
	_ = l.WaitDurable(ctx, last)
	fmt.Println("durable LSN", l.DurableLSN())

	r, _ := l.NewReader(2)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		fmt.Printf("%d type=%d %s\n", rec.LSN, rec.Type, rec.Payload)
	}
	r.Close()
	_ = l.Close()

	l, _ = wal.Open("/data/wal", opts)
	fmt.Println("reopened:", l.Recovery().Decision.Verdict)
	_ = l.Close()
	// Output:
	// durable through 2 <nil>
	// durable LSN 3
	// 2 type=1 order 2
	// 3 type=2 trade 1
	// reopened: clean
}
