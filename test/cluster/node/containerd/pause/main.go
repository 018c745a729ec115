// Command pause is the sandbox ("pause") container of the test node's pods:
// it holds the pod's namespaces open, reaps orphans (it is PID 1 when the pod
// shares its process namespace) and exits on SIGINT or SIGTERM. The usual
// image comes from a registry this machine cannot reach, so the harness builds
// this one locally.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
