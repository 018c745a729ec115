//go:build tools

// Package tools records the commands build-node.sh compiles, so that
// `go mod tidy` keeps their dependencies in go.sum. It is never compiled.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
