package lsm_test

import (
	"fmt"
	"os"

	"github.com/tapewire/tapewire/lsm"
)

// The standalone engine: it logs every batch in its own WAL.
func Example() {
	dir, _ := os.MkdirTemp("", "lsm-example")
	defer os.RemoveAll(dir)
	db, err := lsm.Open(dir, lsm.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	var b lsm.Batch
	b.Set([]byte("s/order/17"), []byte("filled"))
	b.Set([]byte("s/order/18"), []byte("open"))
	b.Delete([]byte("s/order/16"))
	if err := db.Apply(&b, lsm.Sync); err != nil { // atomic, durable on return
		panic(err)
	}

	v, closer, err := db.Get([]byte("s/order/17"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", v) // v points into the engine's memory until closer.Close
	closer.Close()

	it := db.NewIter(&lsm.IterOptions{LowerBound: []byte("s/order/"), UpperBound: []byte("s/order0")})
	for ok := it.Last(); ok; ok = it.Prev() {
		fmt.Printf("%s=%s\n", it.Key(), it.Value())
	}
	it.Close()
	// Output:
	// filled
	// s/order/18=open
	// s/order/17=filled
}

// ExternalLog mode: the caller logs each batch and hands the engine its LSN;
// after a restart it replays its log from CoveredLSN()+1 (earlier batches
// are skipped, so replaying from further back is harmless).
func ExampleDB_ApplyAt() {
	dir, _ := os.MkdirTemp("", "lsm-example")
	defer os.RemoveAll(dir)
	callerLog := []string{"e/0001/000001", "e/0001/000002", "e/0001/000003"}

	db, _ := lsm.Open(dir, lsm.Options{Durability: lsm.ExternalLog})
	var b lsm.Batch
	for i, key := range callerLog[:2] {
		b.Reset()
		b.Set([]byte(key), []byte("event"))
		if err := db.ApplyAt(&b, uint64(i+1)); err != nil {
			panic(err)
		}
	}
	db.Flush() // tables now cover LSN 2
	db.Close()

	db, _ = lsm.Open(dir, lsm.Options{Durability: lsm.ExternalLog})
	defer db.Close()
	fmt.Println("covered:", db.CoveredLSN())
	for lsn := db.CoveredLSN() + 1; lsn <= uint64(len(callerLog)); lsn++ {
		b.Reset()
		b.Set([]byte(callerLog[lsn-1]), []byte("event"))
		db.ApplyAt(&b, lsn)
	}
	n := 0
	it := db.NewIter(nil)
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	it.Close()
	fmt.Println("events:", n)
	// Output:
	// covered: 2
	// events: 3
}
