package memstore_test

import (
	"testing"

	"github.com/dsexport/dsexport/store/memstore"
	"github.com/dsexport/dsexport/store/storetest"
)

func TestTargetPage(t *testing.T) {
	storetest.RunTargetPage(t, func(t *testing.T) storetest.TargetPager { return memstore.New() })
}
