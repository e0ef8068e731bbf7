package schema

import (
	"fmt"
	"strconv"
)

// Type identifies the root table of a frame's payload. Values are part of the
// on-disk and in-memory format: never renumber, only add.
type Type uint16

// The frame types. TypePadding is not an event: a ring writes it to fill the
// end of its data area before a wrap, and readers skip it.
const (
	TypePadding Type = 0

	TypeHeartbeat  Type = 1
	TypeCheckpoint Type = 2

	TypeTick              Type = 10
	TypeOrderBookSnapshot Type = 11
	TypeOrderBookDelta    Type = 12
	TypeInstrument        Type = 13
	TypeKline             Type = 14

	TypeOrder    Type = 20
	TypeTrade    Type = 21
	TypeAccount  Type = 22
	TypePosition Type = 23
	TypeTransfer Type = 24
	TypeNotify   Type = 25

	TypeUserRegistered Type = 30
	TypeAccountBound   Type = 31

	TypeOrderRequest    Type = 40
	TypeCancelRequest   Type = 41
	TypeTransferRequest Type = 42
)

// eventType is one row of the registry: a frame type, its name and its root
// table. The rows are generated from events.fbs (events_gen.go).
type eventType struct {
	typ  Type
	name string
	desc *tableDesc
	new  func() Event
}

// maxType bounds the type ids the registry indexes directly.
const maxType = 1 << 8

var (
	typeByID   [maxType]*eventType
	typeByName = map[string]Type{"Padding": TypePadding}
	allTypes   []Type
)

func init() {
	for i := range eventTypes {
		et := &eventTypes[i]
		if int(et.typ) >= maxType || typeByID[et.typ] != nil || et.typ == TypePadding {
			panic(fmt.Sprintf("schema: type id %d of %s is reserved, duplicated or above %d", et.typ, et.name, maxType))
		}
		typeByID[et.typ] = et
		typeByName[et.name] = et.typ
		allTypes = append(allTypes, et.typ)
	}
}

func lookupType(t Type) *eventType {
	if int(t) < maxType {
		return typeByID[t]
	}
	return nil
}

// String returns the name of the type ("Tick", "Padding"), or "Type(n)" for
// an id the registry does not know.
func (t Type) String() string {
	if t == TypePadding {
		return "Padding"
	}
	if et := lookupType(t); et != nil {
		return et.name
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Known reports whether t is Padding or an event type of events.fbs.
func (t Type) Known() bool { return t == TypePadding || lookupType(t) != nil }

// TypeByName returns the type called name (as Type.String spells it).
func TypeByName(name string) (Type, bool) {
	t, ok := typeByName[name]
	return t, ok
}

// Types returns every event type in id order (Padding, not an event, is not
// among them). The caller may modify the returned slice.
func Types() []Type { return append([]Type(nil), allTypes...) }

// NewEvent returns a new zero event of type t, or false when t is not an
// event type.
func NewEvent(t Type) (Event, bool) {
	if et := lookupType(t); et != nil {
		return et.new(), true
	}
	return nil, false
}
