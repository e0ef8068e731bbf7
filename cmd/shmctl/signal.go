package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyInterrupt closes stop on the first SIGINT or SIGTERM, so a following
// tail or top ends cleanly with exit code 0.
func notifyInterrupt(stop chan struct{}) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-c
		close(stop)
	}()
}
