package base

// InternalIterator walks encoded internal keys in order. Positioning methods
// return whether the iterator is at an entry; after false, Error tells
// exhaustion (nil) from failure. Key and Value are views valid until the next
// positioning call.
type InternalIterator interface {
	First() bool
	Last() bool
	Next() bool
	Prev() bool
	// SeekGE moves to the first key >= (ukey, trailer).
	SeekGE(ukey []byte, trailer uint64) bool
	// SeekLT moves to the last key < (ukey, trailer).
	SeekLT(ukey []byte, trailer uint64) bool
	Key() []byte
	Value() []byte
	Error() error
	Close() error
}

// SearchTrailerAll is the trailer of a search key that sorts before every
// version of its user key: SeekGE(k, SearchTrailerAll) finds k's newest
// version, SeekLT(k, SearchTrailerAll) the last entry of the previous key.
const SearchTrailerAll = uint64(SeqNumMax)<<8 | uint64(KindMax)
