package record

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tapewire/tapewire/lsm/internal/base"
)

func buildLog(t testing.TB, payloads ...[]byte) []byte {
	var log []byte
	for _, p := range payloads {
		var err error
		log, err = Append(log, uint64(len(log)), p)
		if err != nil {
			t.Fatal(err)
		}
	}
	return log
}

func readAll(data []byte) ([][]byte, *Reader, error) {
	r := NewReader("MANIFEST-000001", data)
	var out [][]byte
	for {
		p, err := r.Next()
		if err == io.EOF {
			return out, r, nil
		}
		if err != nil {
			return out, r, err
		}
		out = append(out, p)
	}
}

func TestRoundTrip(t *testing.T) {
	var ps [][]byte
	for i := 0; i < 50; i++ {
		ps = append(ps, bytes.Repeat([]byte{byte(i)}, i*7))
	}
	got, r, err := readAll(buildLog(t, ps...))
	if err != nil || r.TornTail() || len(got) != len(ps) {
		t.Fatalf("read %d records, torn=%v, err=%v", len(got), r.TornTail(), err)
	}
	for i := range ps {
		if !bytes.Equal(got[i], ps[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
}

// TestTornTailVersusCorruption is the decision table of doc.go.
func TestTornTailVersusCorruption(t *testing.T) {
	a, b, c := []byte("first edit"), []byte("second edit"), []byte("third edit")
	log := buildLog(t, a, b, c)
	lenA := HeaderLen + len(a)
	lenAB := lenA + HeaderLen + len(b)
	flip := func(at int) []byte { d := append([]byte(nil), log...); d[at] ^= 0x10; return d }
	cases := []struct {
		name      string
		data      []byte
		records   int
		torn      bool
		corrupt   bool
		corruptAt int64
	}{
		{"intact", log, 3, false, false, 0},
		{"cut inside last header", log[:lenAB+3], 2, true, false, 0},
		{"cut inside last payload", log[:len(log)-2], 2, true, false, 0},
		{"flip in last payload", flip(len(log) - 1), 2, true, false, 0},
		{"flip in middle payload", flip(lenA + HeaderLen + 1), 1, false, true, int64(lenA)},
		{"flip in first checksum", flip(5), 0, false, true, 0},
		{"last header torn to zeros, payload new", zeroAt(log, lenAB, HeaderLen), 2, true, false, 0},
		{"zeroed tail after records", append(append([]byte(nil), log...), make([]byte, 20)...), 3, true, false, 0},
	}
	for _, c := range cases {
		got, r, err := readAll(c.data)
		if len(got) != c.records {
			t.Errorf("%s: %d records, want %d", c.name, len(got), c.records)
		}
		var ce *base.CorruptionError
		if c.corrupt {
			if !errors.As(err, &ce) || ce.Offset != c.corruptAt || ce.File != "MANIFEST-000001" {
				t.Errorf("%s: error %v, want corruption at %d", c.name, err, c.corruptAt)
			}
			continue
		}
		if err != nil || r.TornTail() != c.torn {
			t.Errorf("%s: err=%v torn=%v, want torn=%v", c.name, err, r.TornTail(), c.torn)
		}
	}
}

func TestRecordMovedToAnotherOffsetFails(t *testing.T) {
	one := buildLog(t, []byte("payload"))
	shifted := append(buildLog(t, []byte("x")), one...)
	if _, _, err := readAll(shifted); err == nil {
		// The copy sits at a new offset: it must not verify (it is the last
		// record, so it reads as a torn tail rather than an error).
		got, r, _ := readAll(shifted)
		if len(got) != 1 || !r.TornTail() {
			t.Fatalf("moved record accepted: %d records", len(got))
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add(buildLog(f, []byte("a"), []byte("bc")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader("fuzz", data)
		for i := 0; ; i++ {
			_, err := r.Next()
			if err != nil {
				return
			}
			if i > len(data) {
				t.Fatalf("more records than bytes in %d-byte input", len(data))
			}
		}
	})
}

func zeroAt(b []byte, off, n int) []byte {
	d := append([]byte(nil), b...)
	for i := off; i < off+n; i++ {
		d[i] = 0
	}
	return d
}
