package ring

import (
	"encoding/binary"
	"testing"

	"github.com/tapewire/tapewire/schema"
)

// Micro-benchmarks of the hot paths (the comparisons with peers live in
// bench/cmd/ringbench).

func BenchmarkClaimCommit64(b *testing.B) {
	o := testOptions(b)
	p, err := CreateLog(o, "b", LogConfig{CapacityBytes: 1 << 20, Mode: Lossy}, PublisherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c, _ := p.Claim(64, schema.TypeHeartbeat, 0)
		binary.LittleEndian.PutUint64(c.Payload(), uint64(i))
		p.Commit(c)
	}
}

// BenchmarkStream64 streams 64-byte frames in batches of 64 from a publisher
// goroutine to a reliable subscriber on the benchmark goroutine.
func BenchmarkStream64(b *testing.B) {
	o := testOptions(b)
	p, err := CreateLog(o, "s", LogConfig{CapacityBytes: 1 << 20, Mode: Reliable}, PublisherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	sub, err := OpenSubscriber(o, "s", SubscriberOptions{Wait: WaitStrategy{Kind: BusySpin}})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	n := b.N
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer p.Close()
		sizes := make([]int, 64)
		for i := range sizes {
			sizes[i] = 64
		}
		claims := make([]Claim, 64)
		for i := 0; i < n; i += 64 {
			k := min(64, n-i)
			if err := p.ClaimBatch(sizes[:k], schema.TypeHeartbeat, 0, claims[:k]); err != nil {
				panic(err)
			}
			for j := 0; j < k; j++ {
				binary.LittleEndian.PutUint64(claims[j].Payload(), uint64(i+j))
			}
			p.CommitBatch(claims[:k])
		}
	}()
	var sum uint64
	h := func(f []byte, pos uint64) { sum += binary.LittleEndian.Uint64(f[schema.HeaderSize:]) }
	b.ReportAllocs()
	for got := 0; got < n; {
		k, err := sub.Poll(h, 4096)
		if err != nil {
			b.Fatal(err)
		}
		got += k
	}
	<-done
	if want := uint64(n) * uint64(n-1) / 2; sum != want {
		b.Fatalf("sum %d, want %d", sum, want)
	}
}

func BenchmarkClaimBatch64x64(b *testing.B) {
	o := testOptions(b)
	p, err := CreateLog(o, "b", LogConfig{CapacityBytes: 1 << 20, Mode: Lossy}, PublisherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	sizes := make([]int, 64)
	for i := range sizes {
		sizes[i] = 64
	}
	claims := make([]Claim, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i += 64 {
		if err := p.ClaimBatch(sizes, schema.TypeHeartbeat, 0, claims); err != nil {
			b.Fatal(err)
		}
		for j := range claims {
			binary.LittleEndian.PutUint64(claims[j].Payload(), uint64(i+j))
		}
		p.CommitBatch(claims)
	}
}

// BenchmarkEcho64 is the software of one ping-pong round trip on one
// thread: claim+commit on a, Next on a, Offer on c, Next on c (and the two
// empty Nexts that follow each). ringbench's rtt-64B measures the same
// calls across two processes, where cache-line transfers dominate.
func BenchmarkEcho64(b *testing.B) {
	o := testOptions(b)
	cfg := LogConfig{CapacityBytes: 1 << 16, Mode: Reliable}
	pa, err := CreateLog(o, "a", cfg, PublisherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer pa.Close()
	pc, err := CreateLog(o, "c", cfg, PublisherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	sa, err := OpenSubscriber(o, "a", SubscriberOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sa.Close()
	sc, err := OpenSubscriber(o, "c", SubscriberOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	var sum uint64
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c, err := pa.Claim(64, schema.TypeHeartbeat, 0)
		if err != nil {
			b.Fatal(err)
		}
		binary.LittleEndian.PutUint64(c.Payload(), uint64(i))
		pa.Commit(c)
		f, _, _ := sa.Next()
		if _, err := pc.Offer(f); err != nil {
			b.Fatal(err)
		}
		if f, _, _ := sa.Next(); f != nil {
			b.Fatal("a second frame on a")
		}
		g, _, _ := sc.Next()
		sum += binary.LittleEndian.Uint64(g[schema.HeaderSize:])
		if g, _, _ := sc.Next(); g != nil {
			b.Fatal("a second frame on c")
		}
	}
	if want := uint64(b.N) * uint64(b.N-1) / 2; sum != want {
		b.Fatalf("sum %d, want %d", sum, want)
	}
}
