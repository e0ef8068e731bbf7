package appliance

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestUsers: register, verify, bind, disable through the API and the Go
// surface; users recover after a restart because they are WAL events; the
// password itself is stored nowhere.
func TestUsers(t *testing.T) {
	cfg := testConfig(t)
	n, _ := startNode(t, cfg)
	base := "http://" + n.AdminAddr()
	ctx := context.Background()
	if code, body := httpPost(t, base+"/v1/users", `{"id":"alice","password":"correct horse"}`); code != 201 || !strings.Contains(body, `"id": "alice"`) {
		t.Fatalf("add: %d %s", code, body)
	}
	if code, body := httpPost(t, base+"/v1/users", `{"id":"alice","password":"another one"}`); code != 409 || !strings.Contains(body, "already exists") {
		t.Fatalf("duplicate add: %d %s", code, body)
	}
	if code, body := httpPost(t, base+"/v1/users", `{"id":"bob","password":"short"}`); code != 400 || !strings.Contains(body, "password of 5 bytes: must be 8..1024 bytes") {
		t.Fatalf("short password: %d %s", code, body)
	}
	if code, body := httpPost(t, base+"/v1/users", `{"id":"bob","password":"long enough","extra":1}`); code != 400 || !strings.Contains(body, "unknown field") {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	if code, body := httpPost(t, base+"/v1/users/alice/accounts", `{"account":"A-1"}`); code != 200 || !strings.Contains(body, `"A-1"`) {
		t.Fatalf("bind: %d %s", code, body)
	}
	if code, body := httpPost(t, base+"/v1/users/nobody/accounts", `{"account":"A-1"}`); code != 404 {
		t.Fatalf("bind unknown: %d %s", code, body)
	}
	u := n.Users()
	for _, c := range []struct {
		id, pw string
		ok     bool
	}{{"alice", "correct horse", true}, {"alice", "correct horsE", false}, {"nobody", "correct horse", false}} {
		ok, err := u.VerifyPassword(ctx, c.id, c.pw)
		if err != nil || ok != c.ok {
			t.Errorf("VerifyPassword(%s, %s) = %v, %v; want %v", c.id, c.pw, ok, err, c.ok)
		}
	}
	n.Close()

	// Users are events in the WAL and the store: they recover.
	n2, _ := startNode(t, cfg)
	defer n2.Close()
	u = n2.Users()
	got, err := u.Get("alice")
	if err != nil || len(got.Accounts) != 1 || got.Accounts[0] != "A-1" || got.Disabled {
		t.Fatalf("after restart: %+v, %v", got, err)
	}
	if ok, err := u.VerifyPassword(ctx, "alice", "correct horse"); !ok || err != nil {
		t.Fatalf("after restart: VerifyPassword = %v, %v", ok, err)
	}
	if err := u.Disable(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if ok, err := u.VerifyPassword(ctx, "alice", "correct horse"); ok || !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("disabled user: VerifyPassword = %v, %v", ok, err)
	}
	base = "http://" + n2.AdminAddr()
	_, body := httpGet(t, base+"/v1/events?topic=users")
	ev := parseEventLines(t, body)
	if len(ev) != 3 || ev[0].Header.Type != "UserRegistered" || ev[1].Header.Type != "AccountBound" || ev[2].Header.Type != "UserRegistered" {
		t.Fatalf("user events: %s", body)
	}
	if strings.Contains(body, "correct horse") || strings.Contains(body, "Y29ycmVjdCBob3JzZQ") {
		t.Fatal("the password is stored")
	}
	_, body = httpGet(t, base+"/v1/users")
	if !strings.Contains(body, `"disabled": true`) {
		t.Fatalf("list: %s", body)
	}
}
