package appliance

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/config.md from the key table")

// TestConfigReference checks that docs/config.md is what the key table
// generates (run with -update to rewrite it).
func TestConfigReference(t *testing.T) {
	path := filepath.Join("..", "docs", "config.md")
	want := ConfigReferenceMarkdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("docs/config.md is stale: run go test ./appliance -run TestConfigReference -update")
	}
}

// TestDefaultConfigRoundTrip: `appliance config default` output loads back
// into exactly the defaults, and mentions every key with its unit.
func TestDefaultConfigRoundTrip(t *testing.T) {
	text := DefaultConfigTOML()
	cfg, err := ParseConfig("default", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if want := DefaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", cfg, want)
	}
	def := DefaultConfig()
	walkConfig(reflect.ValueOf(&def).Elem(), "", func(f fieldInfo) {
		if f.tag("doc") == "" || f.tag("unit") == "" {
			t.Errorf("key %s lacks doc or unit", f.key)
		}
		_, name := splitKey(f.key)
		if !f.ignoredForKind(&def) && !strings.Contains(text, "\n"+name+" = ") {
			t.Errorf("config default does not print %s", f.key)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, toml string
		want       []string // substrings of the error
	}{
		{"unknown key", "[wal]\nsegment_size = 1\n", []string{"unknown keys", "wal.segment_size"}},
		{"below min", "[wal]\nmax_inflight_frames = 0\n", []string{"wal.max_inflight_frames = 0", "below the minimum 1", "1..16"}},
		{"above max", "[storage]\nbatch_buffers = 5000\n", []string{"storage.batch_buffers = 5000", "above the maximum 1024"}},
		{"not pow2", "[[topics]]\nname = \"x\"\ncapacity_bytes = 3000\n", []string{"topics[0].capacity_bytes = 3000", "power of two"}},
		{"enum", "[[topics]]\nname = \"x\"\nmode = \"sometimes\"\n", []string{"topics[0].mode = \"sometimes\"", "reliable, lossy"}},
		{"lossy durable", "[[topics]]\nname = \"x\"\nmode = \"lossy\"\ndurable = true\n", []string{"topics[0].durable = true", "reliable"}},
		{"duplicate topic", "[lastvalue]\nenabled = false\n[[topics]]\nname = \"x\"\n[[topics]]\nname = \"x\"\n", []string{"topics[1].name", "also declared as topics[0]"}},
		{"reserved name", "[lastvalue]\nenabled = false\n[[topics]]\nname = \"users\"\n", []string{"internal topic"}},
		{"lastvalue source", "[[topics]]\nname = \"x\"\n", []string{"lastvalue.source = \"ticks\"", "declared log topic"}},
		{"batch vs group", "[storage]\nbatch_max_bytes = 2000000\n", []string{"storage.batch_max_bytes = 2000000", "wal.max_group_bytes - 64"}},
		{"frame vs batch", "[storage]\nbatch_max_bytes = 65536\n", []string{"max_frame_bytes = 65536", "must fit twice in storage.batch_max_bytes = 65536"}},
		{"fifo unpinned", "[storage]\nfifo_priority = 10\n", []string{"storage.fifo_priority = 10", "storage.cpu"}},
		{"syntax", "[wal\n", []string{"config t.toml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("t.toml", []byte(c.toml))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.toml)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestTopicDefaultsByKind: a topic table fills the keys it leaves out with
// its kind's defaults.
func TestTopicDefaultsByKind(t *testing.T) {
	cfg, err := ParseConfig("t", []byte(`
[lastvalue]
source = "md"
target = "lv"
[[topics]]
name = "md"
capacity_bytes = 1048576
[[topics]]
name = "lv"
kind = "last-value"
slots = 64
[[topics]]
name = "loose"
mode = "lossy"
`))
	if err != nil {
		t.Fatal(err)
	}
	md, lv, loose := cfg.Topics[0], cfg.Topics[1], cfg.Topics[2]
	if md.Kind != KindLog || md.Mode != ModeReliable || !md.Durable || md.CapacityBytes != 1<<20 || md.MaxFrameBytes != 64<<10 {
		t.Errorf("md = %+v", md)
	}
	if lv.Kind != KindLastValue || lv.Slots != 64 || lv.MaxFrameBytes != 1024 {
		t.Errorf("lv = %+v", lv)
	}
	if loose.Durable {
		t.Errorf("a lossy topic defaults to not durable: %+v", loose)
	}
}

func TestConfigSet(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Set("admin.listen", "127.0.0.1:9999"); err != nil || cfg.Admin.Listen != "127.0.0.1:9999" {
		t.Fatal(err, cfg.Admin.Listen)
	}
	if err := cfg.Set("storage.cpu", "3"); err != nil || cfg.Storage.CPU != 3 {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, val, want string }{
		{"storage.cpu", "-2", "storage.cpu = -2: below the minimum -1"},
		{"wal.max_inflight_frames", "x", `wal.max_inflight_frames = "x": not an integer (limits 1..16)`},
		{"no.such", "1", `no key "no.such"`},
	} {
		if err := cfg.Set(c.key, c.val); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Set(%s, %s) = %v, want %q", c.key, c.val, err, c.want)
		}
	}
}
