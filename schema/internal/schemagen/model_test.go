package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func compile(t *testing.T, fbs string) (*model, error) {
	t.Helper()
	flatc, err := exec.LookPath("flatc")
	if err != nil {
		t.Skip("flatc is not installed (apt-get install flatbuffers-compiler)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "s.fbs")
	if err := os.WriteFile(src, []byte("namespace fb;\nattribute \"type_id\";\nattribute \"max_len\";\n"+fbs), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(flatc, "--binary", "--schema", "-o", dir, src).CombinedOutput(); err != nil {
		t.Fatalf("flatc: %v\n%s", err, out)
	}
	bfbs, err := os.ReadFile(filepath.Join(dir, "s.bfbs"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootTab(bfbs)
	if err != nil {
		t.Fatal(err)
	}
	return buildModel(root)
}

// TestRejects: the generator refuses what schema/ does not support, saying
// which table and field.
func TestRejects(t *testing.T) {
	cases := []struct{ fbs, want string }{
		{`table A (type_id: 1) { s: string; }`, "table A field s: strings and vectors need (max_len: N)"},
		{`table A (type_id: 1) { x: long = 5; }`, "table A field x: non-zero defaults are not supported"},
		{`table A (type_id: 1) { x: long = null; }`, "table A field x: optional scalars are not supported"},
		{`table A (type_id: 1) { x: short; }`, "table A field x: base type 5 is not supported"},
		{`table A (type_id: 1) { x: long (max_len: 3); }`, "max_len applies to strings and vectors only"},
		{`enum E : int { X } table A (type_id: 1) { e: E; }`, "enum E: underlying type must be ubyte"},
		{`enum E : ubyte { X = 1 } table A (type_id: 1) { e: E = X; }`, "enum E: values must be dense from 0"},
		{`table A (type_id: 1) { x: long; } table B (type_id: 1) { x: long; }`, "share type_id 1"},
		{`table A (type_id: 0) { x: long; }`, `table A: type_id "0" is not in 1..65535`},
		{`struct S { x: long; } table A (type_id: 1) { s: S; }`, "inline structs in tables are not supported"},
		{`table A (type_id: 1) { v: [long] (max_len: 3); }`, "vectors of base type 9 are not supported"},
		{`union U { A } table A { u: U; }`, "unions are not supported"},
	}
	for _, c := range cases {
		_, err := compile(t, c.fbs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n  got %v\n  want an error containing %q", c.fbs, err, c.want)
		}
	}
}

// TestCanonicalLayout: 8-byte fields first, then 4-byte, then 1-byte, each
// group in id order, and a vtable that says so.
func TestCanonicalLayout(t *testing.T) {
	m, err := compile(t, `table A (type_id: 1) { b: bool; s: string (max_len: 9); x: double; i: int; y: long; }`)
	if err != nil {
		t.Fatal(err)
	}
	a := m.tables[0]
	offs := map[string]int{}
	for _, f := range a.fields {
		offs[f.name] = f.canonOff
	}
	want := map[string]int{"x": 4, "y": 12, "s": 20, "i": 24, "b": 28}
	for k, v := range want {
		if offs[k] != v {
			t.Errorf("%s at %d, want %d", k, offs[k], v)
		}
	}
	if a.canonSize != 29 || !a.align8 {
		t.Errorf("size %d align8 %v", a.canonSize, a.align8)
	}
	wantVT := []byte{14, 0, 29, 0, 28, 0, 20, 0, 4, 0, 24, 0, 12, 0}
	if string(a.canonVT) != string(wantVT) {
		t.Errorf("vtable %v, want %v", a.canonVT, wantVT)
	}
}
