module github.com/tapewire/tapewire/bench

go 1.26.0

replace github.com/tapewire/tapewire => ../

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/tapewire/tapewire v0.0.0-00010101000000-000000000000
)

require golang.org/x/sys v0.50.0 // indirect
