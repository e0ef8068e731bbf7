//go:build race

package lsm

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of pooled paths are meaningless under it.
const raceEnabled = true
