package store_test

import (
	"errors"
	"fmt"

	"github.com/sessiongate/sessiongate/store"
)

// A memory store, for one process, tests and demos. Not found is not an
// error, and scs's Destroy (which calls Delete) is refused: sessions end
// with the middleware's SignOut.
func ExampleNewMemory() {
	st := store.NewMemory() // middleware.Config{Store: st, ...}

	_, found, err := st.Find("no-such-session-token")
	fmt.Println(found, err)
	fmt.Println(errors.Is(st.Delete("no-such-session-token"), store.ErrUnsupported))
	// Output:
	// false <nil>
	// true
}
