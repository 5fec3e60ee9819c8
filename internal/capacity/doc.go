// Package capacity measures one dsexport serve process following many
// exports at once. The measurement is capacity_test.go, built only with the
// capacity tag: scripts/capacity.sh runs it (see BENCHMARKS.md).
package capacity
