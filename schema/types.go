package schema

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
