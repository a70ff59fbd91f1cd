package licensing_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"

	"chorus/licensing"
)

// An authority issues a license; a node's gate takes a seat over HTTP.
func Example() {
	dir, err := os.MkdirTemp("", "authority")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	acfg := licensing.DefaultAuthorityConfig()
	acfg.DataDir = dir
	a, err := licensing.NewAuthority(acfg)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	ctx := context.Background()
	lic, err := a.Issue(ctx, licensing.IssueRequest{Tier: "standard", Nodes: 1, ClusterID: "prod", ExpiresIn: "720h"})
	if err != nil {
		log.Fatal(err)
	}
	c, err := licensing.NewClient(srv.URL, nil, "")
	if err != nil {
		log.Fatal(err)
	}
	cfg := licensing.DefaultConfig()
	cfg.Authority, cfg.LicenseID, cfg.ClusterID, cfg.NodeID = c, lic.ID, "prod", "worker-a"
	gate, err := licensing.NewGate(cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("validate:", gate.Validate(ctx))
	fmt.Println("allowed:", gate.Allowed())
	fmt.Println("seat:", gate.Status().Seat)

	// A second node finds no free seat.
	cfg.NodeID = "worker-b"
	other, err := licensing.NewGate(cfg)
	if err != nil {
		log.Fatal(err)
	}
	err = other.Validate(ctx)
	fmt.Println("second node has a seat:", err == nil)
	// Output:
	// validate: <nil>
	// allowed: <nil>
	// seat: 1
	// second node has a seat: false
}

// A token is three dot-separated parts; anything but the authority's
// signature over the exact payload is refused.
func ExampleParseToken() {
	dir, err := os.MkdirTemp("", "authority")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	acfg := licensing.DefaultAuthorityConfig()
	acfg.DataDir = dir
	a, err := licensing.NewAuthority(acfg)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	lic, _ := a.Issue(ctx, licensing.IssueRequest{Tier: "dev", Nodes: 1, ClusterID: "dev", ExpiresIn: "24h"})
	g, err := a.Activate(ctx, licensing.ActivateRequest{LicenseID: lic.ID, ClusterID: "dev", NodeID: "a"})
	if err != nil {
		log.Fatal(err)
	}
	claims, err := licensing.ParseToken(g.Token, a.PublicKey())
	fmt.Println(claims.ClusterID, claims.NodeID, claims.Seat, claims.Version, err)
	_, err = licensing.ParseToken(g.Token+"x", a.PublicKey())
	fmt.Println(err != nil)
	// Output:
	// dev a 1 1 <nil>
	// true
}
