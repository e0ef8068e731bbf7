package appliance

import "testing"

// TestLoadGenFrameSizes: the small mix stays within 60..210 bytes and
// averages 100-200; the large mix covers every state kind.
func TestLoadGenFrameSizes(t *testing.T) {
	frames, err := LoadGenFrames(1, 150, 600)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range frames {
		if len(f) < 60 || len(f) > 210 {
			t.Fatalf("small-mix frame of %d bytes", len(f))
		}
		total += len(f)
	}
	if avg := total / len(frames); avg < 100 || avg > 200 {
		t.Fatalf("small mix averages %d bytes", avg)
	}
	frames, err = LoadGenFrames(1, 300, 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, f := range frames {
		k, err := StateKeyOf(f)
		if err != nil {
			t.Fatal(err)
		}
		if k != "" {
			kind, _ := stateIDFromKey([]byte(k))
			kinds[kind] = true
		}
	}
	for _, k := range []string{StateQuote, StateOrder, StateAccount, StatePosition} {
		if !kinds[k] {
			t.Errorf("large mix has no %s state", k)
		}
	}
}
