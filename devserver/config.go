package devserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
)

// UIDisabled is the UIPort value that turns the Web UI off.
const UIDisabled = -1

// Config holds the tunables of a [Server]. Start from [DefaultConfig] and set
// DataDir and Logger; the zero value is not valid.
type Config struct {
	// DataDir holds the SQLite file <DataDir>/temporal.db and the cluster ID.
	// It is created if missing. Required.
	DataDir string
	// Host is the IP address the frontend and the UI bind to.
	Host string
	// FrontendPort is the gRPC port of the frontend service.
	FrontendPort int
	// UIPort is the HTTP port of the Web UI; UIDisabled (-1) turns it off.
	UIPort int
	// Namespace is registered at start when missing; it is also the UI's
	// default namespace.
	Namespace string
	// ExtraNamespaces are registered at start when missing, like Namespace.
	ExtraNamespaces []string
	// Logger receives the server's log records (warn and above). Required.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every field but DataDir and Logger set.
func DefaultConfig() Config {
	return Config{
		// Loopback only: the server has no authentication, so it must not be
		// reachable from other machines unless the caller says so.
		Host: "127.0.0.1",
		// The port every Temporal SDK and the temporal CLI dial by default.
		FrontendPort: 7233,
		// What `temporal server start-dev` uses (frontend port + 1000), so
		// bookmarks and habits carry over.
		UIPort: 8233,
		// The namespace SDK clients use when none is given.
		Namespace: "default",
	}
}

// Validate reports every invalid field; each error names the field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("devserver: %s: "+format, append([]any{field}, args...)...))
	}

	switch {
	case c.DataDir == "":
		bad("data_dir", "required")
	case strings.ContainsAny(c.DataDir, "?#"):
		// The SQLite plugin puts the path into a file: URI unescaped.
		bad("data_dir", "%q must not contain '?' or '#'", c.DataDir)
	}
	if net.ParseIP(c.Host) == nil {
		bad("host", "%q is not an IP address", c.Host)
	}
	if !validPort(c.FrontendPort) {
		bad("frontend_port", "%d out of range", c.FrontendPort)
	}
	switch {
	case c.UIPort == UIDisabled:
	case !validPort(c.UIPort):
		bad("ui_port", "%d out of range (use %d to disable the UI)", c.UIPort, UIDisabled)
	case c.UIPort == c.FrontendPort:
		bad("ui_port", "%d is also the frontend port", c.UIPort)
	}
	if c.Namespace == "" {
		bad("namespace", "required")
	}
	seen := map[string]bool{c.Namespace: true}
	for i, ns := range c.ExtraNamespaces {
		switch {
		case ns == "":
			bad(fmt.Sprintf("extra_namespaces[%d]", i), "empty")
		case seen[ns]:
			bad(fmt.Sprintf("extra_namespaces[%d]", i), "%q listed twice", ns)
		}
		seen[ns] = true
	}
	if c.Logger == nil {
		bad("logger", "required")
	}
	return errors.Join(errs...)
}

func validPort(p int) bool { return p > 0 && p <= 65535 }

// namespaces returns Namespace followed by ExtraNamespaces.
func (c Config) namespaces() []string {
	return append([]string{c.Namespace}, c.ExtraNamespaces...)
}

// dialHost is the address clients use to reach Host: the loopback address of
// the same family when Host is a wildcard address.
func (c Config) dialHost() string {
	ip := net.ParseIP(c.Host)
	switch {
	case !ip.IsUnspecified():
		return c.Host
	case ip.To4() != nil:
		return "127.0.0.1"
	default:
		return "::1"
	}
}
