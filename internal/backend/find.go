package backend

import "github.com/sessiongate/sessiongate/internal/format"

// Find is Find for any store: the scs values of token's session, read
// by get (which reads the raw value at a key), if token's validator opens
// it. Not found, or not opened, is not an error.
func Find(token string, get func(key [format.KeyLen]byte) (raw []byte, found bool, err error)) ([]byte, bool, error) {
	sel, val, ok := format.Split(token)
	if !ok {
		return nil, false, nil
	}
	raw, found, err := get(sel.KeyBytes())
	if err != nil || !found || !format.Opens(raw, val) {
		return nil, false, err
	}
	return format.Parse(raw).Data, true, nil
}
