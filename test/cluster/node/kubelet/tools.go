//go:build tools

// Package tools records the command build-node.sh compiles, so that
// `go mod tidy` keeps its dependencies in go.sum. It is never compiled.
package tools

import _ "k8s.io/kubernetes/cmd/kubelet"
