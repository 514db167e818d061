package useragent_test

import (
	"encoding/json"
	"fmt"

	"github.com/sessiongate/sessiongate/useragent"
)

func ExampleParse() {
	ua := useragent.Parse("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")
	fmt.Printf("%s %s on %s %s (%s)\n", ua.Family, ua.Major, ua.OS.Family, ua.OS.Major, ua.Device.Family)

	b, _ := json.Marshal(ua)
	fmt.Println(string(b))
	// Output:
	// Safari 17 on iOS 17 (iPhone)
	// {"family":"Safari","major":"17","minor":"1","patch":"","device":{"family":"iPhone"},"os":{"family":"iOS","major":"17","minor":"1","patch":""}}
}
