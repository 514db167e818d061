package useragent

import (
	"regexp"
	"strings"
)

// maxLen bounds what Parse reads of a User-Agent, in bytes: the middleware
// stores no more than this, and no browser needs more to be recognised.
const maxLen = 512

// UserAgent is a User-Agent parsed into the browser, OS and device a
// person recognises, in the shape of the Agnost session example:
// {"family", "major", "minor", "patch", "device": {"family"}, "os":
// {"family", "major", "minor", "patch"}}. Unknown parts are "Other" or
// empty. It is for display only and never decides access.
type UserAgent struct {
	Family string `json:"family"` // browser or client: "Chrome", "Safari", "curl", "Other"
	Major  string `json:"major"`  // its version, part by part
	Minor  string `json:"minor"`  //
	Patch  string `json:"patch"`  //
	Device Device `json:"device"` // the device it runs on
	OS     OS     `json:"os"`     // the operating system
}

// Device names a device: "iPhone", "iPad", "Android phone", "Android
// tablet", "Mac", "Computer", "Other".
type Device struct {
	Family string `json:"family"` // the device's name
}

// OS names an operating system and its version.
type OS struct {
	Family string `json:"family"` // "Windows", "Mac OS X", "iOS", "Android", "Chrome OS", "Linux", "Other"
	Major  string `json:"major"`  // its version, part by part
	Minor  string `json:"minor"`  //
	Patch  string `json:"patch"`  //
}

// Parse parses a User-Agent header, reading at most its first 512 bytes.
// It never fails: what it does not recognise is "Other" (the families) or
// empty (the versions). Safe for concurrent use.
func Parse(ua string) UserAgent {
	out := UserAgent{Family: "Other", Device: Device{"Other"}, OS: OS{Family: "Other"}}
	if len(ua) > maxLen {
		ua = ua[:maxLen]
	}
	for _, b := range browsers {
		if m := b.re.FindStringSubmatch(ua); m != nil {
			out.Family = b.family
			out.Major, out.Minor = m[1], at(m, 2)
			out.Patch = at(m, 3)
			break
		}
	}
	for _, s := range systems {
		if m := s.re.FindStringSubmatch(ua); m != nil {
			out.OS = OS{Family: s.family, Major: m[1], Minor: at(m, 2), Patch: at(m, 3)}
			break
		}
	}
	switch {
	case strings.Contains(ua, "iPhone"):
		out.Device.Family = "iPhone"
	case strings.Contains(ua, "iPad"):
		out.Device.Family = "iPad"
	case out.OS.Family == "Android":
		if strings.Contains(ua, "Mobile") {
			out.Device.Family = "Android phone"
		} else {
			out.Device.Family = "Android tablet"
		}
	case out.OS.Family == "Mac OS X":
		out.Device.Family = "Mac"
	case out.OS.Family == "Windows", out.OS.Family == "Linux", out.OS.Family == "Chrome OS":
		out.Device.Family = "Computer"
	}
	return out
}

// browsers are tried in order: Edge and Opera say "Chrome" too, Chrome
// says "Safari" too.
var browsers = []struct {
	family string
	re     *regexp.Regexp
}{
	{"Edge", regexp.MustCompile(`Edg(?:e|A|iOS)?/(\d+)(?:\.(\d+))?(?:\.(\d+))?`)},
	{"Opera", regexp.MustCompile(`OPR/(\d+)(?:\.(\d+))?(?:\.(\d+))?`)},
	{"Firefox", regexp.MustCompile(`(?:Firefox|FxiOS)/(\d+)(?:\.(\d+))?(?:\.(\d+))?`)},
	{"Chrome", regexp.MustCompile(`(?:Chrome|CriOS)/(\d+)(?:\.(\d+))?(?:\.(\d+))?`)},
	{"Safari", regexp.MustCompile(`Version/(\d+)(?:\.(\d+))?(?:\.(\d+))?.*Safari/`)},
	{"curl", regexp.MustCompile(`^curl/(\d+)(?:\.(\d+))?(?:\.(\d+))?`)},
	{"Go-http-client", regexp.MustCompile(`^Go-http-client/(\d+)(?:\.(\d+))?`)},
}

// systems are tried in order: an iPhone says "Mac OS X" too, Android
// says "Linux" too.
var systems = []struct {
	family string
	re     *regexp.Regexp
}{
	{"iOS", regexp.MustCompile(`(?:iPhone|iPad|iPod).*? OS (\d+)(?:_(\d+))?(?:_(\d+))?`)},
	{"Android", regexp.MustCompile(`Android (\d+)(?:\.(\d+))?(?:\.(\d+))?`)},
	{"Mac OS X", regexp.MustCompile(`Mac OS X (\d+)(?:[_.](\d+))?(?:[_.](\d+))?`)},
	{"Windows", regexp.MustCompile(`Windows NT (\d+)(?:\.(\d+))?`)},
	{"Chrome OS", regexp.MustCompile(`CrOS \S+ (\d+)(?:\.(\d+))?(?:\.(\d+))?`)},
	{"Linux", regexp.MustCompile(`Linux()()()`)},
}

// at returns m[i], or "" when the pattern has no group i.
func at(m []string, i int) string {
	if i < len(m) {
		return m[i]
	}
	return ""
}
