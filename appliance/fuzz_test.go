package appliance

import (
	"testing"

	"github.com/tapewire/tapewire/schema"
)

// FuzzDecodeRecord: a WAL record payload of any bytes decodes or fails,
// never panics, and a decoded frame record's seq is its frame header's.
func FuzzDecodeRecord(f *testing.F) {
	frame, _ := schema.AppendEvent(nil, schema.Header{Seq: 42}, testOrder(1))
	f.Add(recFrame, FrameRecord(3, frame).Payload)
	q := make([]byte, 8+len("bad")+len(frame))
	putQuarantineRecord(q, 3, "bad", frame)
	f.Add(recQuarantine, q)
	f.Add(recCatalog, catalogRecord(2, catalogRing, "ticks"))
	f.Add(uint16(9), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, typ uint16, payload []byte) {
		d, err := decodeRecord(typ, 1, payload)
		if err != nil {
			return
		}
		if d.kind == recFrame {
			if h, herr := schema.DecodeHeader(d.frame); herr == nil && h.Seq != d.seq {
				t.Fatalf("seq %d, header says %d", d.seq, h.Seq)
			}
		}
		var x stateExtractor
		if d.frame != nil && schema.Verify(d.frame) == nil {
			x.stateKey(nil, d.frame)
		}
	})
}

// FuzzParseConfig: any text either parses into a configuration that
// validates, or fails with an error; never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add(DefaultConfigTOML())
	f.Add("[wal]\nmax_inflight_frames = 0\n")
	f.Add("[[topics]]\nname = \"x\"\nkind = \"last-value\"\nslots = 3\n")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := ParseConfig("fuzz", []byte(text))
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a configuration Validate rejects: %v", err)
		}
		_ = cfg.TOML()
	})
}
