package appliance

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/tapewire/tapewire/lsm"
	"github.com/tapewire/tapewire/schema"
)

// Users is the appliance's user store. Users and their account bindings are
// events (UserRegistered, AccountBound) on the internal topic "users": they
// go through the WAL like every other event, so they recover after a crash
// and will replicate with the log; the store materializes them under
// s/user/<id> and s/binding/<id>/<account>. Passwords are kept only as
// argon2id hashes with their parameters and salt.
//
// Concurrency: every method is safe for concurrent use. Writes are
// serialized (a register racing another for the same id must not both
// succeed); password hashing is bounded by users.max_concurrent_kdf.
type Users struct {
	n       *Node
	cfg     UsersConfig
	writeMu sync.Mutex
	kdf     chan struct{}
	dummy   schema.Argon2idParams // hashed for unknown users, so they cost as much as known ones
}

// User is a user as the store holds it (no password material).
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	Accounts  []string  `json:"accounts"`
}

// Errors of the user store; test with errors.Is.
var (
	ErrUserExists   = errors.New("user already exists")
	ErrUserNotFound = errors.New("no such user")
	ErrUserDisabled = errors.New("user is disabled")
)

// maxUserIDBytes bounds user and account ids.
const maxUserIDBytes = 128

func newUsers(n *Node) *Users {
	u := &Users{n: n, cfg: n.cfg.Users, kdf: make(chan struct{}, n.cfg.Users.MaxConcurrentKDF)}
	u.dummy = schema.Argon2idParams{Time: u.cfg.Argon2Time, MemoryKiB: u.cfg.Argon2MemoryKiB, Threads: u.cfg.Argon2Threads, Salt: make([]byte, u.cfg.SaltBytes)}
	return u
}

func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s id is empty", what)
	case len(id) > maxUserIDBytes:
		return fmt.Errorf("%s id %q has %d bytes, over the limit of %d", what, id[:16]+"...", len(id), maxUserIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s id %q is not valid UTF-8", what, id)
	case strings.ContainsAny(id, "/\x00"):
		return fmt.Errorf("%s id %q contains '/' or NUL", what, id)
	}
	return nil
}

func (u *Users) checkPassword(p string) error {
	if len(p) < u.cfg.PasswordMinBytes || len(p) > u.cfg.PasswordMaxBytes {
		return fmt.Errorf("password of %d bytes: must be %d..%d bytes (users.password_min_bytes, users.password_max_bytes)", len(p), u.cfg.PasswordMinBytes, u.cfg.PasswordMaxBytes)
	}
	return nil
}

// hash computes the argon2id hash of password with params, waiting for a
// KDF slot (each hash takes argon2_memory_kib of memory).
func (u *Users) hash(ctx context.Context, password string, p schema.Argon2idParams) ([]byte, error) {
	select {
	case u.kdf <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-u.kdf }()
	return argon2.IDKey([]byte(password), p.Salt, p.Time, p.MemoryKiB, p.Threads, uint32(u.cfg.HashBytes)), nil
}

// Register creates a user with a password. The user id is also its login
// name.
func (u *Users) Register(ctx context.Context, id, password string) error {
	if err := checkID("user", id); err != nil {
		return err
	}
	if err := u.checkPassword(password); err != nil {
		return err
	}
	p := schema.Argon2idParams{Time: u.cfg.Argon2Time, MemoryKiB: u.cfg.Argon2MemoryKiB, Threads: u.cfg.Argon2Threads, Salt: make([]byte, u.cfg.SaltBytes)}
	if _, err := rand.Read(p.Salt); err != nil {
		return err
	}
	h, err := u.hash(ctx, password, p)
	if err != nil {
		return err
	}
	u.writeMu.Lock()
	defer u.writeMu.Unlock()
	if _, err := u.get(id); err == nil {
		return fmt.Errorf("register %s: %w", id, ErrUserExists)
	} else if !errors.Is(err, ErrUserNotFound) {
		return err
	}
	ev := &schema.UserRegistered{UserID: id, UserName: id, PasswordHash: h, Kdf: p, CreatedNs: time.Now().UnixNano()}
	return u.write(ev)
}

// Disable marks a user disabled: VerifyPassword fails for it from then on.
func (u *Users) Disable(ctx context.Context, id string) error {
	u.writeMu.Lock()
	defer u.writeMu.Unlock()
	ev, err := u.get(id)
	if err != nil {
		return err
	}
	ev.Disabled = true
	return u.write(ev)
}

// Bind binds a trading account to a user.
func (u *Users) Bind(ctx context.Context, id, account string) error {
	if err := checkID("account", account); err != nil {
		return err
	}
	u.writeMu.Lock()
	defer u.writeMu.Unlock()
	if _, err := u.get(id); err != nil {
		return err
	}
	return u.write(&schema.AccountBound{UserID: id, AccountID: account, BoundNs: time.Now().UnixNano()})
}

// write builds the event's frame and persists it through the committer.
func (u *Users) write(ev schema.Event) error {
	frame, err := schema.AppendEvent(nil, schema.Header{PublishNs: time.Now().UnixNano()}, ev)
	if err != nil {
		return err
	}
	req := &adminRequest{frame: frame, done: make(chan error, 1)}
	return u.n.storage.submit(req)
}

// get reads a user's latest UserRegistered event.
func (u *Users) get(id string) (*schema.UserRegistered, error) {
	v, closer, err := u.n.db.Get(appendStateKey(nil, StateUser, []byte(id), nil))
	if errors.Is(err, lsm.ErrNotFound) {
		return nil, fmt.Errorf("user %q: %w", id, ErrUserNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	var ev schema.UserRegistered
	if _, err := schema.DecodeEvent(v, &ev); err != nil {
		return nil, fmt.Errorf("user %q: stored record: %w", id, err)
	}
	return &ev, nil
}

// VerifyPassword reports whether password is the user's. The hash compare
// is constant-time, and an unknown user costs a hash too, so timing tells
// nothing about which users exist. A disabled user gets ErrUserDisabled
// (after the hash, for the same reason).
func (u *Users) VerifyPassword(ctx context.Context, id, password string) (bool, error) {
	if len(password) > u.cfg.PasswordMaxBytes {
		return false, nil
	}
	ev, err := u.get(id)
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		return false, err
	}
	p, want := u.dummy, []byte(nil)
	if ev != nil {
		p, want = ev.Kdf, ev.PasswordHash
	}
	got, err := u.hash(ctx, password, p)
	if err != nil {
		return false, err
	}
	if ev == nil || len(want) != len(got) {
		return false, nil
	}
	ok := subtle.ConstantTimeCompare(got, want) == 1
	if ok && ev.Disabled {
		return false, ErrUserDisabled
	}
	return ok, nil
}

// Get returns one user with its bound accounts.
func (u *Users) Get(id string) (User, error) {
	ev, err := u.get(id)
	if err != nil {
		return User{}, err
	}
	return u.userOf(ev)
}

// List returns up to limit users in id order, starting after the id after.
func (u *Users) List(after string, limit int) ([]User, error) {
	lower := appendStateKey(nil, StateUser, []byte(after), nil)
	if after != "" {
		lower = append(lower, 0)
	} else {
		lower = []byte("s/" + StateUser + "/")
	}
	it := u.n.db.NewIter(&lsm.IterOptions{LowerBound: lower, UpperBound: []byte("s/" + StateUser + "0")})
	defer it.Close()
	var out []User
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		var ev schema.UserRegistered
		if _, err := schema.DecodeEvent(it.Value(), &ev); err != nil {
			return nil, fmt.Errorf("stored user %q: %w", it.Key(), err)
		}
		usr, err := u.userOf(&ev)
		if err != nil {
			return nil, err
		}
		out = append(out, usr)
	}
	return out, it.Error()
}

func (u *Users) userOf(ev *schema.UserRegistered) (User, error) {
	usr := User{ID: ev.UserID, Name: ev.UserName, Disabled: ev.Disabled, CreatedAt: time.Unix(0, ev.CreatedNs).UTC(), Accounts: []string{}}
	prefix := appendStateKey(nil, StateBinding, []byte(ev.UserID), nil)
	prefix = append(prefix, '/')
	upper := append(append([]byte(nil), prefix[:len(prefix)-1]...), '/'+1)
	it := u.n.db.NewIter(&lsm.IterOptions{LowerBound: prefix, UpperBound: upper})
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		var b schema.AccountBound
		if _, err := schema.DecodeEvent(it.Value(), &b); err != nil {
			return usr, fmt.Errorf("stored binding %q: %w", it.Key(), err)
		}
		usr.Accounts = append(usr.Accounts, b.AccountID)
	}
	sort.Strings(usr.Accounts)
	return usr, it.Error()
}
