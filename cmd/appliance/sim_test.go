package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSimWithoutTopicsFailsNamingTheTopic(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "--base", t.TempDir(), "--namespace", "x", "--attach-timeout", "100ms"}, &stdout, &stderr)
	if code == 0 {
		t.Fatal("sim without topics exited 0")
	}
	if !strings.Contains(stderr.String(), `topic "ticks"`) {
		t.Fatalf("stderr does not name the missing topic:\n%s", stderr.String())
	}
}

func TestSimRejectsBadRate(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"sim", "--rate", "-5"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "ticks per second -5") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
