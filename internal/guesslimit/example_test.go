package guesslimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sessiongate/sessiongate/internal/guesslimit"
)

func Example() {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := guesslimit.New(3, 3*time.Second, func() time.Time { return now })
	const ip = "2001:db8::1"
	for i := range 5 {
		if wait := lim.Wait(ip); wait > 0 {
			fmt.Printf("failure %d: limited, retry after %v\n", i+1, wait)
		}
		if lim.Failed(ip, 1) {
			fmt.Printf("failure %d: %s locked out\n", i+1, guesslimit.ClientKey(ip))
		}
	}

	// A limited client's validations take turns.
	ctx := lim.Queued(context.Background(), ip)
	release, err := guesslimit.Turn(ctx)
	fmt.Println("turn:", err)
	release()

	now = now.Add(3 * time.Second)
	fmt.Println("three seconds later:", lim.Wait(ip))
	// Output:
	// failure 3: 2001:db8::/64 locked out
	// failure 4: limited, retry after 3s
	// failure 5: limited, retry after 3s
	// turn: <nil>
	// three seconds later: 0s
}
