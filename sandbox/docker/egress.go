package docker

import (
	"context"
	"fmt"
	"net"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"

	"chorus/sandbox/egress"
)

// EgressNetwork is the internal Docker network of sandboxes whose task
// allows some hosts. It has no route out and no traffic between
// containers; the only address its containers reach is the host's side of
// the bridge, where each such run gets its own allow-list proxy.
const EgressNetwork = "chorus-egress"

// egressGatewayIP returns the host's address on EgressNetwork, creating the
// network on first use.
func (r *Runner) egressGatewayIP(ctx context.Context) (string, error) {
	r.egressMu.Lock()
	defer r.egressMu.Unlock()
	if r.egressGateway != "" {
		return r.egressGateway, nil
	}
	nw, err := r.cli.NetworkInspect(ctx, EgressNetwork, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		_, cerr := r.cli.NetworkCreate(ctx, EgressNetwork, network.CreateOptions{
			Driver:   "bridge",
			Internal: true,
			Options:  map[string]string{"com.docker.network.bridge.enable_icc": "false"},
			Labels:   map[string]string{LabelManaged: "true"},
		})
		// Another runner may have created it meanwhile.
		if cerr != nil && !cerrdefs.IsConflict(cerr) {
			return "", fmt.Errorf("create network %s: %w", EgressNetwork, cerr)
		}
		nw, err = r.cli.NetworkInspect(ctx, EgressNetwork, network.InspectOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("inspect network %s: %w", EgressNetwork, err)
	}
	if !nw.Internal {
		return "", fmt.Errorf("network %s exists but is not internal; remove it and let chorus create it", EgressNetwork)
	}
	for _, c := range nw.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			r.egressGateway = c.Gateway
			return c.Gateway, nil
		}
	}
	return "", fmt.Errorf("network %s has no IPv4 gateway", EgressNetwork)
}

// startEgress starts a proxy for one run's allow-list on the gateway and
// returns the environment that points the command at it.
func (r *Runner) startEgress(ctx context.Context, allow []string) (env []string, stop func() error, err error) {
	p, err := egress.New(allow, r.log)
	if err != nil {
		return nil, nil, fmt.Errorf("allow hosts: %w", err)
	}
	gw, err := r.egressGatewayIP(ctx)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		return nil, nil, fmt.Errorf("egress proxy on %s: %w", gw, err)
	}
	go p.Serve(ln)
	u := "http://" + ln.Addr().String()
	return []string{"HTTP_PROXY=" + u, "HTTPS_PROXY=" + u, "http_proxy=" + u, "https_proxy=" + u}, p.Close, nil
}
