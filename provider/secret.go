package provider

import "fmt"

// Secret is a string that never prints: fmt's verbs (%v, %+v, %#v, %s, %q,
// %x...), String, GoString and encoding/json all show "[REDACTED]" (or ""
// when empty), so a config struct holding secrets can be logged safely. Use
// string(s) where the value is really needed.
//
// It is the one way providers keep secrets out of logs: an exported field
// holds a Secret, an unexported one a *Secret. fmt calls no method of a
// value it reaches through an unexported field and prints a Secret there
// as the string it is, but it prints a pointer there as an address.
type Secret string

const redacted = "[REDACTED]"

func (s Secret) display() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String returns "[REDACTED]", or "" for an empty secret.
func (s Secret) String() string { return s.display() }

// GoString returns the redacted form, quoted.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.display()) }

// Format prints the redacted form for every verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.display())
}

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.display() + `"`), nil }

// MarshalText encodes the redacted form (slog and encoding/xml use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.display()), nil }
