package contenttest

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// The generated export's kinds and namespaces: entity i is of kind
// KindOf(i) in namespace NamespaceOf(i). The content benchmarks and the
// capacity run (internal/capacity/bigread) read exports made of these.
var (
	Kinds      = []string{"Order", "Line", "Customer"}
	Namespaces = []string{"", "tenant-b"}
)

// KindOf and NamespaceOf are those of entity i.
func KindOf(i int) string      { return Kinds[i%len(Kinds)] }
func NamespaceOf(i int) string { return Namespaces[(i/len(Kinds))%len(Namespaces)] }

// Entity is entity i as an EntityProto of about 1 KiB: its key (an
// id), its entity group, three indexed properties (an integer, a short
// string, a timestamp) and an unindexed text of about 900 bytes, the
// fields Datastore writes (datastore_v3.proto: EntityProto.key 13,
// entity_group 16, property 14, raw_property 15; Property.name 3,
// multiple 4, value 5, meaning 1; PropertyValue.int64Value 1,
// stringValue 3).
func Entity(i int) []byte {
	kind, ns := KindOf(i), NamespaceOf(i)
	var el []byte
	el = protowire.AppendTag(el, 2, protowire.BytesType)
	el = protowire.AppendString(el, kind)
	el = protowire.AppendTag(el, 3, protowire.VarintType)
	el = protowire.AppendVarint(el, uint64(5_000_000_000+i))
	var path []byte
	path = protowire.AppendTag(path, 1, protowire.StartGroupType)
	path = append(path, el...)
	path = protowire.AppendTag(path, 1, protowire.EndGroupType)
	var ref []byte
	ref = protowire.AppendTag(ref, 13, protowire.BytesType)
	ref = protowire.AppendString(ref, "s~bench-project")
	if ns != "" {
		ref = protowire.AppendTag(ref, 20, protowire.BytesType)
		ref = protowire.AppendString(ref, ns)
	}
	ref = protowire.AppendTag(ref, 14, protowire.BytesType)
	ref = protowire.AppendBytes(ref, path)

	property := func(field protowire.Number, name string, meaning uint64, value []byte) []byte {
		var p []byte
		if meaning != 0 {
			p = protowire.AppendTag(p, 1, protowire.VarintType)
			p = protowire.AppendVarint(p, meaning)
		}
		p = protowire.AppendTag(p, 3, protowire.BytesType)
		p = protowire.AppendString(p, name)
		p = protowire.AppendTag(p, 4, protowire.VarintType)
		p = protowire.AppendVarint(p, 0)
		p = protowire.AppendTag(p, 5, protowire.BytesType)
		p = protowire.AppendBytes(p, value)
		var e []byte
		e = protowire.AppendTag(e, field, protowire.BytesType)
		return protowire.AppendBytes(e, p)
	}
	integer := func(v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), v)
	}
	text := func(s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, 3, protowire.BytesType), s)
	}

	var e []byte
	e = protowire.AppendTag(e, 13, protowire.BytesType)
	e = protowire.AppendBytes(e, ref)
	e = protowire.AppendTag(e, 16, protowire.BytesType)
	e = protowire.AppendBytes(e, path)
	e = append(e, property(14, "total", 0, integer(uint64(i%10_000)*100))...)
	e = append(e, property(14, "status", 0, text([]string{"open", "paid", "shipped"}[i%3]))...)
	e = append(e, property(14, "created", 7, integer(1_764_000_000_000_000+uint64(i)*1_000_000))...) // GD_WHEN: µs
	// TEXT (15): unindexed, the bulk of a typical entity.
	desc := fmt.Sprintf("entity %d: ", i) + strings.Repeat("lorem ipsum dolor sit amet ", 34)
	e = append(e, property(15, "description", 15, text(desc))...)
	return e
}
