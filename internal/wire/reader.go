// Package wire reads the compact binary forms sessiongate stores (the scs
// codec, the session record): a cursor over a byte slice that never
// panics on short or hostile input.
package wire

import "encoding/binary"

// Reader reads B front to back. Past the first error every read returns
// zero values (never panics) and Err stays true: check it once at the end.
type Reader struct {
	B   []byte // what is left to read
	Err bool   // a read ran past the end or Fail was called
}

// Fail marks the input as malformed.
func (r *Reader) Fail() { r.Err, r.B = true, nil }

// Next returns the next n bytes (capacity n: appending copies); past the
// end, min(n, 16) zeros.
func (r *Reader) Next(n uint64) []byte {
	if n > uint64(len(r.B)) {
		r.Fail()
		var zero [16]byte
		return zero[:min(n, 16)]
	}
	v := r.B[:n:n]
	r.B = r.B[n:]
	return v
}

// Byte returns the next byte.
func (r *Reader) Byte() byte { return r.Next(1)[0] }

// Uvarint returns the next unsigned varint.
func (r *Reader) Uvarint() uint64 { return varint(r, binary.Uvarint) }

// Varint returns the next signed (zigzag) varint.
func (r *Reader) Varint() int64 { return varint(r, binary.Varint) }

// varint reads the next varint with decode.
func varint[T uint64 | int64](r *Reader, decode func([]byte) (T, int)) T {
	v, n := decode(r.B)
	if n <= 0 {
		r.Fail()
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Bytes returns the next length-prefixed (uvarint) byte string.
func (r *Reader) Bytes() []byte { return r.Next(r.Uvarint()) }
