package schema

// Regenerate schema/fb (flatc's Go code) and events_gen.go, events_fb_test.go
// (schemagen) from events.fbs with Debian's flatc 2.0.8 (flatbuffers-compiler):
//
//	go generate ./schema/...
//
// Both steps are deterministic, so regenerating an unchanged schema leaves
// the tree unchanged; CI relies on that.

//go:generate sh -c "rm -rf fb && flatc --go -o . events.fbs && gofmt -w fb"
//go:generate go run ./internal/schemagen -fbs events.fbs -out events_gen.go -test events_fb_test.go
