package format

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/sessiongate/sessiongate/internal/wire"
)

// Codec is a compact scs.Codec, the one the middleware's scs manager
// uses. A session with a few string or []byte values costs tens of bytes
// and a handful of allocations to decode, where scs's GobCodec spends
// about 200 allocations building a decoder on every request.
//
// Strings, []byte, bool, int, int64, float64 and time.Time values have a
// binary form of their own. Any other value is encoded with encoding/gob,
// all such values together, so (as with scs's GobCodec) its type must be
// registered with gob.Register. Decoded []byte values are copies: a
// handler may keep or change them.
//
// The deadline is kept to the millisecond. Decode rejects anything that is
// not exactly one encoded session.
type Codec struct{}

const codecVersion = 0xC5

// Value tags.
const (
	tagString  = 's'
	tagBytes   = 'b'
	tagTrue    = 'T'
	tagFalse   = 'F'
	tagInt     = 'i'
	tagInt64   = 'I'
	tagFloat64 = 'f'
	tagTime    = 't'
)

var errCodec = errors.New("store: not a session encoded by sessiongate's codec")

// Encode encodes deadline and values, keys in sorted order.
func (Codec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, codecVersion)
	b = binary.AppendUvarint(b, uint64(max(deadline.UnixMilli(), 0)))
	names := make([]string, 0, len(values))
	var rest map[string]any
	for k, v := range values {
		switch v.(type) {
		case string, []byte, bool, int, int64, float64, time.Time:
			names = append(names, k)
		default:
			if rest == nil {
				rest = map[string]any{}
			}
			rest[k] = v
		}
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = appendBytes(b, []byte(k))
		switch v := values[k].(type) {
		case string:
			b = appendBytes(append(b, tagString), []byte(v))
		case []byte:
			b = appendBytes(append(b, tagBytes), v)
		case bool:
			if v {
				b = append(b, tagTrue)
			} else {
				b = append(b, tagFalse)
			}
		case int:
			b = binary.AppendVarint(append(b, tagInt), int64(v))
		case int64:
			b = binary.AppendVarint(append(b, tagInt64), v)
		case float64:
			b = binary.LittleEndian.AppendUint64(append(b, tagFloat64), math.Float64bits(v))
		case time.Time:
			t, err := v.MarshalBinary()
			if err != nil {
				return nil, err
			}
			b = appendBytes(append(b, tagTime), t)
		}
	}
	if rest == nil {
		return binary.AppendUvarint(b, 0), nil
	}
	var g bytes.Buffer
	if err := gob.NewEncoder(&g).Encode(rest); err != nil {
		return nil, err
	}
	return appendBytes(b, g.Bytes()), nil
}

// Decode decodes what Encode encoded.
func (Codec) Decode(b []byte) (time.Time, map[string]any, error) {
	d := wire.Reader{B: b}
	if d.Byte() != codecVersion {
		return time.Time{}, nil, errCodec
	}
	var deadline time.Time
	if ms := d.Uvarint(); ms > 0 && ms <= math.MaxInt64 {
		deadline = time.UnixMilli(int64(ms))
	}
	n := d.Uvarint()
	if n > uint64(len(b)) {
		return time.Time{}, nil, errCodec
	}
	values := make(map[string]any, n)
	for range n {
		k := internKey(d.Bytes())
		switch d.Byte() {
		case tagString:
			values[k] = string(d.Bytes())
		case tagBytes:
			values[k] = bytes.Clone(d.Bytes())
		case tagTrue:
			values[k] = true
		case tagFalse:
			values[k] = false
		case tagInt:
			values[k] = int(d.Varint())
		case tagInt64:
			values[k] = d.Varint()
		case tagFloat64:
			values[k] = math.Float64frombits(binary.LittleEndian.Uint64(d.Next(8)))
		case tagTime:
			var t time.Time
			if err := t.UnmarshalBinary(d.Bytes()); err != nil {
				d.Fail()
			}
			values[k] = t
		default:
			d.Fail()
		}
		if d.Err {
			return time.Time{}, nil, errCodec
		}
	}
	if g := d.Bytes(); len(g) > 0 && !d.Err {
		var rest map[string]any
		if err := gob.NewDecoder(bytes.NewReader(g)).Decode(&rest); err != nil {
			return time.Time{}, nil, err
		}
		for k, v := range rest {
			values[k] = v
		}
	}
	if d.Err || len(d.B) != 0 {
		return time.Time{}, nil, errCodec
	}
	return deadline, values, nil
}

// keys interns value names: an application uses a handful, and a decode
// then allocates none for them.
var keys = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

const maxInternedKeys = 1024

func internKey(b []byte) string {
	keys.RLock()
	k, ok := keys.m[string(b)]
	keys.RUnlock()
	if ok {
		return k
	}
	k = string(b)
	keys.Lock()
	if len(keys.m) < maxInternedKeys {
		keys.m[k] = k
	}
	keys.Unlock()
	return k
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}
