package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults applied by Spec.WithDefaults. Each is chosen for an untrusted
// shell script on a small build machine.
const (
	// DefaultTimeout bounds a run (SPEC section 4: 10 min).
	DefaultTimeout = 10 * time.Minute
	// DefaultMemoryBytes is enough for compilers and test runners but
	// stops a memory bomb long before the host notices.
	DefaultMemoryBytes = 512 << 20
	// DefaultNanoCPUs is one CPU: a runaway loop cannot starve the host.
	DefaultNanoCPUs = 1_000_000_000
	// DefaultPidsLimit stops a fork bomb.
	DefaultPidsLimit = 256
	// DefaultUser is nobody:nogroup, a non-root user present in any image.
	DefaultUser = "65534:65534"
	// DefaultTailBytes bounds the output kept in a Result (and so in
	// workflow history); the full output goes to Spec.OutputPath.
	DefaultTailBytes = 4096
)

// ErrInvalidSpec is wrapped by Spec.Validate; the message names the field.
var ErrInvalidSpec = errors.New("invalid sandbox spec")

// Spec describes one run.
type Spec struct {
	// Image to run; it must exist locally (nothing is pulled).
	Image string
	// Command is the argv run inside the container.
	Command []string
	// Workspace is a host directory mounted read-write at /workspace,
	// which is also the working directory. Required.
	Workspace string
	// Env is the container environment (KEY=VALUE).
	Env []string
	// Timeout kills the container when exceeded.
	Timeout time.Duration
	// MemoryBytes is the memory limit (swap is not allowed on top).
	MemoryBytes int64
	// NanoCPUs is the CPU quota in billionths of a CPU.
	NanoCPUs int64
	// PidsLimit bounds the number of processes.
	PidsLimit int64
	// User is uid:gid inside the container; never root.
	User string
	// AllowHosts is the network policy: empty means no network at all;
	// otherwise the command reaches these hosts ("host", "host:port",
	// "*.domain") through an HTTP proxy given in HTTP_PROXY/HTTPS_PROXY,
	// and nothing else.
	AllowHosts []string
	// Labels are added to the container; the runner adds its own agent
	// label so orphans can be reaped.
	Labels map[string]string
	// OutputPath, when set, receives the full combined stdout+stderr.
	OutputPath string
	// TailBytes bounds Result.OutputTail.
	TailBytes int
	// OnOutput, when set, is called with each chunk of output as it
	// arrives (for progress heartbeats). It must not block.
	OnOutput func(chunk []byte)
}

// WithDefaults returns s with zero fields set to the package defaults.
func (s Spec) WithDefaults() Spec {
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.MemoryBytes == 0 {
		s.MemoryBytes = DefaultMemoryBytes
	}
	if s.NanoCPUs == 0 {
		s.NanoCPUs = DefaultNanoCPUs
	}
	if s.PidsLimit == 0 {
		s.PidsLimit = DefaultPidsLimit
	}
	if s.User == "" {
		s.User = DefaultUser
	}
	if s.TailBytes == 0 {
		s.TailBytes = DefaultTailBytes
	}
	return s
}

// Validate reports the first bad field.
func (s Spec) Validate() error {
	switch {
	case s.Image == "":
		return fmt.Errorf("%w: image: must not be empty", ErrInvalidSpec)
	case len(s.Command) == 0:
		return fmt.Errorf("%w: command: must not be empty", ErrInvalidSpec)
	case s.Workspace == "":
		return fmt.Errorf("%w: workspace: must not be empty", ErrInvalidSpec)
	case s.Timeout < 0:
		return fmt.Errorf("%w: timeout: must not be negative", ErrInvalidSpec)
	case s.MemoryBytes < 0 || (s.MemoryBytes > 0 && s.MemoryBytes < 6<<20):
		return fmt.Errorf("%w: memory: %d bytes is below the 6 MiB minimum", ErrInvalidSpec, s.MemoryBytes)
	case s.NanoCPUs < 0:
		return fmt.Errorf("%w: cpus: must not be negative", ErrInvalidSpec)
	case s.PidsLimit < 0:
		return fmt.Errorf("%w: pids: must not be negative", ErrInvalidSpec)
	case s.User == "0" || s.User == "root" || s.User == "0:0":
		return fmt.Errorf("%w: user: must not be root", ErrInvalidSpec)
	}
	return nil
}

// Result is the outcome of a run that reached the container. A command that
// exits non-zero is a Result, not an error; errors are for failures of the
// sandbox itself (daemon down, image missing).
type Result struct {
	ContainerID string
	ExitCode    int
	// TimedOut is set when Spec.Timeout killed the container.
	TimedOut bool
	// OOMKilled is set when the memory limit killed the container.
	OOMKilled   bool
	Duration    time.Duration
	OutputTail  string
	OutputBytes int64
	Usage       Usage
	// Warm is set when a container started ahead of time (a runner's
	// warm pool) served the run instead of one created for it. Isolation,
	// limits and the other fields mean the same either way.
	Warm bool
}

// Usage is resource consumption read from the container's cgroup.
type Usage struct {
	CPUTimeMS       int64
	PeakMemoryBytes int64
}

// Runner runs a Spec to completion. Implementations must kill and remove
// the container when ctx is cancelled.
type Runner interface {
	Run(ctx context.Context, spec Spec) (Result, error)
}

// Tail keeps the last n bytes written to it. It is not safe for concurrent use.
type Tail struct {
	n   int
	buf []byte
	Len int64
}

// NewTail returns a Tail keeping at most n bytes.
func NewTail(n int) *Tail { return &Tail{n: n} }

// Write implements io.Writer; it never fails.
func (t *Tail) Write(p []byte) (int, error) {
	t.Len += int64(len(p))
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.n {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.n:]...)
	}
	return len(p), nil
}

// String returns the kept bytes.
func (t *Tail) String() string { return string(t.buf) }
