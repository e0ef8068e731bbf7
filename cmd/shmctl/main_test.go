package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tapewire/tapewire/ring"
	"github.com/tapewire/tapewire/schema"
	"github.com/tapewire/tapewire/shm"
)

const childEnv = "TAPEWIRE_SHMCTL_TEST_CHILD"

// The test binary re-executes itself to create a topic from a process that
// then exits, so gc sees a dead creator.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		base, ns, _ := strings.Cut(dir, "|")
		if _, err := ring.CreateLog(shm.Options{Base: base, Namespace: ns}, "orphan", ring.LogConfig{CapacityBytes: 4096, Mode: ring.Lossy}, ring.PublisherOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0) // without Close: the creator just dies
	}
	os.Exit(m.Run())
}

func testOptions(t *testing.T) shm.Options {
	t.Helper()
	base, err := os.MkdirTemp("/dev/shm", "tapewire-shmctl-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return shm.Options{Base: base, Namespace: "t"}
}

// shmctl runs one command line in-process.
func shmctl(t *testing.T, o shm.Options, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	stop := make(chan struct{})
	code = run(append([]string{"--base", o.Base, "--namespace", o.Namespace}, args...), strings.NewReader(stdin), &out, &errb, stop)
	return out.String(), errb.String(), code
}

func tickFrame(t *testing.T, instrument string, price float64) []byte {
	t.Helper()
	f, err := schema.AppendEvent(nil, schema.Header{PublishNs: 1767225600000000000}, &schema.Tick{InstrumentID: instrument, LastPrice: price, Datetime: 1})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// liveTopics creates a reliable log topic with a live publisher, 10 Tick
// frames and a registered subscriber that read 4 of them, and a last-value
// topic with two keys.
func liveTopics(t *testing.T) (shm.Options, *ring.Publisher) {
	o := testOptions(t)
	pub, err := ring.CreateLog(o, "ticks", ring.LogConfig{CapacityBytes: 1 << 16, Mode: ring.Reliable}, ring.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	sub, err := ring.OpenSubscriber(o, "ticks", ring.SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	for i := 0; i < 10; i++ {
		if _, err := pub.Offer(tickFrame(t, "SHFE.cu2501", 73250+float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := sub.Poll(func([]byte, uint64) {}, 4); n != 4 || err != nil {
		t.Fatalf("poll: %d %v", n, err)
	}
	w, err := ring.CreateLastValue(o, "quotes", ring.LastValueConfig{Slots: 16, MaxValueBytes: 512})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	w.Put("SHFE.cu2501", tickFrame(t, "SHFE.cu2501", 1))
	w.Put("SHFE.cu2501", tickFrame(t, "SHFE.cu2501", 2))
	w.Put("DCE.m2505", tickFrame(t, "DCE.m2505", 3))
	return o, pub
}

func TestListAndInfo(t *testing.T) {
	o, pub := liveTopics(t)
	out, errs, code := shmctl(t, o, "", "list", "--json")
	if code != 0 {
		t.Fatalf("list: %d %s", code, errs)
	}
	var list []listEntry
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(list) != 2 || list[1].Name != "ticks.ring" || list[1].Publisher != "live" || list[1].Frames != 10 || list[1].Subscribers != 1 || list[0].Keys != 2 || list[0].Version != 3 {
		t.Fatalf("list: %+v", list)
	}
	out, _, code = shmctl(t, o, "", "list")
	if code != 0 || !strings.Contains(out, "ticks.ring") || !strings.Contains(out, "live pid") {
		t.Fatalf("list text: %d\n%s", code, out)
	}
	out, errs, code = shmctl(t, o, "", "info", "ticks", "--json")
	if code != 0 {
		t.Fatalf("info: %d %s", code, errs)
	}
	var info logInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	if info.Mode != "reliable" || info.Frames != 10 || info.Published != pub.Position() || len(info.Subscribers) != 1 ||
		info.Subscribers[0].Lag == 0 || !info.Subscribers[0].Alive || info.Publisher.State != "live" || !info.Header.CreatorAlive {
		t.Fatalf("info: %+v", info)
	}
	out, _, code = shmctl(t, o, "", "info", "quotes")
	if code != 0 || !strings.Contains(out, "keys 2, table version 3") {
		t.Fatalf("info lvc: %d\n%s", code, out)
	}
}

func TestTailPrintsValidJSONLines(t *testing.T) {
	o, _ := liveTopics(t)
	out, errs, code := shmctl(t, o, "", "tail", "ticks")
	if code != 0 {
		t.Fatalf("tail: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 10 {
		t.Fatalf("tail printed %d lines, want 10:\n%s", len(lines), out)
	}
	for i, l := range lines {
		var v struct {
			Header struct {
				Type string `json:"type"`
				Seq  uint64 `json:"seq"`
			} `json:"header"`
			Event struct {
				InstrumentID string  `json:"instrument_id"`
				LastPrice    float64 `json:"last_price"`
			} `json:"event"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, l)
		}
		if v.Header.Type != "Tick" || v.Header.Seq != uint64(i) || v.Event.LastPrice != 73250+float64(i) || v.Event.InstrumentID != "SHFE.cu2501" {
			t.Fatalf("line %d: %+v", i, v)
		}
		if _, err := schema.FrameFromJSON([]byte(l), nil); err != nil {
			t.Fatalf("line %d does not parse back: %v", i, err)
		}
	}
	out, _, _ = shmctl(t, o, "", "tail", "ticks", "-n", "3")
	if n := strings.Count(out, "\n"); n != 3 {
		t.Fatalf("tail -n 3 printed %d lines", n)
	}
	// --from a later boundary (the subscriber's position after 4 frames).
	lg, _ := ring.OpenLog(o, "ticks")
	from := lg.Subscribers()[0].Position
	lg.Close()
	out, _, _ = shmctl(t, o, "", "tail", "ticks", "--from", fmt.Sprint(from))
	if n := strings.Count(out, "\n"); n != 6 || !strings.Contains(out, `"seq":4,`) {
		t.Fatalf("tail --from %d printed %d lines:\n%s", from, n, out)
	}
	if _, _, code := shmctl(t, o, "", "tail", "ticks", "--from", "3"); code != 1 {
		t.Fatalf("tail --from an unaligned position: exit %d, want 1", code)
	}
	if _, _, code := shmctl(t, o, "", "tail", "quotes"); code != 2 {
		t.Fatalf("tail of a last-value topic: exit %d, want 2", code)
	}
}

func TestTailFollowSeesNewFramesUntilInterrupted(t *testing.T) {
	o, pub := liveTopics(t)
	var out, errb bytes.Buffer
	stop := make(chan struct{})
	done := make(chan int)
	from := fmt.Sprint(pub.Position())
	go func() {
		done <- run([]string{"--base", o.Base, "--namespace", o.Namespace, "tail", "ticks", "-f", "--from", from}, nil, &out, &errb, stop)
	}()
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 5; i++ {
		if _, err := pub.Offer(tickFrame(t, "X", float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(400 * time.Millisecond)
	close(stop)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("tail -f: exit %d: %s", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail -f did not stop on interrupt")
	}
	if n := strings.Count(out.String(), "\n"); n != 5 || !strings.Contains(out.String(), `"seq":10,`) {
		t.Fatalf("tail -f printed %d lines:\n%s", n, out.String())
	}
}

func TestPubPublishesJSONLines(t *testing.T) {
	o, _ := liveTopics(t)
	line, _ := schema.AppendJSON(nil, tickFrame(t, "SHFE.al2501", 20000))
	in := string(line) + "\n\n" + string(line) + "\n"
	_, errs, code := shmctl(t, o, in, "pub", "--create", "--mode", "lossy", "--capacity", "65536", "fromjson")
	if code != 0 || !strings.Contains(errs, "published 2 frames") {
		t.Fatalf("pub: %d %s", code, errs)
	}
	out, _, _ := shmctl(t, o, "", "tail", "fromjson")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, `"instrument_id":"SHFE.al2501"`) || !strings.Contains(out, `"seq":1,`) {
		t.Fatalf("tail after pub:\n%s", out)
	}
	_, errs, code = shmctl(t, o, string(line)+"\n{not json\n", "pub", "fromjson")
	if code != 1 || !strings.Contains(errs, "stdin line 2") {
		t.Fatalf("pub of a bad line: exit %d: %s", code, errs)
	}
	// The live publisher holds "ticks": a second one is refused.
	if _, errs, code := shmctl(t, o, string(line)+"\n", "pub", "ticks"); code != 1 || !strings.Contains(errs, "live publisher") {
		t.Fatalf("pub to a topic with a live publisher: exit %d: %s", code, errs)
	}
	if _, _, code := shmctl(t, o, "", "pub", "nosuchtopic"); code != 3 {
		t.Fatalf("pub to a missing topic: exit %d, want 3", code)
	}
}

func TestLVCGetAndList(t *testing.T) {
	o, _ := liveTopics(t)
	out, errs, code := shmctl(t, o, "", "lvc", "get", "quotes", "SHFE.cu2501")
	if code != 0 {
		t.Fatalf("lvc get: %d %s", code, errs)
	}
	var v struct {
		Key     string `json:"key"`
		Version uint64 `json:"version"`
		Frame   struct {
			Event struct {
				LastPrice float64 `json:"last_price"`
			} `json:"event"`
		} `json:"frame"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Key != "SHFE.cu2501" || v.Version != 2 || v.Frame.Event.LastPrice != 2 {
		t.Fatalf("lvc get: %v %+v\n%s", err, v, out)
	}
	if _, _, code := shmctl(t, o, "", "lvc", "get", "quotes", "NOPE"); code != 3 {
		t.Fatalf("lvc get of a missing key: exit %d, want 3", code)
	}
	out, _, code = shmctl(t, o, "", "lvc", "list", "quotes", "--json")
	var entries []ring.LastValueEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || code != 0 || len(entries) != 2 {
		t.Fatalf("lvc list: %d %v %s", code, err, out)
	}
	if _, _, code := shmctl(t, o, "", "lvc", "list", "ticks"); code != 2 {
		t.Fatalf("lvc list of a log topic: exit %d, want 2", code)
	}
}

// TestLVCGetWithholdsSecretsOfBadFrames: a value schema cannot render is
// shown as bytes, but only its header when its type has secrets.
func TestLVCGetWithholdsSecretsOfBadFrames(t *testing.T) {
	o, _ := liveTopics(t)
	w, err := ring.CreateLastValue(o, "xfer", ring.LastValueConfig{Slots: 4, MaxValueBytes: 512})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	const secret = "hunter2-in-a-bad-frame"
	frame, err := schema.AppendEvent(nil, schema.Header{}, &schema.TransferRequest{UserID: "u1", FuturePassword: secret, BankPassword: secret})
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(frame[schema.HeaderSize:], 0xFFFF_FFF0) // root offset outside the payload
	if _, err := w.Put("u1", frame); err != nil {
		t.Fatal(err)
	}
	out, errs, code := shmctl(t, o, "", "lvc", "get", "xfer", "u1")
	if code != 0 {
		t.Fatalf("lvc get: %d %s", code, errs)
	}
	var v struct {
		Bytes    []byte `json:"bytes_base64"`
		Redacted bool   `json:"bytes_redacted"`
		Len      int    `json:"bytes_len"`
		Error    string `json:"frame_error"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !v.Redacted || v.Len != len(frame) || len(v.Bytes) != schema.HeaderSize || bytes.Contains(v.Bytes, []byte(secret)) || v.Error == "" {
		t.Fatalf("bad TransferRequest value: %+v\n%s", v, out)
	}
}

func TestTopShowsRates(t *testing.T) {
	o, pub := liveTopics(t)
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		frame := tickFrame(t, "R", 1)
		for {
			select {
			case <-stop:
				return
			default:
			}
			pub.Offer(frame) // the subscriber never reads: back-pressure ends the burst
			time.Sleep(time.Millisecond)
		}
	}()
	out, errs, code := shmctl(t, o, "", "top", "--interval", "100ms", "--count", "2")
	close(stop)
	<-published
	if code != 0 {
		t.Fatalf("top: %d %s", code, errs)
	}
	if strings.Count(out, "shmctl top") != 2 || !strings.Contains(out, "ticks.ring") || !strings.Contains(out, "quotes.lvc") {
		t.Fatalf("top output:\n%s", out)
	}
}

func TestGCRemovesOnlyDeadUnmappedSegments(t *testing.T) {
	o, _ := liveTopics(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+o.Base+"|"+o.Namespace)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	out, _, code := shmctl(t, o, "", "gc", "--dry-run")
	if code != 0 || !strings.Contains(out, "would remove orphan.ring") || !strings.Contains(out, "keep ticks.ring") || !strings.Contains(out, "keep quotes.lvc") {
		t.Fatalf("gc --dry-run: %d\n%s", code, out)
	}
	if _, err := os.Stat(o.Dir() + "/orphan.ring"); err != nil {
		t.Fatal("dry run removed the segment")
	}
	// While someone maps it, it stays.
	lg, err := ring.OpenLog(o, "orphan")
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ = shmctl(t, o, "", "gc")
	if !strings.Contains(out, "keep orphan.ring: mapped") {
		t.Fatalf("gc while the segment is open:\n%s", out)
	}
	lg.Close()
	out, _, code = shmctl(t, o, "", "gc")
	if code != 0 || !strings.Contains(out, "removed orphan.ring") {
		t.Fatalf("gc: %d\n%s", code, out)
	}
	if _, err := os.Stat(o.Dir() + "/orphan.ring"); !os.IsNotExist(err) {
		t.Fatal("gc left the dead segment")
	}
}

func TestGCDecisionTable(t *testing.T) {
	for _, c := range []struct {
		headerOK, alive, inUse bool
		age                    time.Duration
		remove                 bool
	}{
		{true, true, false, time.Hour, false},
		{true, false, false, 0, true},
		{true, false, true, time.Hour, false},
		{false, false, false, time.Second, false},
		{false, false, false, time.Minute, true},
		{false, false, true, time.Hour, false},
	} {
		if got, why := gcDecision(c.headerOK, c.alive, c.inUse, c.age); got != c.remove {
			t.Errorf("%+v: remove=%v (%s)", c, got, why)
		}
	}
}

func TestExitCodes(t *testing.T) {
	o, _ := liveTopics(t)
	if err := os.WriteFile(o.Dir()+"/junk.ring", bytes.Repeat([]byte{7}, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"bogus"}, 2},
		{[]string{}, 2},
		{[]string{"info"}, 2},
		{[]string{"list", "--nope"}, 2},
		{[]string{"info", "missing"}, 3},
		{[]string{"info", "junk"}, 4},
		{[]string{"tail", "junk"}, 4},
		{[]string{"info", "bad/name"}, 2},
		{[]string{"list"}, 0},
	} {
		_, errs, code := shmctl(t, o, "", c.args...)
		if code != c.code {
			t.Errorf("shmctl %v: exit %d, want %d (%s)", c.args, code, c.code, errs)
		}
		if code != 0 && !strings.HasPrefix(errs, "shmctl: ") && !strings.Contains(errs, "\nshmctl: ") {
			t.Errorf("shmctl %v: stderr %q lacks the shmctl: prefix", c.args, errs)
		}
	}
}
