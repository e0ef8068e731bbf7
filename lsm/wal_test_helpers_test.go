package lsm

import "github.com/tapewire/tapewire/wal"

// walTestOptions keeps test logs small: 1 MiB segments.
func walTestOptions() wal.Options {
	return wal.Options{SegmentSizeBytes: 1 << 20, MaxGroupBytes: 256 << 10}
}
