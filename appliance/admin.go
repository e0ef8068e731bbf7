package appliance

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapewire/tapewire/lsm"
	"github.com/tapewire/tapewire/schema"
)

// adminServer is the admin HTTP API (see doc.go for the endpoints). It
// listens on loopback by default; with admin.token_file every request but
// /healthz must carry "Authorization: Bearer <token>".
type adminServer struct {
	n     *Node
	ln    net.Listener
	srv   *http.Server
	token []byte
	done  chan struct{}
}

func newAdminServer(n *Node) (*adminServer, error) {
	cfg := n.cfg.Admin
	a := &adminServer{n: n, done: make(chan struct{})}
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin.token_file: %w", err)
		}
		a.token = []byte(strings.TrimSpace(string(b)))
		if len(a.token) < 16 {
			return nil, fmt.Errorf("admin.token_file %s: token of %d bytes, at least 16 required", cfg.TokenFile, len(a.token))
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin.listen %s: %w", cfg.Listen, err)
	}
	a.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.met.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/status", a.status)
	mux.HandleFunc("GET /v1/events", a.events)
	mux.HandleFunc("GET /v1/quarantine", a.quarantine)
	mux.HandleFunc("GET /v1/state/{kind}/{id...}", a.state)
	mux.HandleFunc("POST /v1/checkpoint", a.checkpoint)
	mux.HandleFunc("GET /v1/users", a.listUsers)
	mux.HandleFunc("POST /v1/users", a.addUser)
	mux.HandleFunc("POST /v1/users/{id}/disable", a.disableUser)
	mux.HandleFunc("POST /v1/users/{id}/accounts", a.bindUser)
	mux.HandleFunc("POST /v1/users/{id}/verify", a.verifyUser)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	a.srv = &http.Server{
		Handler:        a.auth(mux),
		ReadTimeout:    time.Duration(cfg.ReadTimeoutMs) * time.Millisecond,
		WriteTimeout:   time.Duration(cfg.WriteTimeoutMs) * time.Millisecond,
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		ErrorLog:       nil,
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.logf("admin API: %v", err)
		}
	}()
	return a, nil
}

// Addr is the address the API listens on.
func (a *adminServer) Addr() string { return a.ln.Addr().String() }

func (a *adminServer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
	<-a.done
}

func (a *adminServer) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, a.n.cfg.Admin.MaxBodyBytes)
		if a.token != nil && r.URL.Path != "/healthz" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), a.token) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tapewire"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (admin.token_file)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func (a *adminServer) healthz(w http.ResponseWriter, _ *http.Request) {
	if err := a.n.storage.Err(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failed", "error": err.Error()})
		return
	}
	if bf := a.n.BackfillStatus(); bf != nil && bf.State == "failed" {
		// Events are still made durable, but history reads of the
		// replayed range fail and the WAL is kept from its start: a
		// restart takes the backfill over.
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failed",
			"error": "event-log backfill failed (history of WAL LSN " + strconv.FormatUint(bf.FromLSN, 10) + " on is incomplete until a restart rebuilds it): " + bf.Error})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *adminServer) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.n.Status())
}

// topicID resolves the topic query parameter.
func (a *adminServer) topicID(w http.ResponseWriter, r *http.Request) (uint32, string, bool) {
	name := r.URL.Query().Get("topic")
	id, ok := a.n.catalog[name]
	if !ok {
		names := make([]string, 0, len(a.n.catalog))
		for k := range a.n.catalog {
			names = append(names, k)
		}
		writeError(w, http.StatusNotFound, "topic=%q: not a persisted topic (persisted: %s)", name, strings.Join(sortedStrings(names), ", "))
		return 0, "", false
	}
	return id, name, true
}

// limitParam parses limit (default admin.default_events_limit, at most
// admin.max_events_limit).
func (a *adminServer) limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	cfg := a.n.cfg.Admin
	s := r.URL.Query().Get("limit")
	if s == "" {
		return cfg.DefaultEventsLimit, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > cfg.MaxEventsLimit {
		writeError(w, http.StatusBadRequest, "limit=%q: must be an integer in 1..%d (admin.max_events_limit)", s, cfg.MaxEventsLimit)
		return 0, false
	}
	return n, true
}

func (a *adminServer) fromParam(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	s := r.URL.Query().Get("from")
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "from=%q: must be a sequence number (an unsigned 64-bit integer)", s)
		return 0, false
	}
	return n, true
}

// waitApplied makes reads consistent with durability: it waits (at most
// readYourWritesWait) until the store has applied everything the WAL had
// made durable when the request arrived, so an event whose durability a
// producer saw is readable.
func (a *adminServer) waitApplied(ctx context.Context) {
	target := uint64(a.n.wal.DurableLSN())
	deadline := time.Now().Add(readYourWritesWait)
	for a.n.storage.appliedLSN.Load() < target && a.n.storage.Err() == nil && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}

// readYourWritesWait bounds waitApplied.
const readYourWritesWait = 2 * time.Second

// events streams a topic's history as JSON lines (schema.AppendJSONRedacted), from
// sequence number from, at most limit events.
func (a *adminServer) events(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.topicID(w, r)
	if !ok {
		return
	}
	from, ok := a.fromParam(w, r)
	if !ok {
		return
	}
	limit, ok := a.limitParam(w, r)
	if !ok {
		return
	}
	// After a restart the replayed range's event log may still be being
	// rebuilt (backfill.go): wait for it, or say so; never a silent gap.
	if err := a.n.waitEventLog(r.Context(), id, from); err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "topic %s: %v", r.URL.Query().Get("topic"), err)
		return
	}
	a.waitApplied(r.Context())
	lower := appendEventKey(nil, id, from)
	_, upper := topicPrefix('e', id)
	it := a.n.db.NewIter(&lsm.IterOptions{LowerBound: lower, UpperBound: upper})
	defer it.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	buf := make([]byte, 0, 4096)
	count := 0
	for ok := it.First(); ok && count < limit; ok = it.Next() {
		var err error
		buf, err = schema.AppendJSONRedacted(buf[:0], it.Value())
		if err != nil {
			_, seq, _ := parseTopicSeqKey(it.Key())
			buf = fmt.Appendf(buf[:0], `{"error":%q,"seq":%d}`, err.Error(), seq)
		}
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return
		}
		count++
	}
	if err := it.Error(); err != nil {
		fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
	}
}

// quarantine lists a topic's quarantined frames with their reasons.
func (a *adminServer) quarantine(w http.ResponseWriter, r *http.Request) {
	id, _, ok := a.topicID(w, r)
	if !ok {
		return
	}
	from, ok := a.fromParam(w, r)
	if !ok {
		return
	}
	limit, ok := a.limitParam(w, r)
	if !ok {
		return
	}
	a.waitApplied(r.Context())
	lower := appendQuarantineKey(nil, id, from)
	_, upper := topicPrefix('q', id)
	it := a.n.db.NewIter(&lsm.IterOptions{LowerBound: lower, UpperBound: upper})
	defer it.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for ok, count := it.First(), 0; ok && count < limit; ok, count = it.Next(), count+1 {
		_, seq, _ := parseTopicSeqKey(it.Key())
		v := it.Value()
		q := struct {
			Seq    uint64 `json:"seq"`
			Reason string `json:"reason"`
			// Frame is the raw frame, or only its header when the rest may
			// hold a secret (FrameRedacted); FrameLen is always its size.
			Frame         []byte `json:"frame"`
			FrameLen      int    `json:"frame_len"`
			FrameRedacted bool   `json:"frame_redacted,omitempty"`
		}{Seq: seq}
		if len(v) >= 4 {
			n := int(binary.LittleEndian.Uint16(v[0:2]))
			if 4+n <= len(v) {
				q.Reason, q.Frame = string(v[4:4+n]), v[4+n:]
			}
		}
		q.FrameLen = len(q.Frame)
		if schema.MayHoldSecrets(q.Frame) {
			// A malformed frame cannot be rendered field by field, so a
			// frame of a type with secrets (TransferRequest's passwords),
			// or of no known type, shows only its header.
			q.Frame, q.FrameRedacted = q.Frame[:min(len(q.Frame), schema.HeaderSize)], true
		}
		if err := enc.Encode(q); err != nil {
			return
		}
	}
}

// state returns one state key as JSON, or lists a kind (an id that is
// empty or ends in '/' is a prefix).
func (a *adminServer) state(w http.ResponseWriter, r *http.Request) {
	kind, id := r.PathValue("kind"), r.PathValue("id")
	if err := checkKind(kind); err != nil {
		writeError(w, http.StatusNotFound, "%v", err)
		return
	}
	a.waitApplied(r.Context())
	if id == "" || strings.HasSuffix(id, "/") {
		a.stateList(w, r, kind, id)
		return
	}
	key := stateKeyFromID(kind, id)
	v, closer, err := a.n.db.Get(key)
	if errors.Is(err, lsm.ErrNotFound) {
		writeError(w, http.StatusNotFound, "state %s/%s: not found", kind, id)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "state %s/%s: %v", kind, id, err)
		return
	}
	defer closer.Close()
	out, err := schema.AppendJSONRedacted(nil, v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "state %s/%s: stored frame: %v", kind, id, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(out, '\n'))
}

func (a *adminServer) stateList(w http.ResponseWriter, r *http.Request, kind, prefix string) {
	limit, ok := a.limitParam(w, r)
	if !ok {
		return
	}
	lower := []byte("s/" + kind + "/")
	if prefix != "" {
		lower = append(stateKeyFromID(kind, strings.TrimSuffix(prefix, "/")), '/')
	}
	upper := append(append([]byte(nil), lower[:len(lower)-1]...), '/'+1)
	it := a.n.db.NewIter(&lsm.IterOptions{LowerBound: lower, UpperBound: upper})
	defer it.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	buf := make([]byte, 0, 4096)
	for ok, count := it.First(), 0; ok && count < limit; ok, count = it.Next(), count+1 {
		_, sid := stateIDFromKey(it.Key())
		buf = fmt.Appendf(buf[:0], `{"id":%q,"frame":`, sid)
		var err error
		if buf, err = schema.AppendJSONRedacted(buf, it.Value()); err != nil {
			buf = fmt.Appendf(buf, "null,\"error\":%q", err.Error())
		}
		buf = append(buf, "}\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}

func (a *adminServer) checkpoint(w http.ResponseWriter, _ *http.Request) {
	res, err := a.n.Checkpoint()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

type userRequest struct {
	ID       string `json:"id"`
	Password string `json:"password"`
	Account  string `json:"account"`
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "request body: %v (limit admin.max_body_bytes)", err)
		return false
	}
	return true
}

func userStatus(err error) int {
	switch {
	case errors.Is(err, ErrUserExists):
		return http.StatusConflict
	case errors.Is(err, ErrUserNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrUserDisabled):
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

func (a *adminServer) listUsers(w http.ResponseWriter, r *http.Request) {
	limit, ok := a.limitParam(w, r)
	if !ok {
		return
	}
	users, err := a.n.users.List(r.URL.Query().Get("after"), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, users)
}

func (a *adminServer) addUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := a.n.users.Register(r.Context(), req.ID, req.Password); err != nil {
		writeError(w, userStatus(err), "%v", err)
		return
	}
	u, err := a.n.users.Get(req.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func (a *adminServer) disableUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.n.users.Disable(r.Context(), id); err != nil {
		writeError(w, userStatus(err), "%v", err)
		return
	}
	u, _ := a.n.users.Get(id)
	writeJSON(w, http.StatusOK, u)
}

func (a *adminServer) bindUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeBody(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if err := a.n.users.Bind(r.Context(), id, req.Account); err != nil {
		writeError(w, userStatus(err), "%v", err)
		return
	}
	u, _ := a.n.users.Get(id)
	writeJSON(w, http.StatusOK, u)
}

func (a *adminServer) verifyUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeBody(w, r, &req) {
		return
	}
	ok, err := a.n.users.VerifyPassword(r.Context(), r.PathValue("id"), req.Password)
	if err != nil && !errors.Is(err, ErrUserDisabled) {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	res := map[string]any{"ok": ok}
	if err != nil {
		res["error"] = err.Error()
	}
	writeJSON(w, http.StatusOK, res)
}
