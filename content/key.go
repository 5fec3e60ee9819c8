package content

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Each record of an export's output file is one entity as a legacy App
// Engine EntityProto (onestore's entity.proto, proto2), the format
// `datastore_v3` spoke. Only its key is read, with protowire; every other
// field is skipped. The field numbers relied on are those of
// google.golang.org/appengine's internal/datastore/datastore_v3.proto
// (github.com/golang/appengine), which mirrors App Engine's entity_pb:
//
//	EntityProto.key        = 13 (Reference)
//	Reference.app          = 13 (string)
//	Reference.name_space   = 20 (string; absent: the default namespace)
//	Reference.path         = 14 (Path)
//	Path.Element           =  1 (repeated group)
//	Path.Element.type      =  2 (string: the kind)
//	Path.Element.id        =  3 (int64)
//	Path.Element.name      =  4 (string)
//	Reference.database_id  = 23 (string; absent: the default database)
//
// database_id is not in that copy of the proto: field 23 is as the
// Datastore emulator writes it (the key of an entity of a database "other"
// carries 0xba 0x01 0x05 "other": field 23, wire type 2; see
// testdata/export and TestParseEntityKeyDatabase).
const (
	entityKey     = 13
	referenceApp  = 13
	referenceNS   = 20
	referencePath = 14
	referenceDB   = 23
	pathElement   = 1
	elementType   = 2
)

// key is what the content check needs of an entity's key.
type key struct {
	app, namespace, database, kind string
}

var errNoKey = errors.New("no key (EntityProto field 13)")

// parseEntityKey reads the key of one EntityProto record.
func parseEntityKey(b []byte) (key, error) {
	var ref []byte
	found := false
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num == entityKey && typ == protowire.BytesType {
			ref, found = v, true
		}
		return nil
	})
	if err != nil {
		return key{}, fmt.Errorf("entity: %w", err)
	}
	if !found {
		return key{}, errNoKey
	}
	var k key
	var elements int
	err = fields(ref, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == referenceApp && typ == protowire.BytesType:
			k.app = string(v)
		case num == referenceNS && typ == protowire.BytesType:
			k.namespace = string(v)
		case num == referenceDB && typ == protowire.BytesType:
			k.database = string(v)
		case num == referencePath && typ == protowire.BytesType:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num != pathElement || typ != protowire.StartGroupType {
					return nil
				}
				elements++
				// The kind of the entity is the last element's type.
				k.kind = ""
				return fields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if num == elementType && typ == protowire.BytesType {
						k.kind = string(v)
					}
					return nil
				})
			})
		}
		return nil
	})
	if err != nil {
		return key{}, fmt.Errorf("key: %w", err)
	}
	if elements == 0 || k.kind == "" {
		return key{}, errors.New("key without a kind (no path element with a type)")
	}
	return k, nil
}

// fields calls f with each field of the message b: for a length-delimited
// field its bytes, for a group its contents without the end marker, nil for
// the other wire types. A malformed message is an error, never a panic.
func fields(b []byte, f func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.StartGroupType:
			// v is the group's contents, without its END_GROUP tag.
			v, n = protowire.ConsumeGroup(num, b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}
