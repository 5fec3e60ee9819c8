package store_test

import (
	"testing"

	"github.com/dsexport/dsexport/store/storetest"
)

func TestTargetPage(t *testing.T) {
	for _, emu := range emulators {
		t.Run(emu.name, func(t *testing.T) {
			host := emu.host(t)
			storetest.RunTargetPage(t, func(t *testing.T) storetest.TargetPager { return open(t, host) })
		})
	}
}
