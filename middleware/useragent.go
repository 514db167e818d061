package middleware

import (
	"regexp"
	"strings"
)

// UserAgent is a User-Agent parsed into the browser, OS and device a
// person recognises, in the shape of the Agnost session example:
// {"family", "major", "minor", "patch", "device": {"family"}, "os":
// {"family", "major", "minor", "patch"}}. Unknown parts are "Other" or
// empty. It is for display only and never decides access.
type UserAgent struct {
	Family string       `json:"family"` // browser or client: "Chrome", "Safari", "curl", "Other"
	Major  string       `json:"major"`  // its version, part by part
	Minor  string       `json:"minor"`  //
	Patch  string       `json:"patch"`  //
	Device DeviceFamily `json:"device"` // the device it runs on
	OS     OSFamily     `json:"os"`     // the operating system
}

// DeviceFamily names a device: "iPhone", "iPad", "Android", "Mac",
// "Other"...
type DeviceFamily struct {
	Family string `json:"family"` // the device's name
}

// OSFamily names an operating system and its version.
type OSFamily struct {
	Family string `json:"family"` // "Windows", "Mac OS X", "iOS", "Android", "Linux", "Other"
	Major  string `json:"major"`  // its version, part by part
	Minor  string `json:"minor"`  //
	Patch  string `json:"patch"`  //
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

var systems = []struct {
	family string
	re     *regexp.Regexp
	sep    string
}{
	{"iOS", regexp.MustCompile(`(?:iPhone|iPad|iPod).*? OS (\d+)(?:_(\d+))?(?:_(\d+))?`), "_"},
	{"Android", regexp.MustCompile(`Android (\d+)(?:\.(\d+))?(?:\.(\d+))?`), "."},
	{"Mac OS X", regexp.MustCompile(`Mac OS X (\d+)(?:[_.](\d+))?(?:[_.](\d+))?`), "_"},
	{"Windows", regexp.MustCompile(`Windows NT (\d+)(?:\.(\d+))?`), "."},
	{"Chrome OS", regexp.MustCompile(`CrOS \S+ (\d+)(?:\.(\d+))?(?:\.(\d+))?`), "."},
	{"Linux", regexp.MustCompile(`Linux()()()`), ""},
}

// ParseUserAgent parses a User-Agent header. It never fails.
func ParseUserAgent(ua string) UserAgent {
	out := UserAgent{Family: "Other", Device: DeviceFamily{"Other"}, OS: OSFamily{Family: "Other"}}
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
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
			out.OS = OSFamily{Family: s.family, Major: m[1], Minor: at(m, 2), Patch: at(m, 3)}
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

func at(m []string, i int) string {
	if i < len(m) {
		return m[i]
	}
	return ""
}
