package schema

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The committed seed corpora (testdata/fuzz/FuzzXxx) hold a frame of every
// type in our layout and in flatc's, each also truncated and bit-flipped,
// and the JSON of each. Regenerate them after changing events.fbs with
//
//	TAPEWIRE_WRITE_CORPUS=1 go test ./schema/ -run TestWriteFuzzCorpus

// FuzzVerify: whatever the bytes, Verify fails or every reader works; and
// a frame that verifies survives frame → JSON → frame with its JSON unchanged.
func FuzzVerify(f *testing.F) {
	for _, frame := range corpusFrames() {
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if err := verifyOrRead(frame); err != nil {
			t.Fatal(err)
		}
		if Verify(frame) != nil {
			return
		}
		js, err := AppendJSON(nil, frame)
		if err != nil {
			t.Fatalf("AppendJSON of a verified frame: %v", err)
		}
		h, _ := DecodeHeader(frame)
		if h.Type == TypePadding {
			return
		}
		back, err := FrameFromJSON(js, nil)
		if err != nil {
			t.Fatalf("FrameFromJSON of the JSON of a verified frame: %v\n%s", err, js)
		}
		if err := Verify(back); err != nil {
			t.Fatalf("frame rebuilt from JSON does not verify: %v", err)
		}
		js2, err := AppendJSON(nil, back)
		if err != nil || !bytes.Equal(js, js2) {
			t.Fatalf("JSON changed across a round trip (%v)\n%s\n%s", err, js, js2)
		}
	})
}

// FuzzFrameFromJSON: whatever the text, parsing fails with an error or
// yields a frame that verifies and round-trips through JSON byte for byte.
func FuzzFrameFromJSON(f *testing.F) {
	for _, frame := range sampleFrames() {
		js, err := AppendJSON(nil, frame)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js)
	}
	for _, s := range badJSON {
		f.Add([]byte(s.line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		frame, err := FrameFromJSON(line, nil)
		if err != nil {
			return
		}
		if err := Verify(frame); err != nil {
			t.Fatalf("frame parsed from JSON does not verify: %v\n%s", err, line)
		}
		js, err := AppendJSON(nil, frame)
		if err != nil {
			t.Fatal(err)
		}
		back, err := FrameFromJSON(js, nil)
		if err != nil || !bytes.Equal(back, frame) {
			t.Fatalf("frame changed across JSON (%v)\n%s", err, js)
		}
	})
}

func corpusEntry(b []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
}

func parseCorpusEntry(data []byte) ([]byte, error) {
	s := strings.TrimSpace(string(data))
	const pre = "go test fuzz v1\n[]byte("
	if !strings.HasPrefix(s, pre) || !strings.HasSuffix(s, ")") {
		return nil, fmt.Errorf("not a []byte corpus entry")
	}
	u, err := strconv.Unquote(s[len(pre) : len(s)-1])
	return []byte(u), err
}

// seedFrames are the FuzzVerify seeds: every corpus frame, truncated at
// half its payload, and with a bit of its root offset flipped.
func seedFrames() map[string][]byte {
	out := map[string][]byte{}
	for name, frame := range corpusFrames() {
		out[name] = frame
		cut := append([]byte(nil), frame[:HeaderSize+(len(frame)-HeaderSize)/2]...)
		putU32(cut, 0, uint32(len(cut)))
		out[name+"-truncated"] = cut
		flip := append([]byte(nil), frame...)
		flip[HeaderSize+1] ^= 0x10
		out[name+"-flipped"] = flip
	}
	return out
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("TAPEWIRE_WRITE_CORPUS") != "1" {
		t.Skip("set TAPEWIRE_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, entries map[string][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range entries {
			if err := os.WriteFile(filepath.Join(dir, name), corpusEntry(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzVerify", seedFrames())
	jsonSeeds := map[string][]byte{}
	for typ, frame := range sampleFrames() {
		js, err := AppendJSON(nil, frame)
		if err != nil {
			t.Fatal(err)
		}
		jsonSeeds[typ.String()] = js
	}
	for i, s := range badJSON {
		jsonSeeds[fmt.Sprintf("bad-%02d", i)] = []byte(s.line)
	}
	write("FuzzFrameFromJSON", jsonSeeds)
}

// TestFuzzCorpusCurrent: the committed corpora still hold a valid frame (and
// its JSON) of every type, so they do not rot when events.fbs changes.
func TestFuzzCorpusCurrent(t *testing.T) {
	for _, target := range []string{"FuzzVerify", "FuzzFrameFromJSON"} {
		dir := filepath.Join("testdata", "fuzz", target)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("%v (regenerate with TAPEWIRE_WRITE_CORPUS=1)", err)
		}
		seen := map[Type]bool{}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			b, err := parseCorpusEntry(data)
			if err != nil {
				t.Fatalf("%s/%s: %v", target, e.Name(), err)
			}
			frame := b
			if target == "FuzzFrameFromJSON" {
				if frame, err = FrameFromJSON(b, nil); err != nil {
					continue
				}
			}
			if Verify(frame) == nil {
				h, _ := DecodeHeader(frame)
				seen[h.Type] = true
			}
		}
		var missing []string
		for _, typ := range Types() {
			if !seen[typ] {
				missing = append(missing, typ.String())
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s corpus has no valid frame of %v (regenerate with TAPEWIRE_WRITE_CORPUS=1)", target, missing)
		}
	}
}
