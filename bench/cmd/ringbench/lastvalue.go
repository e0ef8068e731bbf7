package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapewire/tapewire/bench/internal/harness"
	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/shm"
)

const quoteBytes = 256

// fillQuote writes v into every word of a quote, so a torn copy is visible.
func fillQuote(q []byte, v uint64) {
	for off := 0; off < len(q); off += 8 {
		binary.LittleEndian.PutUint64(q[off:], v)
	}
}

// quoteIntact reports whether every word of q holds the same value.
func quoteIntact(q []byte) bool {
	first := binary.LittleEndian.Uint64(q)
	for off := 8; off < len(q); off += 8 {
		if binary.LittleEndian.Uint64(q[off:]) != first {
			return false
		}
	}
	return true
}

type writerResult struct {
	Updates uint64  `json:"updates"`
	Seconds float64 `json:"seconds"`
}

func init() {
	// lv-writer: rewrite the quote flat out until told to stop.
	childRoles["lv-writer"] = func(o shm.Options, cpu int, args []string) error {
		ctl, err := openControl(o)
		if err != nil {
			return err
		}
		defer ctl.Close()
		w, err := ring.OpenLastValueWriter(o, "quotes")
		if err != nil {
			return err
		}
		defer w.Close()
		q := make([]byte, quoteBytes)
		ready()
		start := time.Now()
		var n uint64
		for !stopped(ctl) {
			n++
			fillQuote(q, n)
			if _, err := w.Put("BTC-USD", q); err != nil {
				return err
			}
		}
		report(writerResult{Updates: n, Seconds: time.Since(start).Seconds()})
		return nil
	}
}

func (w *workloads) lastValue() {
	const name = "lastvalue-read-256B"
	if !w.b.Wants(name) {
		return
	}
	reads := w.b.Size(2_000_000, 300_000)
	// An RWMutex reader can wait ~60 µs per read behind a writer that takes
	// the lock flat out: bound each repeat's time as well as its count.
	limit := w.b.Duration(3*time.Second, 300*time.Millisecond)
	tapewire := func(repeat int) (harness.Result, error) {
		o, ctl, cleanup, err := newControlBase()
		if err != nil {
			return harness.Result{}, err
		}
		defer cleanup()
		lw, err := ring.CreateLastValue(o, "quotes", ring.LastValueConfig{Slots: 64, MaxValueBytes: quoteBytes})
		if err != nil {
			return harness.Result{}, err
		}
		q := make([]byte, quoteBytes)
		fillQuote(q, 0)
		lw.Put("BTC-USD", q)
		lw.Close()
		r, err := ring.OpenLastValue(o, "quotes")
		if err != nil {
			return harness.Result{}, err
		}
		defer r.Close()
		slot, err := r.Lookup("BTC-USD")
		if err != nil {
			return harness.Result{}, err
		}
		c, err := startChild(nil, "lv-writer", childArgs(o, w.cpuB)...)
		if err != nil {
			return harness.Result{}, err
		}
		torn, contended := 0, 0
		res, err := timedRoundsFor(w.cpuA, reads/10, reads, limit, nil, nil, func(i int) error {
			n, _, err := r.GetSlot(slot, q)
			if errors.Is(err, ring.ErrContended) {
				contended++
				return nil
			}
			if err != nil {
				return err
			}
			if n != quoteBytes || !quoteIntact(q) {
				torn++
			}
			return nil
		})
		atomic.StoreUint32(ctl.Uint32At(ctlStop), 1)
		if err != nil {
			c.kill()
			return res, err
		}
		var wr writerResult
		if err := c.result(&wr); err != nil {
			return res, err
		}
		if torn != 0 {
			return res, fmt.Errorf("%d torn reads", torn)
		}
		res.Notes = fmt.Sprintf("seqlock copy-out of 256 B while another process rewrites it at %.1f M updates/s; %d reads gave up (contended), 0 torn",
			float64(wr.Updates)/wr.Seconds/1e6, contended)
		return res, nil
	}
	rwmutex := func(repeat int) (harness.Result, error) {
		var mu sync.RWMutex
		shared := make([]byte, quoteBytes)
		var stop atomic.Bool
		var updates atomic.Uint64
		done := make(chan struct{})
		go func() {
			defer close(done)
			rel := harness.Pin(w.cpuB)
			defer rel()
			var n uint64
			for !stop.Load() {
				n++
				mu.Lock()
				fillQuote(shared, n)
				mu.Unlock()
			}
			updates.Store(n)
		}()
		q := make([]byte, quoteBytes)
		torn := 0
		start := time.Now()
		res, err := timedRoundsFor(w.cpuA, reads/10, reads, limit, nil, nil, func(i int) error {
			mu.RLock()
			copy(q, shared)
			mu.RUnlock()
			if !quoteIntact(q) {
				torn++
			}
			return nil
		})
		stop.Store(true)
		<-done
		if torn != 0 {
			return res, fmt.Errorf("%d torn reads", torn)
		}
		res.Notes = fmt.Sprintf("sync.RWMutex around a 256 B copy, writer goroutine on the other CPU at %.1f M updates/s",
			float64(updates.Load())/time.Since(start).Seconds()/1e6)
		return res, err
	}
	w.b.Interleave(name,
		harness.Contender{System: harness.Ours, Run: tapewire},
		harness.Contender{System: "rwmutex", Run: rwmutex},
	)
}
