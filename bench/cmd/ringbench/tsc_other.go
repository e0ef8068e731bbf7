//go:build !amd64

package main

import "github.com/tapewire/tapewire/shm"

// rdtsc falls back to CLOCK_MONOTONIC in ns where there is no TSC stub.
func rdtsc() uint64 { return uint64(shm.Nanotime()) }
