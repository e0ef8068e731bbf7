//go:build race

package lsm

// raceBuild: under the race detector memtable arenas are heap slices, which
// the detector tracks.
const raceBuild = true
