package schema

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeCurrent regenerates schema/fb, events_gen.go and
// events_fb_test.go from events.fbs into a temporary directory and requires
// the committed files to equal them, so descriptors, builders and readers
// cannot drift from the schema. It needs Debian's flatc (flatbuffers-compiler).
func TestGeneratedCodeCurrent(t *testing.T) {
	flatc, err := exec.LookPath("flatc")
	if err != nil {
		t.Skip("flatc is not installed (apt-get install flatbuffers-compiler)")
	}
	// The committed code is flatc 2.0.8's; other versions write other code.
	if out, err := exec.Command(flatc, "--version").Output(); err != nil || !bytes.Contains(out, []byte("version 2.0.8")) {
		t.Skipf("flatc is %q, not Debian's 2.0.8 that generated the committed code", bytes.TrimSpace(out))
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not in PATH")
	}
	dir := t.TempDir()
	run := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run(flatc, "--go", "-o", dir, "events.fbs")
	run("gofmt", "-w", filepath.Join(dir, "fb"))
	run(gotool, "run", "./internal/schemagen", "-fbs", "events.fbs",
		"-out", filepath.Join(dir, "events_gen.go"), "-test", filepath.Join(dir, "events_fb_test.go"))

	compare := func(committed, fresh string) {
		a, err := os.ReadFile(committed)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(fresh)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from what events.fbs generates: run go generate ./schema/...", committed)
		}
	}
	compare("events_gen.go", filepath.Join(dir, "events_gen.go"))
	compare("events_fb_test.go", filepath.Join(dir, "events_fb_test.go"))
	fresh, _ := filepath.Glob(filepath.Join(dir, "fb", "*.go"))
	committed, _ := filepath.Glob(filepath.Join("fb", "*.go"))
	if len(fresh) != len(committed) {
		t.Errorf("fb has %d files, events.fbs generates %d: run go generate ./schema/...", len(committed), len(fresh))
	}
	for _, f := range fresh {
		compare(filepath.Join("fb", filepath.Base(f)), f)
	}
}
