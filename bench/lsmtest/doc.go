// Package lsmtest holds the differential (metamorphic) test of the LSM
// engine (lsm/) against Pebble as the oracle. It lives in the bench module so
// that Pebble never enters the appliance's dependency graph.
//
// The test generates random operation sequences from a seed — puts, deletes,
// atomic batches, gets, iterators moving both ways with bounds, snapshots,
// flushes, manual compactions, close and reopen — runs each operation on both
// engines and compares the results after every operation (and the whole
// contents at checkpoints). Several option sets shrink memtables, blocks and
// level targets so that a few thousand operations exercise many flushes,
// compactions and levels.
//
// The quick set runs in the normal `go test`; TAPEWIRE_LONG=1 runs many more
// seeds and longer sequences. A failure prints the seed, the option set and
// the operation index; rerun one case with
//
//	go test ./lsmtest -run 'TestDifferential/<options>/seed=<n>$' -v
package lsmtest
