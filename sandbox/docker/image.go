package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/pkg/jsonmessage"
)

// DefaultBusyboxPath is where Debian's busybox-static package installs the
// statically linked busybox that EnsureImage copies into the image.
const DefaultBusyboxPath = "/bin/busybox"

// imageDockerfile builds the sandbox image from scratch: one static
// busybox, its applets as symlinks, a passwd/group naming nobody, and the
// mount points. Everything is owned by root, so uid 65534 can write only
// to /workspace (a bind mount) and /tmp (a tmpfs) at run time.
const imageDockerfile = `FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
WORKDIR /workspace
USER 65534:65534
`

const (
	etcPasswd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	etcGroup  = "root:x:0:\nnogroup:x:65534:\n"
)

// EnsureImage builds image locally when the daemon does not have it: a
// FROM scratch image holding the static busybox found at busyboxPath
// (DefaultBusyboxPath when empty). Nothing is pulled. Build progress goes
// to progress, which may be nil. built reports whether a build happened.
//
// Concurrent calls for a missing image may each build it; the result is
// the same image.
func (r *Runner) EnsureImage(ctx context.Context, image, busyboxPath string, progress io.Writer) (built bool, err error) {
	defer func() {
		switch {
		case err != nil:
			r.metrics.images.WithLabelValues("error").Inc()
		case built:
			r.metrics.images.WithLabelValues("built").Inc()
		default:
			r.metrics.images.WithLabelValues("present").Inc()
		}
	}()
	if image == "" {
		return false, errors.New("ensure image: image name must not be empty")
	}
	if busyboxPath == "" {
		busyboxPath = DefaultBusyboxPath
	}
	if _, err := r.cli.ImageInspect(ctx, image); err == nil {
		return false, nil
	} else if !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("inspect image %s: %w", image, err)
	}

	busybox, err := readStaticBusybox(busyboxPath)
	if err != nil {
		return false, fmt.Errorf("build image %s: %w", image, err)
	}
	buildContext, err := imageContext(busybox)
	if err != nil {
		return false, fmt.Errorf("build image %s: %w", image, err)
	}
	r.log.Info("building sandbox image", "image", image, "busybox", busyboxPath)
	resp, err := r.cli.ImageBuild(ctx, bytes.NewReader(buildContext), build.ImageBuildOptions{
		Tags:        []string{image},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		NetworkMode: "none",
		Labels:      map[string]string{LabelManaged: "true"},
		Version:     build.BuilderV1,
	})
	if err != nil {
		return false, fmt.Errorf("build image %s: %w", image, err)
	}
	defer resp.Body.Close()
	if progress == nil {
		progress = io.Discard
	}
	// The daemon reports a failed step inside the stream, not as an HTTP
	// error; DisplayJSONMessagesStream turns it into an error.
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, progress, 0, false, nil); err != nil {
		return false, fmt.Errorf("build image %s: %w", image, err)
	}
	return true, nil
}

// readStaticBusybox returns the contents of the busybox binary at path
// after checking that it is an ELF executable without a dynamic loader: a
// FROM scratch image has no libc to load.
func readStaticBusybox(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("busybox not found at %s (install busybox-static): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("busybox at %s is not an ELF executable (install busybox-static): %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("busybox at %s is dynamically linked; the scratch image needs a static one (install busybox-static)", path)
		}
	}
	return data, nil
}

// imageContext returns the build context, an uncompressed tar holding the
// Dockerfile and the rootfs/ tree it copies.
func imageContext(busybox []byte) ([]byte, error) {
	type entry struct {
		name string
		mode int64
		body []byte // nil for a directory
	}
	entries := []entry{
		{name: "Dockerfile", mode: 0o644, body: []byte(imageDockerfile)},
		{name: "rootfs/", mode: 0o755},
		{name: "rootfs/bin/", mode: 0o755},
		{name: "rootfs/bin/busybox", mode: 0o755, body: busybox},
		{name: "rootfs/etc/", mode: 0o755},
		{name: "rootfs/etc/passwd", mode: 0o644, body: []byte(etcPasswd)},
		{name: "rootfs/etc/group", mode: 0o644, body: []byte(etcGroup)},
		{name: "rootfs/tmp/", mode: 0o1777},
		{name: "rootfs/workspace/", mode: 0o755},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed timestamp keeps the context, and so the build cache key,
	// identical from one call to the next.
	mtime := time.Unix(0, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Typeflag: tar.TypeDir}
		if e.body != nil {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return buf.Bytes(), nil
}
