package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapewire/tapewire/appliance"
)

func TestConfigDefaultIsLoadable(t *testing.T) {
	code, out, errOut := runCLI("config", "default")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	path := filepath.Join(t.TempDir(), "t.toml")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("config", "check", path); code != 0 {
		t.Fatalf("config check of the default: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"[storage]", "batch_max_frames = 4096", "(frames [1..1048576])", "[[topics]]", `name = "quotes"`} {
		if !strings.Contains(out, want) {
			t.Errorf("config default lacks %q", want)
		}
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(path, []byte("[wal]\nmax_inflight_frames = 99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("run", "-c", path)
	if code != 1 || !strings.Contains(errOut, "wal.max_inflight_frames = 99: above the maximum 16") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI("run", "-c", path, "--set", "wal.max_inflight_frames=4", "--storage-cpu", "-5")
	if code != 1 || !strings.Contains(errOut, "storage.cpu = -5: below the minimum -1") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestLoadgenFlags(t *testing.T) {
	code, _, errOut := runCLI("loadgen", "--wait", "sometimes")
	if code != 1 || !strings.Contains(errOut, `--wait "sometimes": want none or durable`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI("loadgen", "--acked-log", filepath.Join(t.TempDir(), "a"))
	if code != 1 || !strings.Contains(errOut, "--acked-log needs --wait durable") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestUsersNeedsRunningAppliance(t *testing.T) {
	code, _, errOut := runCLI("users", "list", "--admin", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "is the appliance running?") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI("version")
	if code != 0 || !strings.HasPrefix(out, "tapewire appliance ") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestDemoConfigEmbedded(t *testing.T) {
	cfg, err := appliance.DemoConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Shm.Namespace != "demo" || cfg.Admin.Listen != "127.0.0.1:7070" || len(cfg.Topics) != 5 {
		t.Fatalf("demo config: %+v", cfg)
	}
}
