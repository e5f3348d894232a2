//go:build tools

// Package tools pins the Jaeger binaries used by the end-to-end tests.
// Nothing here is compiled into the project; `make -C e2e all` builds the
// listed commands from this module into a cache directory outside git.
package tools

import (
	_ "github.com/jaegertracing/jaeger/cmd/collector"
	_ "github.com/jaegertracing/jaeger/cmd/jaeger"
	_ "github.com/jaegertracing/jaeger/cmd/query"
	_ "github.com/jaegertracing/jaeger/cmd/remote-storage"
)
