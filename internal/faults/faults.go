// Package faults draws the random failures the fakes inject in fault runs:
// each call fails with a set probability, from a generator seeded so that a
// run can be repeated, and the failures are counted.
package faults

import (
	"math/rand/v2"
	"sync"
)

// Injector draws failures. Its zero value injects none.
type Injector struct {
	mu       sync.Mutex
	rate     float64
	rng      *rand.Rand
	injected int
}

// Set makes each Draw fail with probability rate, from a generator seeded
// with seed and salt (each fake its own salt, so that two fakes given the
// same seed do not fail in step).
func (i *Injector) Set(rate float64, seed, salt uint64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rate, i.rng = rate, rand.New(rand.NewPCG(seed, seed^salt))
}

// Draw tells whether this call fails and, if it does, which of the two
// kinds of failure the fake answers (first is true half of the time).
func (i *Injector) Draw() (fail, first bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.rng == nil || i.rng.Float64() >= i.rate {
		return false, false
	}
	i.injected++
	return true, i.rng.IntN(2) == 0
}

// Injected returns how many failures Draw caused so far.
func (i *Injector) Injected() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.injected
}
