package shm

import (
	"bytes"
	"testing"
)

// FuzzParseHeader feeds arbitrary header pages to ParseHeader: it must never
// panic, and whatever it accepts must re-encode to the same bytes (so no
// field is silently ignored).
func FuzzParseHeader(f *testing.F) {
	var good [HeaderBytes]byte
	h := Header{LayoutMajor: LayoutMajor, Kind: 1, SegmentBytes: 1 << 20, SchemaID: 3, CreatorPID: 99, CreatedNs: 5, CreateMode: 0o600}
	encodeHeader(good[:], &h)
	LEPutState(good[:], StateReady)
	f.Add(good[:])
	f.Add(good[:100])
	f.Add([]byte("TAPEWIRE"))
	f.Add(bytes.Repeat([]byte{0xff}, HeaderBytes))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		var again [HeaderBytes]byte
		encodeHeader(again[:], &h)
		LEPutState(again[:], h.State)
		if !bytes.Equal(again[:], b[:HeaderBytes]) {
			t.Fatalf("accepted header does not round-trip:\n got %x\nwant %x", again, b[:HeaderBytes])
		}
	})
}

// LEPutState stores a state word into a header buffer (tests only).
func LEPutState(b []byte, state uint32) {
	b[offState], b[offState+1], b[offState+2], b[offState+3] = byte(state), byte(state>>8), byte(state>>16), byte(state>>24)
}
