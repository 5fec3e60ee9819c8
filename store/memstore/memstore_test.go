package memstore_test

import (
	"testing"

	"github.com/dsexport/dsexport/store/memstore"
	"github.com/dsexport/dsexport/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return memstore.New() })
}
